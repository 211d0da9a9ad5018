package gpuqueryextension

import (
	"context"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// memStore is a unit-test fake of a backend: fixed rows, with Scope and
// Filter applied as gpustore documents them (the backends' own tests run
// the shared conformance cases; this only lets the API's logic be tested).
type memStore struct {
	hubs     []gpustore.Hub
	clusters []gpustore.Cluster
	nodes    []gpustore.Node
	devices  []gpustore.Device
	slices   []gpustore.Slice
	projects []gpustore.Project
	sessions []gpustore.Session
	hours    []gpustore.GPUHoursRow
	idle     []gpustore.IdleAllocation
	points   []gpustore.UtilizationPoint
	err      error // returned by every read when set

	mu        sync.Mutex
	lastHours gpustore.GPUHoursQuery
	lastUtil  gpustore.UtilizationQuery
	lastF     gpustore.Filter
}

var _ gpustore.Reader = (*memStore)(nil)

// seesCluster: managers of the cluster or its hub.
func seesCluster(s gpustore.Scope, hub, cluster string) bool {
	return s.All || slices.Contains(s.Hubs, hub) || slices.Contains(s.Clusters, gpustore.ClusterKey{Hub: hub, Cluster: cluster})
}

// seesProject: those who see the cluster, and the project's members.
func seesProject(s gpustore.Scope, hub, cluster, ns string) bool {
	return seesCluster(s, hub, cluster) ||
		(ns != "" && slices.Contains(s.Projects, gpustore.ProjectKey{Hub: hub, Cluster: cluster, Namespace: ns}))
}

func holderNS(h *gpustore.Holder) string {
	if h == nil {
		return ""
	}
	return h.Namespace
}

func match(f gpustore.Filter, hub, cluster, node, ns string) bool {
	return (f.Hub == "" || f.Hub == hub) && (f.Cluster == "" || f.Cluster == cluster) &&
		(f.Node == "" || f.Node == node) && (f.Namespace == "" || f.Namespace == ns)
}

func inWindow(w gpustore.Window, t time.Time) bool {
	return w.IsZero() || (!t.Before(w.From) && t.Before(w.To))
}

func pageOf[T any](f gpustore.Filter, rows []T) []T {
	if f.Offset >= len(rows) {
		return nil
	}
	rows = rows[f.Offset:]
	if f.Limit > 0 && len(rows) > f.Limit {
		rows = rows[:f.Limit]
	}
	return rows
}

func (m *memStore) record(f gpustore.Filter) error {
	m.mu.Lock()
	m.lastF = f
	m.mu.Unlock()
	return m.err
}

func (m *memStore) Hubs(_ context.Context, f gpustore.Filter) ([]gpustore.Hub, error) {
	if err := m.record(f); err != nil {
		return nil, err
	}
	var out []gpustore.Hub
	for _, h := range m.hubs {
		seen := f.Scope.All || slices.Contains(f.Scope.Hubs, h.Name)
		for _, c := range f.Scope.Clusters {
			seen = seen || c.Hub == h.Name
		}
		if seen && match(f, h.Name, "", "", "") && inWindow(f.Window, h.LastSeen) {
			out = append(out, h)
		}
	}
	return pageOf(f, out), nil
}

func (m *memStore) Clusters(_ context.Context, f gpustore.Filter) ([]gpustore.Cluster, error) {
	if err := m.record(f); err != nil {
		return nil, err
	}
	var out []gpustore.Cluster
	for _, c := range m.clusters {
		if seesCluster(f.Scope, c.Hub, c.Name) && match(f, c.Hub, c.Name, "", "") && inWindow(f.Window, c.LastSeen) {
			out = append(out, c)
		}
	}
	return pageOf(f, out), nil
}

func (m *memStore) Nodes(_ context.Context, f gpustore.Filter) ([]gpustore.Node, error) {
	if err := m.record(f); err != nil {
		return nil, err
	}
	var out []gpustore.Node
	for _, n := range m.nodes {
		if seesCluster(f.Scope, n.Hub, n.Cluster) && match(f, n.Hub, n.Cluster, n.Name, "") && inWindow(f.Window, n.LastSeen) {
			out = append(out, n)
		}
	}
	return pageOf(f, out), nil
}

func (m *memStore) Devices(_ context.Context, f gpustore.Filter) ([]gpustore.Device, error) {
	if err := m.record(f); err != nil {
		return nil, err
	}
	var out []gpustore.Device
	for _, d := range m.devices {
		// a project member sees a GPU its pods hold, or one whose slices they hold
		ns := holderNS(d.Holder)
		held := seesProject(f.Scope, d.Hub, d.Cluster, ns)
		for _, s := range m.slices {
			if s.Parent == d.ID && seesProject(f.Scope, s.Hub, s.Cluster, holderNS(s.Holder)) &&
				(f.Namespace == "" || f.Namespace == holderNS(s.Holder)) {
				held, ns = true, holderNS(s.Holder)
			}
		}
		if held && match(f, d.Hub, d.Cluster, d.Node, ns) && (f.Device == "" || f.Device == d.ID) && inWindow(f.Window, d.LastSeen) {
			out = append(out, d)
		}
	}
	return pageOf(f, out), nil
}

func (m *memStore) Slices(_ context.Context, f gpustore.Filter) ([]gpustore.Slice, error) {
	if err := m.record(f); err != nil {
		return nil, err
	}
	var out []gpustore.Slice
	for _, s := range m.slices {
		ns := holderNS(s.Holder)
		if seesProject(f.Scope, s.Hub, s.Cluster, ns) && match(f, s.Hub, s.Cluster, s.Node, ns) &&
			(f.Device == "" || f.Device == s.ID || f.Device == s.Parent) && inWindow(f.Window, s.LastSeen) {
			out = append(out, s)
		}
	}
	return pageOf(f, out), nil
}

func (m *memStore) Projects(_ context.Context, f gpustore.Filter) ([]gpustore.Project, error) {
	if err := m.record(f); err != nil {
		return nil, err
	}
	var out []gpustore.Project
	for _, p := range m.projects {
		if seesProject(f.Scope, p.Hub, p.Cluster, p.Namespace) && match(f, p.Hub, p.Cluster, "", p.Namespace) && inWindow(f.Window, p.LastSeen) {
			out = append(out, p)
		}
	}
	return pageOf(f, out), nil
}

func (m *memStore) Sessions(_ context.Context, f gpustore.Filter) ([]gpustore.Session, error) {
	if err := m.record(f); err != nil {
		return nil, err
	}
	var out []gpustore.Session
	for _, s := range m.sessions {
		if seesProject(f.Scope, s.Hub, s.Cluster, s.Namespace) && match(f, s.Hub, s.Cluster, s.Node, s.Namespace) &&
			(f.Device == "" || f.Device == s.Device) {
			out = append(out, s)
		}
	}
	return pageOf(f, out), nil
}

func (m *memStore) GPUHours(_ context.Context, q gpustore.GPUHoursQuery) ([]gpustore.GPUHoursRow, error) {
	m.mu.Lock()
	m.lastHours = q
	m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	var out []gpustore.GPUHoursRow
	for _, r := range m.hours {
		k := r.Keys
		if seesProject(q.Scope, k["hub"], k[gpustore.KeyCluster], k[gpustore.KeyProject]) &&
			match(q.Filter, k["hub"], k[gpustore.KeyCluster], "", k[gpustore.KeyProject]) {
			out = append(out, r)
		}
	}
	return pageOf(q.Filter, out), nil
}

func (m *memStore) Idle(_ context.Context, f gpustore.Filter) ([]gpustore.IdleAllocation, error) {
	if err := m.record(f); err != nil {
		return nil, err
	}
	var out []gpustore.IdleAllocation
	for _, r := range m.idle {
		if seesProject(f.Scope, r.Hub, r.Cluster, r.Namespace) && match(f, r.Hub, r.Cluster, r.Node, r.Namespace) {
			out = append(out, r)
		}
	}
	return pageOf(f, out), nil
}

func (m *memStore) Utilization(_ context.Context, q gpustore.UtilizationQuery) ([]gpustore.UtilizationPoint, error) {
	m.mu.Lock()
	m.lastUtil = q
	m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	if q.Scope.Empty() {
		return nil, nil
	}
	return m.points, nil
}

type (
	pmetricMetrics = pmetric.Metrics
	ptraceTraces   = ptrace.Traces
)
