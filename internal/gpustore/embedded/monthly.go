package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// The monthly tables: the daily table summed per UTC month, for the rollup
// report over long windows (a month of a device is one row instead of
// thirty), computed with every row visible, so for the reads the daily
// table serves (dailyServes).
//
//   - monthly has the daily table's keys, for every aggregation key;
//   - monthly_projects sums it per project and PI, with the distinct
//     devices each held that month: the monthly report by project and PI
//     reads a month as one row per project (a device count cannot be added
//     up from days or from other keys, so it is counted here).
//
// monthly_state lists the months held and the hours each covers, [month,
// through): the days of the month that the daily table holds without a
// gap, up to its closed hours, so this month is covered up to the last hour
// or two as well. A write to a covered hour marks the month stale in the
// write's transaction; the retention pass recomputes stale months and
// extends open ones once their days are in the daily table. Days without a
// state row have no samples, so they count as covered.
const monthlyMigration = `
ALTER TABLE daily_state ADD COLUMN through INTEGER NOT NULL DEFAULT 0;
UPDATE daily_state SET through = day + CASE WHEN fresh = 1 THEN 86400 ELSE 0 END;
CREATE TABLE monthly (
	month      INTEGER NOT NULL,
	hub        TEXT NOT NULL,
	cluster    TEXT NOT NULL,
	node       TEXT NOT NULL,
	namespace  TEXT NOT NULL,
	project_pi TEXT NOT NULL,
	model      TEXT NOT NULL,
	profile    TEXT NOT NULL,
	hw_id      TEXT NOT NULL,
	alloc_s    REAL NOT NULL,
	used_s     REAL NOT NULL,
	idle_s     REAL NOT NULL,
	seen       INTEGER NOT NULL,
	PRIMARY KEY (month, hub, cluster, node, namespace, project_pi, model, profile, hw_id)
) WITHOUT ROWID;
CREATE TABLE monthly_projects (
	month      INTEGER NOT NULL,
	hub        TEXT NOT NULL,
	cluster    TEXT NOT NULL,
	namespace  TEXT NOT NULL,
	project_pi TEXT NOT NULL,
	alloc_s    REAL NOT NULL,
	used_s     REAL NOT NULL,
	idle_s     REAL NOT NULL,
	devices    INTEGER NOT NULL, -- distinct hw_id seen
	PRIMARY KEY (month, hub, cluster, namespace, project_pi)
) WITHOUT ROWID;
CREATE TABLE monthly_state (
	month   INTEGER PRIMARY KEY,
	fresh   INTEGER NOT NULL,
	through INTEGER NOT NULL
);
INSERT INTO monthly_state (month, fresh, through)
	SELECT m, 0, m FROM (SELECT DISTINCT CAST(strftime('%s', day, 'unixepoch', 'start of month') AS INTEGER) AS m FROM daily_state);
`

// monthsPerPass bounds the months one pass recomputes (a month is up to a
// month of daily rows).
const monthsPerPass = 1

// monthStart and nextMonth are UTC month bounds in unix seconds.
func monthStart(t int64) int64 {
	u := time.Unix(t, 0).UTC()
	return time.Date(u.Year(), u.Month(), 1, 0, 0, 0, 0, time.UTC).Unix()
}

func nextMonth(m int64) int64 { return time.Unix(m, 0).UTC().AddDate(0, 1, 0).Unix() }

// markMonthsStale marks the months of the written days stale where their
// covered hours were written (first: day -> earliest hour written).
func markMonthsStale(ctx context.Context, tx *sql.Tx, first map[int64]int64) error {
	months := map[int64]int64{}
	for d, h := range first {
		m := monthStart(d)
		if x, ok := months[m]; !ok || h < x {
			months[m] = h
		}
	}
	for m, h := range months {
		if _, err := tx.ExecContext(ctx, `INSERT INTO monthly_state (month, fresh, through) VALUES (?, 0, ?)
			ON CONFLICT DO UPDATE SET fresh = 0 WHERE fresh != 0 AND ? < through`, m, m, h); err != nil {
			return err
		}
	}
	return nil
}

// monthCovered is how far the daily table covers month m without a gap,
// up to closed: to the first stale day or the end of a partial one.
func (s *Store) monthCovered(ctx context.Context, m, closed int64) (int64, error) {
	end := min(nextMonth(m), closed)
	rs, err := s.w.QueryContext(ctx, `SELECT day, fresh, through FROM daily_state WHERE day >= ? AND day < ? ORDER BY day`, m, end)
	if err != nil {
		return 0, err
	}
	defer func() { _ = rs.Close() }()
	for rs.Next() {
		var d, through int64
		var fresh bool
		if err := rs.Scan(&d, &fresh, &through); err != nil {
			return 0, err
		}
		if !fresh {
			return d, nil
		}
		if through < d+secondsPerDay {
			return through, nil
		}
	}
	return end, rs.Err()
}

// rollMonths recomputes up to limit months that are stale or that the
// daily table covers further than they do, from cut (the rollup
// retention's: an older month has lost hours) on; it returns how many it
// computed.
func (s *Store) rollMonths(ctx context.Context, closed, cut int64, limit int) (int, error) {
	type state struct {
		month, through int64
		fresh          bool
	}
	rs, err := s.w.QueryContext(ctx, `SELECT month, fresh, through FROM monthly_state WHERE month >= ? ORDER BY month`, cut)
	if err != nil {
		return 0, fmt.Errorf("monthly rollup: %w", err)
	}
	var states []state
	for rs.Next() {
		var st state
		if err := rs.Scan(&st.month, &st.fresh, &st.through); err != nil {
			_ = rs.Close()
			return 0, fmt.Errorf("monthly rollup: %w", err)
		}
		states = append(states, st)
	}
	_ = rs.Close()
	if err := rs.Err(); err != nil {
		return 0, fmt.Errorf("monthly rollup: %w", err)
	}
	n := 0
	for _, st := range states {
		if n == limit {
			break
		}
		if st.fresh && st.through == nextMonth(st.month) {
			continue // whole
		}
		to, err := s.monthCovered(ctx, st.month, closed)
		if err != nil {
			return n, fmt.Errorf("monthly rollup of %d: %w", st.month, err)
		}
		if to <= st.month || (st.fresh && to <= st.through) {
			continue
		}
		if err := s.rollMonth(ctx, st.month, to); err != nil {
			return n, fmt.Errorf("monthly rollup of %d: %w", st.month, err)
		}
		n++
	}
	return n, nil
}

// rollMonth replaces month m's rows with the sums of the daily rows of
// [m, through).
func (s *Store) rollMonth(ctx context.Context, m, through int64) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	for _, st := range []struct {
		q    string
		args []any
	}{
		{`DELETE FROM monthly WHERE month = ?`, []any{m}},
		{`DELETE FROM monthly_projects WHERE month = ?`, []any{m}},
		{`INSERT INTO monthly (month, hub, cluster, node, namespace, project_pi, model, profile, hw_id,
			alloc_s, used_s, idle_s, seen)
			SELECT ?, hub, cluster, node, namespace, project_pi, model, profile, hw_id,
			sum(alloc_s), sum(used_s), sum(idle_s), max(seen) FROM daily WHERE day >= ? AND day < ?
			GROUP BY hub, cluster, node, namespace, project_pi, model, profile, hw_id`, []any{m, m, through}},
		{`INSERT INTO monthly_projects (month, hub, cluster, namespace, project_pi, alloc_s, used_s, idle_s, devices)
			SELECT month, hub, cluster, namespace, project_pi, sum(alloc_s), sum(used_s), sum(idle_s),
			count(DISTINCT CASE WHEN seen THEN hw_id END) FROM monthly WHERE month = ?
			GROUP BY hub, cluster, namespace, project_pi`, []any{m}},
		{`UPDATE monthly_state SET fresh = 1, through = ? WHERE month = ?`, []any{through, m}},
	} {
		if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}
