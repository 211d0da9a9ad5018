package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// keyCols are the GROUP BY columns of each aggregation key: a project is a
// namespace on a cluster of a hub, a node a node of a cluster. Each column
// comes back as its own key (keyOf), the contract of gpustore.KeyProject.
var keyCols = map[string][]string{
	gpustore.KeyProject: {"hub", "cluster", "namespace"},
	gpustore.KeyPI:      {"project_pi"},
	gpustore.KeyCluster: {"hub", "cluster"},
	gpustore.KeyNode:    {"hub", "cluster", "node"},
	gpustore.KeyModel:   {"model"},
	gpustore.KeyProfile: {"profile"},
	gpustore.KeyDevice:  {"hw_id"},
}

// keyOf is the GPUHoursRow.Keys entry of each GROUP BY column ("hub" is
// not an aggregation key, only what qualifies a cluster: gpustore.KeyProject).
var keyOf = map[string]string{
	"hub":        gpustore.KeyHub,
	"cluster":    gpustore.KeyCluster,
	"namespace":  gpustore.KeyProject,
	"project_pi": gpustore.KeyPI,
	"node":       gpustore.KeyNode,
	"model":      gpustore.KeyModel,
	"profile":    gpustore.KeyProfile,
	"hw_id":      gpustore.KeyDevice,
}

// keyOrder is the order of the GROUP BY columns, which rows are sorted by
// (the contract's order, as the ClickHouse backend's ORDER BY).
var keyOrder = []string{"hub", "cluster", "namespace", "project_pi", "node", "model", "profile", "hw_id"}

// stepExpr is the start (unix s) of the UTC step holding the unix second x.
func stepExpr(st gpustore.Step, x string) string {
	switch st {
	case gpustore.StepDay:
		return "(" + x + " / 86400 * 86400)"
	case gpustore.StepWeek: // 1970-01-01 was a Thursday: Monday is 3 days before
		return "((" + x + " / 86400 - ((" + x + " / 86400 + 3) % 7)) * 86400)"
	case gpustore.StepMonth:
		return "CAST(strftime('%s', " + x + ", 'unixepoch', 'start of month') AS INTEGER)"
	}
	return "0"
}

// stepStart and nextStep walk the steps in Go, for the bounds.
func stepStart(st gpustore.Step, t time.Time) time.Time {
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	switch st {
	case gpustore.StepDay:
		return day
	case gpustore.StepWeek:
		return day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
	case gpustore.StepMonth:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return t
}

func nextStep(st gpustore.Step, t time.Time) time.Time {
	switch st {
	case gpustore.StepDay:
		return t.AddDate(0, 0, 1)
	case gpustore.StepWeek:
		return t.AddDate(0, 0, 7)
	case gpustore.StepMonth:
		return t.AddDate(0, 1, 0)
	}
	return t
}

func checkGPUHours(q gpustore.GPUHoursQuery) error {
	if err := reportWindow(q.Window); err != nil {
		return err
	}
	switch q.Step {
	case gpustore.StepNone, gpustore.StepDay, gpustore.StepWeek, gpustore.StepMonth:
	default:
		return badQuery("unknown step %q", q.Step)
	}
	switch q.Source {
	case gpustore.SourceAuto, gpustore.SourceRaw, gpustore.SourceRollup:
	default:
		return badQuery("unknown source %q", q.Source)
	}
	if q.Step != gpustore.StepNone {
		n := 0
		for t := stepStart(q.Step, q.Window.From); t.Before(q.Window.To); t = nextStep(q.Step, t) {
			if n++; n > gpustore.MaxSteps {
				return badQuery("more than %d %s steps", gpustore.MaxSteps, q.Step)
			}
		}
	}
	seen := map[string]bool{}
	for _, k := range q.Aggregate {
		if _, ok := keyCols[k]; !ok {
			return badQuery("unknown aggregation key %q", k)
		}
		if seen[k] {
			return badQuery("aggregation key %q given twice", k)
		}
		seen[k] = true
	}
	if q.Limit < 0 || q.Offset < 0 || q.Limit > gpustore.MaxLimit {
		return badQuery("limit must be 0 to %d and offset not negative", gpustore.MaxLimit)
	}
	return nil
}

// GPUHours is the GPU-hours report (docs/dashboards.md) from raw samples or
// the rollups: the monthly and daily tables for the hours they cover of
// reads that see whole nodes, the hourly rollup for the rest (rollup.go).
// Rows are sorted by step and key values; Limit pages them only when given
// (a report is whole by default).
func (s *Store) GPUHours(ctx context.Context, gq gpustore.GPUHoursQuery) ([]gpustore.GPUHoursRow, error) {
	if err := checkGPUHours(gq); err != nil {
		return nil, err
	}
	out := []gpustore.GPUHoursRow{}
	if gq.Scope.Empty() {
		return out, nil
	}
	rollup := gpustore.ReadsRollup(gq.Source, gq.Window, s.now(), s.cfg.RawRetention)
	var group []string
	needProject := false
	need := map[string]bool{}
	for _, k := range gq.Aggregate {
		for _, c := range keyCols[k] {
			need[c] = true
		}
		if k == gpustore.KeyProject || k == gpustore.KeyPI {
			needProject = true
		}
	}
	for _, c := range keyOrder {
		if need[c] {
			group = append(group, c)
		}
	}
	var db queryer = s.r
	var qs []*query // the steps of each are its own
	if !rollup {
		q := &query{}
		q.add("WITH ")
		sampleRows(q, gq.Filter, gq.Window.From.UnixNano(), gq.Window.To.UnixNano())
		intervals(q)
		q.add(` SELECT ` + stepExpr(gq.Step, "ts_s") + ` AS step`)
		for _, c := range group {
			q.add(", " + c)
		}
		q.add(`, sum(fraction * dt) / 3600.0, sum(fraction * busy * dt) / 3600.0,
			sum(CASE WHEN busy < ? THEN fraction * dt ELSE 0 END) / 3600.0, count(DISTINCT hw_id)
			FROM iv WHERE allocated = 1`, gpustore.IdleBusyThreshold)
		groupBy(q, group, needProject)
		qs = append(qs, q)
	} else {
		// Whole hours the window touches (the rollup panel's semantics), from
		// the monthly and daily tables for the hours they cover where the
		// query sees whole nodes, from the hourly rollup for the rest
		// (rollup.go).
		hFrom := gq.Window.From.UTC().Truncate(time.Hour).Unix()
		hTo := gq.Window.To.Unix() + boolInt(gq.Window.To.Nanosecond() > 0)
		// One read transaction: the covered hours and the rows agree.
		tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return nil, fmt.Errorf("embedded store: %w", err)
		}
		defer func() { _ = tx.Rollback() }()
		db = tx
		p := rollupPlan{}
		if dailyServes(gq) && !s.hourlyOnly {
			if p, err = planRollup(ctx, tx, gq, group, hFrom, hTo); err != nil {
				return nil, fmt.Errorf("embedded store: %w", err)
			}
		}
		if q := rollupQuery(gq, group, needProject, hFrom, hTo, p); q != nil {
			qs = append(qs, q)
		}
		if q := projectsQuery(gq, p); q != nil {
			qs = append(qs, q)
		}
	}
	// Rows keep their key values in a slice until sorted and paged (the
	// maps are built for the page only); one step's bounds serve its rows.
	type keyed struct {
		row gpustore.GPUHoursRow
		at  int // its key values: keys[at : at+len(group)]
	}
	var (
		rows       []keyed
		keys       []string
		step       int64
		row        gpustore.GPUHoursRow
		vals       = make([]string, len(group))
		dest       = []any{&step}
		from, to   = gq.Window.From.UTC(), gq.Window.To.UTC()
		start, end = from, to
		lastStep   int64
		stepped    bool // lastStep is set
	)
	for i := range vals {
		dest = append(dest, &vals[i])
	}
	dest = append(dest, &row.Allocated, &row.Used, &row.Idle, &row.Devices)
	for _, q := range qs {
		err := rowsOn(ctx, db, q, func(r *sql.Rows) error {
			if err := r.Scan(dest...); err != nil {
				return err
			}
			if gq.Step != gpustore.StepNone && (!stepped || lastStep != step) {
				st := time.Unix(step, 0).UTC()
				start, end = maxTime(st, from), minTime(nextStep(gq.Step, st), to)
				lastStep, stepped = step, true
			}
			row.Start, row.End = start, end
			rows = append(rows, keyed{row, len(keys)})
			keys = append(keys, vals...)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(rows, func(a, b keyed) int {
		if c := a.row.Start.Compare(b.row.Start); c != 0 {
			return c
		}
		return slices.Compare(keys[a.at:a.at+len(group)], keys[b.at:b.at+len(group)])
	})
	if gq.Limit > 0 || gq.Offset > 0 {
		lo := min(gq.Offset, len(rows))
		hi := len(rows)
		if gq.Limit > 0 {
			hi = min(lo+gq.Limit, len(rows))
		}
		rows = rows[lo:hi]
	}
	out = make([]gpustore.GPUHoursRow, len(rows))
	for i, k := range rows {
		out[i] = k.row
		out[i].Keys = make(map[string]string, len(group))
		for j, c := range group {
			out[i].Keys[keyOf[c]] = keys[k.at+j]
		}
	}
	return out, nil
}

// groupBy ends a report query: rows of projects only when a key needs
// one, grouped by step and keys.
func groupBy(q *query, group []string, needProject bool) {
	if needProject {
		q.add(` AND namespace != ''`)
	}
	q.add(` GROUP BY step`)
	for _, c := range group {
		q.add(", " + c)
	}
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Idle lists allocated devices below the idle threshold: at their last
// sample the scope sees (zero window), or the idle GPU-hours each pod
// accrued in the window (raw samples), most idle first.
func (s *Store) Idle(ctx context.Context, f gpustore.Filter) ([]gpustore.IdleAllocation, error) {
	out := []gpustore.IdleAllocation{}
	limit, offset, err := page(f)
	if err != nil {
		return nil, err
	}
	if !f.Window.IsZero() {
		if err := reportWindow(f.Window); err != nil {
			return nil, err
		}
	}
	if f.Scope.Empty() {
		return out, nil
	}
	q := &query{}
	if f.Window.IsZero() {
		// each device's latest row (read.go's latest)
		q.add(`WITH l AS (SELECT *, max(` + latestKey + `) FROM device_last WHERE 1`)
		q.scope(f.Scope, deviceCols).filter(f, deviceCols)
		q.add(` GROUP BY hub, cluster, node, hw_id) SELECT hub, cluster, node, hw_id, namespace, pod, fraction,
			fraction * (ts - coalesce(idle_since, ts)) / 3600e9 AS idle_h, coalesce(idle_since, ts), ts
			FROM l WHERE allocated = 1 AND busy < ?`, gpustore.IdleBusyThreshold)
	} else {
		q.add("WITH ")
		sampleRows(q, f, f.Window.From.UnixNano(), f.Window.To.UnixNano())
		intervals(q)
		q.add(` SELECT hub, cluster, node, hw_id, namespace, pod, max(fraction), sum(fraction * dt) / 3600.0 AS idle_h,
			min(ts), max(ts) FROM iv WHERE allocated = 1 AND busy < ?
			GROUP BY hub, cluster, node, hw_id, namespace, pod`, gpustore.IdleBusyThreshold)
	}
	q.add(` ORDER BY idle_h DESC, hub, cluster, node, hw_id, namespace, pod LIMIT ? OFFSET ?`, limit, offset)
	err = s.rows(ctx, q, func(r *sql.Rows) error {
		var a gpustore.IdleAllocation
		var since, last int64
		if err := r.Scan(&a.Hub, &a.Cluster, &a.Node, &a.Device, &a.Namespace, &a.Pod, &a.Fraction, &a.IdleHours,
			&since, &last); err != nil {
			return err
		}
		a.Since, a.LastSeen = fromNS(since), fromNS(last)
		out = append(out, a)
		return nil
	})
	return out, err
}

// Utilization is the series of the samples the scope sees in the window
// (one device, one namespace, or all), in at most MaxPoints buckets.
func (s *Store) Utilization(ctx context.Context, uq gpustore.UtilizationQuery) ([]gpustore.UtilizationPoint, error) {
	if err := reportWindow(uq.Window); err != nil {
		return nil, err
	}
	n := uq.MaxPoints
	switch {
	case n < 0 || n > gpustore.MaxPoints:
		return nil, badQuery("max points %d is not 1 to %d", n, gpustore.MaxPoints)
	case n == 0:
		n = gpustore.MaxPoints
	}
	out := []gpustore.UtilizationPoint{}
	if uq.Scope.Empty() {
		return out, nil
	}
	q, from, width := utilizationQuery(uq, n)
	err := s.rows(ctx, q, func(r *sql.Rows) error {
		var p gpustore.UtilizationPoint
		var b int64
		if err := r.Scan(&b, &p.Busy, &p.FBUsedMiB, &p.PowerW, &p.TempC, &p.Samples); err != nil {
			return err
		}
		p.Time = fromNS(from + b*width)
		out = append(out, p)
		return nil
	})
	return out, err
}

// utilizationQuery is Utilization's statement over n buckets, with the
// window's start (ns) and the buckets' width (ns) its rows are read by.
func utilizationQuery(uq gpustore.UtilizationQuery, n int) (q *query, from, width int64) {
	from, to := uq.Window.From.UnixNano(), uq.Window.To.UnixNano()
	// whole seconds, at least one (the contract's Utilization), so both
	// backends cut the same buckets: ceil(window / n) rounded up to a second
	sec := int64(time.Second)
	width = ((to-from+int64(n)-1)/int64(n) + sec - 1) / sec * sec
	q = &query{}
	q.add("WITH ")
	sampleRows(q, uq.Filter, from, to)
	q.add(` SELECT (ts - ?) / ? AS b, coalesce(sum(fraction * busy) / nullif(sum(fraction), 0), 0), max(fb_used),
		max(power), max(temp), count(*) FROM w GROUP BY b ORDER BY b`, from, width)
	return q, from, width
}
