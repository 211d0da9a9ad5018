package embedded

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// The daily table: the hourly rollup's GPU-hours summed per UTC day and
// (hub, cluster, node, namespace, PI, model, profile, device), for the
// rollup report over long windows.
//
// Why it is exact, and for which reads: a series-hour's GPU-hours depend on
// the other series-hours of its node in that hour (the lone-sample rule of
// gpustore.KeyProject), among the rows the scope and filter see. The table
// is computed with every row of the node visible, which is what a reader
// sees when its scope and filter select whole nodes: Scope.All, hub and
// cluster managers, and the Hub, Cluster and Node filters. A project scope
// or a Namespace or Device filter sees only part of a node's rows, so its
// lone samples may take another interval: those reads keep the hourly
// computation (a project's rows are few anyway).
//
// Freshness: daily_state lists the days the table holds; a write to any
// hour of a day marks it stale (fresh = 0, in the write's transaction), and
// readers take a day from the table only while it is fresh, else from the
// hourly rollup. So a late sample is reflected at once. The writer
// recomputes stale days that are closed (ended closedAfter before the
// newest hour written), a few per pass, with the retention pass.
const (
	secondsPerDay = 86400
	// closedAfter: a day is recomputed once the newest hour written is this
	// long past its end (samples of a day still arrive for a while).
	closedAfter = 2 * 3600
	// daysPerPass bounds the days one pass recomputes (a backfill is spread
	// over passes instead of stalling one write).
	daysPerPass = 4
)

// dailyMigration is migration 2: the daily table and its state, every day
// already in the hourly rollup stale (the next passes compute them).
const dailyMigration = `
CREATE TABLE daily (
	day        INTEGER NOT NULL,
	hub        TEXT NOT NULL,
	cluster    TEXT NOT NULL,
	node       TEXT NOT NULL,
	namespace  TEXT NOT NULL,
	project_pi TEXT NOT NULL,
	model      TEXT NOT NULL,
	profile    TEXT NOT NULL,
	hw_id      TEXT NOT NULL,
	alloc_s    REAL NOT NULL, -- sum of fraction * samples * interval (s)
	used_s     REAL NOT NULL, -- the same times busy
	idle_s     REAL NOT NULL, -- the same over idle series-hours
	seen       INTEGER NOT NULL, -- some series-hour of it has samples
	PRIMARY KEY (day, hub, cluster, node, namespace, project_pi, model, profile, hw_id)
) WITHOUT ROWID;
CREATE TABLE daily_state (
	day   INTEGER PRIMARY KEY,
	fresh INTEGER NOT NULL
);
INSERT INTO daily_state (day, fresh) SELECT DISTINCT hour - (hour % 86400 + 86400) % 86400, 0 FROM hourly;
`

var dailyCols = cols{"hub", "cluster", "node", "namespace", "(hw_id = ? OR substr(hw_id, 1, length(?) + 1) = ? || '/')", 3}

// dailyServes says whether a rollup report may read the daily table: its
// scope and filter see whole nodes (see above).
func dailyServes(gq gpustore.GPUHoursQuery) bool {
	if gq.Namespace != "" || gq.Device != "" {
		return false
	}
	if gq.Scope.All {
		return true
	}
	for _, p := range gq.Scope.Projects {
		if p.Namespace != "" { // scope() drops projects without a namespace
			return false
		}
	}
	return true
}

// hourRows adds the CTEs "h" and "iv" of the hourly computation: the
// allocated series-hours the scope and filter see in [hFrom, hTo), each
// with iv_s, what one of its samples stands for. ranges, when not nil,
// narrows the hours further to those half-open spans (the days the daily
// table does not hold).
func hourRows(q *query, gq gpustore.GPUHoursQuery, hFrom, hTo int64, ranges [][2]int64) {
	q.add(`h AS (SELECT hour, hub, cluster, node, namespace, pod, hw_id, allocated, project_pi, model, profile,
		fraction, samples, CASE WHEN prof_n > 0 THEN prof_sum / prof_n WHEN util_n > 0 THEN util_sum / util_n ELSE 0 END AS busy,
		CASE WHEN samples > 1 THEN (last_seen / 1000000000 - first_seen / 1000000000) * 1.0 / (samples - 1)
		WHEN samples = 0 THEN 0
		ELSE coalesce((SELECT max((x.last_seen / 1000000000 - x.first_seen / 1000000000) * 1.0 / (x.samples - 1))
			FROM hourly x WHERE x.hour = hourly.hour AND x.hub = hourly.hub AND x.cluster = hourly.cluster
			AND x.node = hourly.node AND x.samples > 1`)
	// A lone sample takes the largest interval of its node in that hour
	// among the rows the scope sees, or LoneSampleIntervalS; capped. (A
	// correlated lookup on the key's prefix, only for lone rows: no window
	// function sorting every row.)
	q.scope(gq.Scope, hourColsX).filter(gq.Filter, hourColsX)
	q.add(`), ?) END AS own FROM hourly WHERE hour >= ? AND hour < ? AND allocated = 1`,
		gpustore.LoneSampleIntervalS, hFrom, hTo)
	if ranges != nil {
		if len(ranges) == 0 {
			q.add(` AND 0`)
		} else {
			q.add(` AND (`)
			for i, r := range ranges {
				if i > 0 {
					q.add(` OR `)
				}
				q.add(`(hour >= ? AND hour < ?)`, r[0], r[1])
			}
			q.add(`)`)
		}
	}
	q.scope(gq.Scope, hourCols).filter(gq.Filter, hourCols)
	q.add(`), iv AS (SELECT *, min(own, ?) AS iv_s FROM h)`, gpustore.MaxSampleIntervalS)
}

// freshDays are the fresh days wholly inside [hFrom, hTo), in order, read
// in the report's transaction.
func freshDays(ctx context.Context, tx *sql.Tx, hFrom, hTo int64) ([]int64, error) {
	rs, err := tx.QueryContext(ctx, `SELECT day FROM daily_state WHERE fresh = 1 AND day >= ? AND day + ? <= ?
		ORDER BY day`, hFrom, secondsPerDay, hTo)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rs.Close() }()
	var days []int64
	for rs.Next() {
		var d int64
		if err := rs.Scan(&d); err != nil {
			return nil, err
		}
		days = append(days, d)
	}
	return days, rs.Err()
}

// gaps are the spans of [hFrom, hTo) outside the (sorted) days.
func gaps(hFrom, hTo int64, days []int64) [][2]int64 {
	out := [][2]int64{}
	at := hFrom
	for _, d := range days {
		if d > at {
			out = append(out, [2]int64{at, d})
		}
		at = d + secondsPerDay
	}
	if at < hTo {
		out = append(out, [2]int64{at, hTo})
	}
	return out
}

// markStale marks the days of the written hours stale, in the write's
// transaction.
func markStale(ctx context.Context, tx *sql.Tx, hours map[hourKey]*hourAgg) error {
	days := map[int64]bool{}
	for k := range hours {
		days[floorDiv(k.hour, secondsPerDay)*secondsPerDay] = true
	}
	for d := range days {
		if _, err := tx.ExecContext(ctx, `INSERT INTO daily_state (day, fresh) VALUES (?, 0)
			ON CONFLICT DO UPDATE SET fresh = 0 WHERE fresh != 0`, d); err != nil {
			return err
		}
	}
	return nil
}

// rollDays recomputes up to limit stale closed days, one transaction each
// (the writer's lock held); it returns how many it computed.
func (s *Store) rollDays(ctx context.Context, limit int) (int, error) {
	var newest sql.NullInt64
	if err := s.w.QueryRowContext(ctx, `SELECT max(hour) FROM hourly`).Scan(&newest); err != nil {
		return 0, fmt.Errorf("daily rollup: %w", err)
	}
	if !newest.Valid {
		return 0, nil
	}
	rs, err := s.w.QueryContext(ctx, `SELECT day FROM daily_state WHERE fresh = 0 AND day + ? <= ? ORDER BY day LIMIT ?`,
		secondsPerDay+closedAfter, newest.Int64, limit)
	if err != nil {
		return 0, fmt.Errorf("daily rollup: %w", err)
	}
	var days []int64
	for rs.Next() {
		var d int64
		if err := rs.Scan(&d); err != nil {
			_ = rs.Close()
			return 0, fmt.Errorf("daily rollup: %w", err)
		}
		days = append(days, d)
	}
	_ = rs.Close()
	if err := rs.Err(); err != nil {
		return 0, fmt.Errorf("daily rollup: %w", err)
	}
	for _, d := range days {
		if err := s.rollDay(ctx, d); err != nil {
			return 0, fmt.Errorf("daily rollup of %d: %w", d, err)
		}
	}
	return len(days), nil
}

// rollDay replaces day d's rows with the hourly computation over all rows.
func (s *Store) rollDay(ctx context.Context, d int64) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `DELETE FROM daily WHERE day = ?`, d); err != nil {
		return err
	}
	q := &query{}
	q.add(`INSERT INTO daily (day, hub, cluster, node, namespace, project_pi, model, profile, hw_id,
		alloc_s, used_s, idle_s, seen) WITH `)
	hourRows(q, gpustore.GPUHoursQuery{Filter: gpustore.Filter{Scope: gpustore.Scope{All: true}}}, d, d+secondsPerDay, nil)
	q.add(` SELECT ?, hub, cluster, node, namespace, project_pi, model, profile, hw_id,
		sum(fraction * samples * iv_s), coalesce(sum(fraction * samples * iv_s * busy), 0),
		sum(CASE WHEN busy < ? THEN fraction * samples * iv_s ELSE 0 END), max(samples > 0)
		FROM iv GROUP BY hub, cluster, node, namespace, project_pi, model, profile, hw_id`, d, gpustore.IdleBusyThreshold)
	if _, err := tx.ExecContext(ctx, q.String(), q.args...); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE daily_state SET fresh = 1 WHERE day = ?`, d); err != nil {
		return err
	}
	return tx.Commit()
}
