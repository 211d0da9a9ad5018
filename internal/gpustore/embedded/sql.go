package embedded

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// defaultLimit is a page's size when the filter names none.
const defaultLimit = 100

// query builds one SQL statement from fixed fragments; every value from a
// caller goes in as a bound parameter (args), never into the text.
type query struct {
	b    strings.Builder
	args []any
}

func (q *query) add(sql string, args ...any) *query {
	q.b.WriteString(sql)
	q.args = append(q.args, args...)
	return q
}

func (q *query) String() string { return q.b.String() }

// cols names the columns a scope and filter apply to in one table or CTE.
// Column names are constants of this package, never input.
type cols struct {
	hub, cluster, node, namespace string
	// device is the condition for Filter.Device with one placeholder per
	// '?'; devArgs is how many times the device is bound.
	device  string
	devArgs int
	// gpu, when set, is the condition for a Filter.Device naming a GPU
	// (no "/"), one placeholder: the hourly_gpu index's expression, the
	// GPU's rows and its slices' in one range of the index.
	gpu string
}

var (
	sampleCols  = cols{"r.hub", "r.cluster", "r.node", "r.namespace", "(r.hw_id = ? OR r.parent = ?)", 2, ""}
	deviceCols  = cols{"hub", "cluster", "node", "namespace", "(hw_id = ? OR parent = ?)", 2, ""}
	deviceColsX = cols{"x.hub", "x.cluster", "x.node", "x.namespace", "(x.hw_id = ? OR x.parent = ?)", 2, ""}
	// The hourly rollup has no parent: a slice is its GPU's id and "/...".
	hourCols = cols{
		"hub", "cluster", "node", "namespace", "(hw_id = ? OR substr(hw_id, 1, length(?) + 1) = ? || '/')", 3,
		"substr(hw_id, 1, instr(hw_id || '/', '/') - 1) = ?",
	}
	hourColsX = cols{
		"x.hub", "x.cluster", "x.node", "x.namespace", "(x.hw_id = ? OR substr(x.hw_id, 1, length(?) + 1) = ? || '/')", 3,
		"substr(x.hw_id, 1, instr(x.hw_id || '/', '/') - 1) = ?",
	}
	sessCols = cols{"hub", "cluster", "node", "namespace", "(device = ? OR parent = ?)", 2, ""}
	projCols = cols{"hub", "cluster", "", "namespace", "", 0, ""}
)

// placeholders is "(?,?),(?,?)": n groups of k.
func placeholders(n, k int) string {
	g := "(" + strings.TrimSuffix(strings.Repeat("?,", k), ",") + ")"
	return strings.TrimSuffix(strings.Repeat(g+",", n), ",")
}

// scope adds " AND (<what s may see>)": managers of hubs and clusters every
// row of them, project members the rows of their (hub, cluster, namespace).
// The caller returns early for an empty scope.
func (q *query) scope(s gpustore.Scope, c cols) *query {
	if s.All {
		return q
	}
	var parts []string
	var args []any
	if len(s.Hubs) > 0 {
		parts = append(parts, c.hub+" IN ("+strings.TrimSuffix(strings.Repeat("?,", len(s.Hubs)), ",")+")")
		for _, h := range s.Hubs {
			args = append(args, h)
		}
	}
	if len(s.Clusters) > 0 {
		parts = append(parts, "("+c.hub+", "+c.cluster+") IN (VALUES "+placeholders(len(s.Clusters), 2)+")")
		for _, k := range s.Clusters {
			args = append(args, k.Hub, k.Cluster)
		}
	}
	var projects []gpustore.ProjectKey
	for _, p := range s.Projects {
		if p.Namespace != "" { // a project is a namespace: rows without one are nobody's
			projects = append(projects, p)
		}
	}
	if len(projects) > 0 {
		cond := "(" + c.hub + ", " + c.cluster + ", " + c.namespace + ") IN (VALUES " + placeholders(len(projects), 3) + ")"
		var vals []any
		for _, k := range projects {
			vals = append(vals, k.Hub, k.Cluster, k.Namespace)
		}
		if len(parts) == 0 {
			// A members-only scope also names each column's values, implied
			// by the pairs: SQLite walks the project indexes (namespace, hub,
			// cluster, time) by those lists, not by row values.
			var lists []string
			var listArgs []any
			for i, col := range []string{c.namespace, c.hub, c.cluster} {
				seen := map[string]bool{}
				for _, k := range projects {
					if v := [3]string{k.Namespace, k.Hub, k.Cluster}[i]; !seen[v] {
						seen[v] = true
						listArgs = append(listArgs, v)
					}
				}
				lists = append(lists, col+" IN ("+strings.TrimSuffix(strings.Repeat("?,", len(seen)), ",")+")")
			}
			cond = strings.Join(lists, " AND ") + " AND " + cond
			vals = append(listArgs, vals...)
		}
		parts = append(parts, cond)
		args = append(args, vals...)
	}
	if len(parts) == 0 {
		return q.add(" AND 0")
	}
	return q.add(" AND ("+strings.Join(parts, " OR ")+")", args...)
}

// filter adds the Filter's narrowing fields.
func (q *query) filter(f gpustore.Filter, c cols) *query {
	if f.Hub != "" {
		q.add(" AND "+c.hub+" = ?", f.Hub)
	}
	if f.Cluster != "" {
		q.add(" AND "+c.cluster+" = ?", f.Cluster)
	}
	if f.Node != "" && c.node != "" {
		q.add(" AND "+c.node+" = ?", f.Node)
	}
	if f.Namespace != "" {
		q.add(" AND "+c.namespace+" = ?", f.Namespace)
	}
	if f.Device != "" && c.gpu != "" && !strings.Contains(f.Device, "/") {
		q.add(" AND "+c.gpu, f.Device)
	} else if f.Device != "" && c.device != "" {
		args := make([]any, c.devArgs)
		for i := range args {
			args[i] = f.Device
		}
		q.add(" AND "+c.device, args...)
	}
	return q
}

func badQuery(format string, args ...any) error {
	return fmt.Errorf("%w: %s", gpustore.ErrBadQuery, fmt.Sprintf(format, args...))
}

// page is the filter's LIMIT and OFFSET.
func page(f gpustore.Filter) (limit, offset int, err error) {
	switch {
	case f.Limit < 0 || f.Offset < 0:
		return 0, 0, badQuery("limit and offset must not be negative")
	case f.Limit > gpustore.MaxLimit:
		return 0, 0, badQuery("limit %d is above %d", f.Limit, gpustore.MaxLimit)
	case f.Limit == 0:
		return defaultLimit, f.Offset, nil
	}
	return f.Limit, f.Offset, nil
}

// entityWindow is an entity read's window in ns: an open end is unbounded.
func entityWindow(w gpustore.Window) (from, to int64, err error) {
	from, to = 0, math.MaxInt64
	if !w.From.IsZero() {
		from = w.From.UnixNano()
	}
	if !w.To.IsZero() {
		to = w.To.UnixNano()
	}
	if from >= to {
		return 0, 0, badQuery("window from %s is not before to %s", w.From.Format(time.RFC3339), w.To.Format(time.RFC3339))
	}
	return from, to, nil
}

// reportWindow checks a report's window: required, ordered, bounded.
func reportWindow(w gpustore.Window) error {
	switch {
	case w.From.IsZero() || w.To.IsZero():
		return badQuery("a report needs a window with from and to")
	case !w.From.Before(w.To):
		return badQuery("window from %s is not before to %s", w.From.Format(time.RFC3339), w.To.Format(time.RFC3339))
	case w.To.Sub(w.From) > gpustore.MaxWindow:
		return badQuery("window of %s is longer than %s", w.To.Sub(w.From), gpustore.MaxWindow)
	}
	return nil
}

func fromNS(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// sampleRows is the gpu_samples view over [from, to) with scope and filter:
// the CTE "w" every raw query starts from.
func sampleRows(q *query, f gpustore.Filter, from, to int64) {
	q.add(`w AS (SELECT s.ts, s.ts / 1000000000 AS ts_s, r.hub, r.cluster, r.node, r.namespace, r.pod, r.hw_id,
		r.parent, r.gpu_index, r.model, r.profile, r.allocated, r.fraction, r.project_name, r.project_pi,
		coalesce(s.prof, s.util / 100.0, 0) AS busy, coalesce(s.fb_used, 0) AS fb_used,
		coalesce(s.fb_free, 0) AS fb_free, coalesce(s.power, 0) AS power, coalesce(s.temp, 0) AS temp,
		coalesce(s.xid, 0) AS xid
		FROM samples s JOIN series r ON r.id = s.series WHERE s.ts >= ? AND s.ts < ?`, from, to)
	q.scope(f.Scope, sampleCols).filter(f, sampleCols).add(")")
}

// intervals is the CTE "iv" over "w": dt, what each sample stands for
// (docs/dashboards.md): to the device's next sample in the window, the last
// one since the previous, a lone one LoneSampleIntervalS, capped.
func intervals(q *query) {
	q.add(`, iv AS (SELECT *, min(CASE WHEN next_s IS NOT NULL THEN next_s - ts_s
			WHEN prev_s IS NOT NULL THEN ts_s - prev_s ELSE ? END, ?) AS dt
		FROM (SELECT *,
			min(ts_s) OVER (PARTITION BY hub, cluster, node, hw_id ORDER BY ts_s
				RANGE BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS next_s,
			max(ts_s) OVER (PARTITION BY hub, cluster, node, hw_id ORDER BY ts_s
				RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_s
			FROM w))`, gpustore.LoneSampleIntervalS, gpustore.MaxSampleIntervalS)
}
