package embedded

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"strings"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// Which table answers which hours of a rollup report that sees whole nodes
// (dailyServes): a month the monthly tables cover inside the window (with a
// month or no step: a month's rows lie in one step), else a day the daily
// table covers, else the hourly rollup. SQLite (modernc, in Go) sorts and
// groups at a few µs a row, so a report costs about its rows: for the
// monthly report of 1,000 GPUs over 400 days, 13,000 monthly rows (or
// 5,200 per project) instead of 400,000 daily or 9.6 million hourly ones.

// span is the hours [from, to) (unix s) a day or month covers from its
// start.
type span struct{ from, to int64 }

// rollupPlan is what each table answers; the hours of the window outside
// them come from the hourly rollup.
type rollupPlan struct {
	projects []int64 // months from monthly_projects, each a whole step
	months   []int64 // months from monthly
	days     []int64 // days from daily
	// hours are the spans left to the hourly rollup; nil: the whole window.
	hours [][2]int64
}

// projectGroup is the GROUP BY of the report by project and PI, what
// monthly_projects holds.
var projectGroup = []string{"hub", "cluster", "namespace", "project_pi"}

// planRollup reads the covered days and months in the report's
// transaction and plans the report over [hFrom, hTo).
func planRollup(ctx context.Context, tx *sql.Tx, gq gpustore.GPUHoursQuery, group []string, hFrom, hTo int64) (rollupPlan, error) {
	var p rollupPlan
	var months []span
	if gq.Step == gpustore.StepNone || gq.Step == gpustore.StepMonth {
		var err error
		if months, err = freshSpans(ctx, tx, `SELECT month, through FROM monthly_state
			WHERE fresh = 1 AND month >= ? AND through <= ? ORDER BY month`, hFrom, hTo); err != nil {
			return p, err
		}
	}
	// monthly_projects has no node: a Node filter reads monthly.
	byProject := gq.Node == "" && slices.Equal(group, projectGroup)
	for _, m := range months {
		if byProject && wholeStep(gq.Step, m, hFrom, hTo) {
			p.projects = append(p.projects, m.from)
		} else {
			p.months = append(p.months, m.from)
		}
	}
	days, err := freshSpans(ctx, tx, `SELECT day, through FROM daily_state
		WHERE fresh = 1 AND day >= ? AND through <= ? ORDER BY day`, hFrom, hTo)
	if err != nil {
		return p, err
	}
	used := slices.Clone(months)
	for _, d := range days {
		// A day of a month read is left out: the month holds its hours
		// (or those it covered when computed; the hourly rollup the rest).
		if !slices.ContainsFunc(months, func(m span) bool { return m.from <= d.from && d.from < m.to }) {
			p.days = append(p.days, d.from)
			used = append(used, d)
		}
	}
	slices.SortFunc(used, func(a, b span) int { return cmp.Compare(a.from, b.from) })
	p.hours = gaps(hFrom, hTo, used)
	return p, nil
}

// freshSpans reads (start, through) rows.
func freshSpans(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]span, error) {
	rs, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rs.Close() }()
	var out []span
	for rs.Next() {
		var sp span
		if err := rs.Scan(&sp.from, &sp.to); err != nil {
			return nil, err
		}
		out = append(out, sp)
	}
	return out, rs.Err()
}

// wholeStep says whether a month's covered hours are the whole of its step
// within the window, so that the step's rows come from it alone.
func wholeStep(st gpustore.Step, m span, hFrom, hTo int64) bool {
	if st == gpustore.StepNone {
		return m.from == hFrom && m.to == hTo
	}
	return m.to == min(nextMonth(m.from), hTo)
}

// gaps are the spans of [hFrom, hTo) outside the sorted, disjoint spans.
func gaps(hFrom, hTo int64, used []span) [][2]int64 {
	out := [][2]int64{}
	at := hFrom
	for _, u := range used {
		if u.from > at {
			out = append(out, [2]int64{at, u.from})
		}
		at = u.to
	}
	if at < hTo {
		out = append(out, [2]int64{at, hTo})
	}
	return out
}

// in is " IN (?,?,...)" over vs, bound.
func (q *query) in(vs []int64) {
	args := make([]any, len(vs))
	for i, v := range vs {
		args[i] = v
	}
	q.add(" IN ("+strings.TrimSuffix(strings.Repeat("?,", len(vs)), ",")+")", args...)
}

// rollupQuery is the report over the hourly rollup's spans and the daily
// and monthly rows of the plan; nil when the plan leaves it nothing.
func rollupQuery(gq gpustore.GPUHoursQuery, group []string, needProject bool, hFrom, hTo int64, p rollupPlan) *query {
	if p.hours != nil && len(p.hours) == 0 && len(p.days) == 0 && len(p.months) == 0 {
		return nil
	}
	q := &query{}
	q.add("WITH ")
	hourRows(q, gq, hFrom, hTo, p.hours)
	q.add(`, u AS (SELECT `+stepExpr(gq.Step, "hour")+` AS step, hub, cluster, node, namespace, project_pi, model, profile, hw_id,
		fraction * samples * iv_s AS a, fraction * samples * iv_s * busy AS us,
		CASE WHEN busy < ? THEN fraction * samples * iv_s ELSE 0 END AS id,
		CASE WHEN samples > 0 THEN hw_id END AS dev FROM iv`, gpustore.IdleBusyThreshold)
	// A month's step is the month itself (monthly rows are read for month
	// steps or none).
	monthStep := "month"
	if gq.Step == gpustore.StepNone {
		monthStep = "0"
	}
	for _, t := range []struct {
		table, unit, step string
		starts            []int64
	}{{"daily", "day", stepExpr(gq.Step, "day"), p.days}, {"monthly", "month", monthStep, p.months}} {
		if len(t.starts) == 0 {
			continue
		}
		q.add(` UNION ALL SELECT ` + t.step + `, hub, cluster, node, namespace, project_pi, model, profile, hw_id,
			alloc_s, used_s, idle_s, CASE WHEN seen THEN hw_id END FROM ` + t.table + ` WHERE ` + t.unit)
		q.in(t.starts)
		q.scope(gq.Scope, rollupCols).filter(gq.Filter, rollupCols)
	}
	q.add(`) SELECT step`)
	for _, c := range group {
		q.add(", " + c)
	}
	q.add(`, sum(a) / 3600.0, coalesce(sum(us), 0) / 3600.0, sum(id) / 3600.0, count(DISTINCT dev) FROM u WHERE 1`)
	groupBy(q, group, needProject)
	return q
}

// projectsQuery is the report's whole-month steps from monthly_projects,
// already one row per step and project; nil when the plan has none.
func projectsQuery(gq gpustore.GPUHoursQuery, p rollupPlan) *query {
	if len(p.projects) == 0 {
		return nil
	}
	step := "month"
	if gq.Step == gpustore.StepNone {
		step = "0"
	}
	q := &query{}
	q.add(`SELECT ` + step + ` AS step, hub, cluster, namespace, project_pi, alloc_s / 3600.0, used_s / 3600.0,
		idle_s / 3600.0, devices FROM monthly_projects WHERE namespace != '' AND month`)
	q.in(p.projects)
	q.scope(gq.Scope, projCols).filter(gq.Filter, projCols)
	return q
}
