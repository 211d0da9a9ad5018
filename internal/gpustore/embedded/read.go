package embedded

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// stateRank orders states so that a MIG GPU shows its most notable slice's.
const stateRank = `CASE WHEN xid != 0 THEN 4 WHEN allocated = 0 THEN 1 WHEN busy < ? THEN 2 ELSE 3 END`

var rankState = map[int]gpustore.State{
	1: gpustore.StateFree, 2: gpustore.StateIdle, 3: gpustore.StateInUse, 4: gpustore.StateError,
}

// latest adds the CTEs "d" (the last row of each GPU or slice the scope
// sees: its latest state, or the last sample in the window) and "dev" (whole
// GPUs, with MIG GPUs made of their slices).
func latest(q *query, f gpustore.Filter, windowed bool, from, to int64) {
	q.add("WITH ")
	var src string
	if windowed {
		sampleRows(q, f, from, to)
		q.add(", ")
		src = "w"
	}
	// The row of each device with the latest ts (then the last namespace):
	// SQLite takes a max() query's other columns from the row holding the
	// max, in one pass in key order, where a window function sorts.
	q.add(`d AS (SELECT hub, cluster, node, hw_id, namespace, pod, parent, gpu_index, model, profile, fraction,
		allocated, busy, xid, ts, `+stateRank+` AS st, max(`+latestKey+`) FROM `, gpustore.IdleBusyThreshold)
	if windowed {
		q.add(src + " WHERE 1")
	} else {
		q.add("device_last WHERE 1")
		q.scope(f.Scope, deviceCols)
		g := f
		g.Device = "" // selected below, on the GPU or slice id
		q.filter(g, deviceCols)
	}
	q.add(` GROUP BY hub, cluster, node, hw_id),
	dev AS (
		SELECT hub, cluster, node, hw_id AS id, gpu_index, model, 0 AS mig, 0 AS slices, st,
			CASE WHEN allocated = 1 THEN namespace ELSE '' END AS hns, CASE WHEN allocated = 1 THEN pod ELSE '' END AS hpod,
			xid, ts FROM d WHERE parent = ''
		UNION ALL
		SELECT hub, cluster, node, parent, max(gpu_index), max(model), 1, count(*), max(st), '', '', max(xid), max(ts)
			FROM d WHERE parent != '' GROUP BY hub, cluster, node, parent)`)
}

// latestKey orders a device's rows by ts, then namespace: ts is at most 19
// digits (nanoseconds), so the zero-padded text compares as the number.
const latestKey = `printf('%020d', ts) || namespace`

func (s *Store) entityQuery(f gpustore.Filter) (q *query, limit, offset int, err error) {
	if limit, offset, err = page(f); err != nil {
		return nil, 0, 0, err
	}
	from, to, err := entityWindow(f.Window)
	if err != nil {
		return nil, 0, 0, err
	}
	q = &query{}
	if f.Window.IsZero() {
		latest(q, f, false, 0, 0)
	} else {
		latest(q, f, true, from, to)
	}
	return q, limit, offset, nil
}

func (s *Store) rows(ctx context.Context, q *query, scan func(*sql.Rows) error) error {
	return rowsOn(ctx, s.r, q, scan)
}

// queryer is a *sql.DB or *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func rowsOn(ctx context.Context, db queryer, q *query, scan func(*sql.Rows) error) error {
	rs, err := db.QueryContext(ctx, q.String(), q.args...)
	if err != nil {
		return fmt.Errorf("embedded store: %w", err)
	}
	defer func() { _ = rs.Close() }()
	for rs.Next() {
		if err := scan(rs); err != nil {
			return fmt.Errorf("embedded store: %w", err)
		}
	}
	if err := rs.Err(); err != nil {
		return fmt.Errorf("embedded store: %w", err)
	}
	return nil
}

// Hubs lists the hubs of the GPUs the scope sees.
func (s *Store) Hubs(ctx context.Context, f gpustore.Filter) ([]gpustore.Hub, error) {
	out := []gpustore.Hub{}
	if f.Scope.Empty() {
		return out, nil
	}
	q, limit, offset, err := s.entityQuery(f)
	if err != nil {
		return nil, err
	}
	q.add(` SELECT hub, count(DISTINCT cluster), count(*), `)
	lastSeen(q, f, "hub")
	q.add(` FROM dev WHERE 1`)
	deviceFilter(q, f)
	q.add(` GROUP BY hub ORDER BY hub LIMIT ? OFFSET ?`, limit, offset)
	err = s.rows(ctx, q, func(r *sql.Rows) error {
		var h gpustore.Hub
		var ts int64
		if err := r.Scan(&h.Name, &h.Clusters, &h.GPUs, &ts); err != nil {
			return err
		}
		h.LastSeen = fromNS(ts)
		out = append(out, h)
		return nil
	})
	return out, err
}

// lastSeen adds the last time the scope saw the group's GPUs at all (not
// only in the window: as the ClickHouse backend reads it from gpu_topology),
// a subquery on device_last correlated with dev's group columns.
func lastSeen(q *query, f gpustore.Filter, group ...string) {
	q.add(`(SELECT max(x.ts) FROM device_last x WHERE 1`)
	for _, c := range group { // column names of this package, never input
		q.add(` AND x.` + c + ` = dev.` + c)
	}
	q.scope(f.Scope, deviceColsX).filter(f, deviceColsX)
	q.add(`)`)
}

func deviceFilter(q *query, f gpustore.Filter) {
	if f.Device != "" {
		q.add(` AND id = ?`, f.Device)
	}
}

// Clusters lists the clusters of the GPUs the scope sees.
func (s *Store) Clusters(ctx context.Context, f gpustore.Filter) ([]gpustore.Cluster, error) {
	out := []gpustore.Cluster{}
	if f.Scope.Empty() {
		return out, nil
	}
	q, limit, offset, err := s.entityQuery(f)
	if err != nil {
		return nil, err
	}
	q.add(` SELECT hub, cluster, count(DISTINCT node), count(*), sum(slices), `)
	lastSeen(q, f, "hub", "cluster")
	q.add(` FROM dev WHERE 1`)
	deviceFilter(q, f)
	q.add(` GROUP BY hub, cluster ORDER BY hub, cluster LIMIT ? OFFSET ?`, limit, offset)
	err = s.rows(ctx, q, func(r *sql.Rows) error {
		var c gpustore.Cluster
		var ts int64
		if err := r.Scan(&c.Hub, &c.Name, &c.Nodes, &c.GPUs, &c.Slices, &ts); err != nil {
			return err
		}
		c.LastSeen = fromNS(ts)
		out = append(out, c)
		return nil
	})
	return out, err
}

// Nodes lists the GPU nodes the scope sees.
func (s *Store) Nodes(ctx context.Context, f gpustore.Filter) ([]gpustore.Node, error) {
	out := []gpustore.Node{}
	if f.Scope.Empty() {
		return out, nil
	}
	q, limit, offset, err := s.entityQuery(f)
	if err != nil {
		return nil, err
	}
	q.add(` SELECT hub, cluster, node, count(*), sum(slices), group_concat(DISTINCT model), `)
	lastSeen(q, f, "hub", "cluster", "node")
	q.add(` FROM dev WHERE 1`)
	deviceFilter(q, f)
	q.add(` GROUP BY hub, cluster, node ORDER BY hub, cluster, node LIMIT ? OFFSET ?`, limit, offset)
	err = s.rows(ctx, q, func(r *sql.Rows) error {
		var n gpustore.Node
		var ts int64
		var models sql.NullString
		if err := r.Scan(&n.Hub, &n.Cluster, &n.Name, &n.GPUs, &n.Slices, &models, &ts); err != nil {
			return err
		}
		n.Models = []string{}
		for _, m := range strings.Split(models.String, ",") {
			if m != "" {
				n.Models = append(n.Models, m)
			}
		}
		sort.Strings(n.Models)
		n.LastSeen = fromNS(ts)
		out = append(out, n)
		return nil
	})
	return out, err
}

// Devices lists whole GPUs (a MIG GPU from its slices) with their state at
// their last sample the scope sees.
func (s *Store) Devices(ctx context.Context, f gpustore.Filter) ([]gpustore.Device, error) {
	out := []gpustore.Device{}
	if f.Scope.Empty() {
		return out, nil
	}
	q, limit, offset, err := s.entityQuery(f)
	if err != nil {
		return nil, err
	}
	q.add(` SELECT hub, cluster, node, id, gpu_index, model, mig, slices, st, hns, hpod, xid, ts FROM dev WHERE 1`)
	deviceFilter(q, f)
	q.add(` ORDER BY hub, cluster, node, id LIMIT ? OFFSET ?`, limit, offset)
	err = s.rows(ctx, q, func(r *sql.Rows) error {
		var d gpustore.Device
		var st int
		var ns, pod string
		var xid float64
		var ts int64
		if err := r.Scan(&d.Hub, &d.Cluster, &d.Node, &d.ID, &d.Index, &d.Model, &d.MIG, &d.Slices, &st, &ns, &pod,
			&xid, &ts); err != nil {
			return err
		}
		d.State, d.LastXID, d.LastSeen = rankState[st], int(xid), fromNS(ts)
		if pod != "" {
			d.Holder = &gpustore.Holder{Namespace: ns, Pod: pod}
		}
		out = append(out, d)
		return nil
	})
	return out, err
}

// Slices lists MIG slices with their state at their last sample the scope
// sees; Filter.Device selects a slice or every slice of a GPU.
func (s *Store) Slices(ctx context.Context, f gpustore.Filter) ([]gpustore.Slice, error) {
	out := []gpustore.Slice{}
	if f.Scope.Empty() {
		return out, nil
	}
	q, limit, offset, err := s.entityQuery(f)
	if err != nil {
		return nil, err
	}
	q.add(` SELECT hub, cluster, node, hw_id, parent, profile, fraction, model, st, namespace, pod, allocated, ts
		FROM d WHERE parent != ''`)
	if f.Device != "" {
		q.add(` AND (hw_id = ? OR parent = ?)`, f.Device, f.Device)
	}
	q.add(` ORDER BY hub, cluster, node, hw_id LIMIT ? OFFSET ?`, limit, offset)
	err = s.rows(ctx, q, func(r *sql.Rows) error {
		var sl gpustore.Slice
		var st int
		var ns, pod string
		var allocated bool
		var ts int64
		if err := r.Scan(&sl.Hub, &sl.Cluster, &sl.Node, &sl.ID, &sl.Parent, &sl.Profile, &sl.Fraction, &sl.Model, &st,
			&ns, &pod, &allocated, &ts); err != nil {
			return err
		}
		sl.State, sl.LastSeen = rankState[st], fromNS(ts)
		if allocated && pod != "" {
			sl.Holder = &gpustore.Holder{Namespace: ns, Pod: pod}
		}
		out = append(out, sl)
		return nil
	})
	return out, err
}

// Projects lists the research projects the scope sees, with the metadata of
// their latest sample; with a window, those seen during it.
func (s *Store) Projects(ctx context.Context, f gpustore.Filter) ([]gpustore.Project, error) {
	out := []gpustore.Project{}
	if f.Scope.Empty() {
		return out, nil
	}
	limit, offset, err := page(f)
	if err != nil {
		return nil, err
	}
	from, to, err := entityWindow(f.Window)
	if err != nil {
		return nil, err
	}
	q := &query{}
	q.add(`SELECT hub, cluster, namespace, id, name, pi, field_of_science, gpu_quota, gpu_allocation, gpu_requests,
		last_seen FROM projects WHERE first_seen < ? AND last_seen >= ?`, to, from)
	q.scope(f.Scope, projCols).filter(f, projCols)
	q.add(` ORDER BY hub, cluster, namespace LIMIT ? OFFSET ?`, limit, offset)
	err = s.rows(ctx, q, func(r *sql.Rows) error {
		var p gpustore.Project
		var quota, alloc, reqs sql.NullFloat64
		var ts int64
		if err := r.Scan(&p.Hub, &p.Cluster, &p.Namespace, &p.ID, &p.Name, &p.PI, &p.FieldOfScience, &quota, &alloc,
			&reqs, &ts); err != nil {
			return err
		}
		p.GPUQuota, p.GPUAllocation, p.GPURequests = nullF(quota), nullF(alloc), nullF(reqs)
		p.LastSeen = fromNS(ts)
		out = append(out, p)
		return nil
	})
	return out, err
}

func nullF(v sql.NullFloat64) *float64 {
	if !v.Valid {
		return nil
	}
	f := v.Float64
	return &f
}

// Sessions lists usage sessions (overlapping the window when one is given)
// in start order, with the mean busy ratio of the session's pod's samples.
func (s *Store) Sessions(ctx context.Context, f gpustore.Filter) ([]gpustore.Session, error) {
	out := []gpustore.Session{}
	if f.Scope.Empty() {
		return out, nil
	}
	limit, offset, err := page(f)
	if err != nil {
		return nil, err
	}
	from, to, err := entityWindow(f.Window)
	if err != nil {
		return nil, err
	}
	now := s.now().UnixNano()
	q := &query{}
	// busy over the samples in [start, end), an open session's end being now;
	// overlapping the window: start < To and end (now) > From
	q.add(`SELECT trace_id, span_id, kind, hub, cluster, node, namespace, pod, device, profile, fraction, start, end,
		(SELECT avg(coalesce(x.prof, x.util / 100.0, 0)) FROM samples x JOIN series r ON r.id = x.series
			WHERE x.ts >= sessions.start AND x.ts < coalesce(sessions.end, ?) AND r.hub = sessions.hub
			AND r.cluster = sessions.cluster AND r.node = sessions.node AND r.hw_id = sessions.device
			AND r.namespace = sessions.namespace AND r.pod = sessions.pod)
		FROM sessions WHERE start < ? AND coalesce(end, `+noEnd+`) > ? AND coalesce(end, ?) > ?`, now, to, from, now, from)
	q.scope(f.Scope, sessCols).filter(f, sessCols)
	// +start: sorting the window's sessions beats walking sessions_start
	// through every older one
	q.add(` ORDER BY +start, trace_id, span_id LIMIT ? OFFSET ?`, limit, offset)
	err = s.rows(ctx, q, func(r *sql.Rows) error {
		var x gpustore.Session
		var kind string
		var start int64
		var end sql.NullInt64
		var busy sql.NullFloat64
		if err := r.Scan(&x.TraceID, &x.SpanID, &kind, &x.Hub, &x.Cluster, &x.Node, &x.Namespace, &x.Pod, &x.Device,
			&x.Profile, &x.Fraction, &start, &end, &busy); err != nil {
			return err
		}
		x.Kind, x.Start, x.Busy = gpustore.SessionKind(kind), fromNS(start), nullF(busy)
		stop := now
		if end.Valid {
			e := fromNS(end.Int64)
			x.End, stop = &e, end.Int64
		}
		x.DurationS = float64(stop-start) / 1e9
		out = append(out, x)
		return nil
	})
	return out, err
}
