package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// The daily table: the hourly rollup's GPU-hours summed per UTC day and
// (hub, cluster, node, namespace, PI, model, profile, device), for the
// rollup report over long windows; the monthly tables (monthly.go) sum it
// further.
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
// Freshness: daily_state lists the days the table holds and the hours of
// each it covers, [day, through): the whole day once it is closed, its
// closed hours while it is open (today), so a report reads only the last
// hour or two of today from the hourly rollup. A write to a covered hour
// marks the day stale (fresh = 0, in the write's transaction); a write
// after through leaves it fresh, since the covered hours did not change.
// Readers take a day from the table only while it is fresh, else from the
// hourly rollup, so a late sample is reflected at once. The writer
// recomputes stale days and extends open ones to their closed hours, a few
// per pass, with the retention pass.
const (
	secondsPerDay  = 86400
	secondsPerHour = 3600
	// closedAfter (s): an hour is closed, and the tables may hold it, once
	// the newest sample written is this far past its end. A sample of a
	// covered hour arriving later only makes its day stale until the next
	// pass.
	closedAfter = 10 * 60
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

// rollupCols are the daily and monthly tables' columns for scope and filter.
var rollupCols = cols{"hub", "cluster", "node", "namespace", "(hw_id = ? OR substr(hw_id, 1, length(?) + 1) = ? || '/')", 3, ""}

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
// are the half-open spans to read instead (those the daily and monthly
// tables do not hold).
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
	if ranges == nil {
		ranges = [][2]int64{{hFrom, hTo}}
	}
	if len(ranges) == 0 {
		q.add(`), ?) END AS own FROM hourly WHERE 0`, gpustore.LoneSampleIntervalS)
	} else {
		// A range scan of the key per span, the spans the outer loop
		// (CROSS JOIN keeps the order): with the spans and the window both
		// in the WHERE, SQLite may scan the window.
		args := []any{gpustore.LoneSampleIntervalS}
		for _, r := range ranges {
			args = append(args, r[0], r[1])
		}
		q.add(`), ?) END AS own FROM (VALUES `+placeholders(len(ranges), 2)+`) AS r CROSS JOIN hourly
			WHERE hour >= r.column1 AND hour < r.column2 AND allocated = 1`, args...)
	}
	q.scope(gq.Scope, hourCols).filter(gq.Filter, hourCols)
	q.add(`), iv AS (SELECT *, min(own, ?) AS iv_s FROM h)`, gpustore.MaxSampleIntervalS)
}

// markStale marks the days and months of the written hours stale where
// the tables cover those hours, in the write's transaction; a day or month
// first written gets its state row (stale, nothing covered).
func markStale(ctx context.Context, tx *sql.Tx, hours map[hourKey]*hourAgg) error {
	first := map[int64]int64{} // day: the earliest hour written
	for k := range hours {
		d := floorDiv(k.hour, secondsPerDay) * secondsPerDay
		if h, ok := first[d]; !ok || k.hour < h {
			first[d] = k.hour
		}
	}
	for d, h := range first {
		if _, err := tx.ExecContext(ctx, `INSERT INTO daily_state (day, fresh, through) VALUES (?, 0, ?)
			ON CONFLICT DO UPDATE SET fresh = 0 WHERE fresh != 0 AND ? < through`, d, d, h); err != nil {
			return err
		}
	}
	return markMonthsStale(ctx, tx, first)
}

// closedHours is the end (unix s) of the closed hours: those that ended
// closedAfter before the newest sample written; ok is false while the
// store holds none.
func (s *Store) closedHours(ctx context.Context) (end int64, ok bool, err error) {
	var newest sql.NullInt64
	if err := s.w.QueryRowContext(ctx, `SELECT max(last_any) FROM hourly WHERE hour = (SELECT max(hour) FROM hourly)`).
		Scan(&newest); err != nil {
		return 0, false, err
	}
	if !newest.Valid {
		return 0, false, nil
	}
	return floorDiv(floorDiv(newest.Int64, int64(time.Second))-closedAfter, secondsPerHour) * secondsPerHour, true, nil
}

// rollDays recomputes up to limit days that are stale or whose closed
// hours reach past what the table covers, one transaction each (the
// writer's lock held); it returns how many it computed.
func (s *Store) rollDays(ctx context.Context, closed int64, limit int) (int, error) {
	rs, err := s.w.QueryContext(ctx, `SELECT day FROM daily_state WHERE day < ?
		AND (fresh = 0 OR through < min(day + ?, ?)) ORDER BY day LIMIT ?`, closed, secondsPerDay, closed, limit)
	if err != nil {
		return 0, fmt.Errorf("daily rollup: %w", err)
	}
	days, err := int64s(rs)
	if err != nil {
		return 0, fmt.Errorf("daily rollup: %w", err)
	}
	for _, d := range days {
		if err := s.rollDay(ctx, d, min(d+secondsPerDay, closed)); err != nil {
			return 0, fmt.Errorf("daily rollup of %d: %w", d, err)
		}
	}
	return len(days), nil
}

// int64s reads a one-column result and closes it.
func int64s(rs *sql.Rows) ([]int64, error) {
	defer func() { _ = rs.Close() }()
	var out []int64
	for rs.Next() {
		var v int64
		if err := rs.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rs.Err()
}

// rollDay replaces day d's rows with the hourly computation over all rows
// of the hours [d, through).
func (s *Store) rollDay(ctx context.Context, d, through int64) error {
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
	hourRows(q, gpustore.GPUHoursQuery{Filter: gpustore.Filter{Scope: gpustore.Scope{All: true}}}, d, through, nil)
	q.add(` SELECT ?, hub, cluster, node, namespace, project_pi, model, profile, hw_id,
		sum(fraction * samples * iv_s), coalesce(sum(fraction * samples * iv_s * busy), 0),
		sum(CASE WHEN busy < ? THEN fraction * samples * iv_s ELSE 0 END), max(samples > 0)
		FROM iv GROUP BY hub, cluster, node, namespace, project_pi, model, profile, hw_id`, d, gpustore.IdleBusyThreshold)
	if _, err := tx.ExecContext(ctx, q.String(), q.args...); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE daily_state SET fresh = 1, through = ? WHERE day = ?`, through, d); err != nil {
		return err
	}
	return tx.Commit()
}
