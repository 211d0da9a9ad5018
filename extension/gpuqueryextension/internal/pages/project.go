package pages // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/pages"

import (
	"context"
	"net/http"
	"net/url"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// projectData is a research project's page.
type projectData struct {
	gpustore.Project
	// Held are the GPUs and slices its pods hold now.
	Held     []heldDevice
	HeldNow  float64
	Hours    []gpustore.GPUHoursRow
	Total    gpustore.GPUHoursRow
	CSV      string
	Busy     lineChart
	Timeline timeline
	Sessions []gpustore.Session
	IdleNow  []gpustore.IdleAllocation
}

// heldDevice is a GPU or a slice held now.
type heldDevice struct {
	ID, Parent, Node, Model, Profile, Pod string
	Fraction                              float64
	State                                 gpustore.State
}

// projectFilter reads the project's path segments.
func projectFilter(r *http.Request, scope gpustore.Scope) (gpustore.Filter, error) {
	f := gpustore.Filter{
		Scope: scope, Limit: gpustore.MaxLimit,
		Hub: r.PathValue("hub"), Cluster: r.PathValue("cluster"), Namespace: r.PathValue("namespace"),
	}
	for _, n := range []struct{ kind, v string }{
		{topology.KindHub, f.Hub}, {topology.KindCluster, f.Cluster}, {topology.KindNamespace, f.Namespace},
	} {
		if topology.ValidateName(n.kind, n.v) != nil {
			return f, errNotFound // no page has such a name
		}
	}
	return f, nil
}

func (h *Handler) project(r *http.Request, v *view) error {
	now := h.now()
	win, err := readWindow(r, now)
	if err != nil {
		return err
	}
	v.Window = win
	scope, err := h.scope(r)
	if err != nil {
		return err
	}
	f, err := projectFilter(r, scope)
	if err != nil {
		return err
	}
	ctx := r.Context()
	// the project as last seen, whatever the window: a link to a quiet
	// project still opens, and one outside the scope is not found
	projects, err := h.set.Reader.Projects(ctx, f)
	if err != nil {
		return err
	}
	d := &projectData{}
	for _, p := range projects {
		if p.Hub == f.Hub && p.Cluster == f.Cluster && p.Namespace == f.Namespace {
			d.Project = p
		}
	}
	if d.Namespace == "" {
		return errNotFound
	}
	v.Title, v.Data = "Project "+d.Namespace, d

	wf := f
	wf.Window = win.Window
	var (
		devices []gpustore.Device
		sl      []gpustore.Slice
		idle    []gpustore.IdleAllocation
		pts     []gpustore.UtilizationPoint
	)
	err = readAll(ctx,
		func(ctx context.Context) (err error) { devices, err = h.set.Reader.Devices(ctx, f); return err },
		func(ctx context.Context) (err error) { sl, err = h.set.Reader.Slices(ctx, f); return err },
		func(ctx context.Context) (err error) { idle, err = h.set.Reader.Idle(ctx, f); return err },
		func(ctx context.Context) (err error) {
			d.Hours, err = h.set.Reader.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: wf, Aggregate: []string{gpustore.KeyDevice}})
			return err
		},
		func(ctx context.Context) (err error) {
			pts, err = h.set.Reader.Utilization(ctx, gpustore.UtilizationQuery{Filter: wf, MaxPoints: chartPoints})
			return err
		},
		func(ctx context.Context) (err error) { d.Sessions, err = h.set.Reader.Sessions(ctx, wf); return err },
	)
	if err != nil {
		return err
	}
	for _, dev := range devices {
		if dev.Holder != nil && dev.Holder.Namespace == f.Namespace && fresh(dev.LastSeen, now) {
			d.Held = append(d.Held, heldDevice{ID: dev.ID, Parent: dev.ID, Node: dev.Node, Model: dev.Model, Pod: dev.Holder.Pod, Fraction: 1, State: dev.State})
			d.HeldNow++
		}
	}
	for _, s := range sl {
		if s.Holder != nil && s.Holder.Namespace == f.Namespace && fresh(s.LastSeen, now) {
			d.Held = append(d.Held, heldDevice{ID: s.ID, Parent: s.Parent, Node: s.Node, Model: s.Model, Profile: s.Profile, Pod: s.Holder.Pod, Fraction: s.Fraction, State: s.State})
			d.HeldNow += s.Fraction
		}
	}
	d.IdleNow = freshIdle(idle, now)
	for _, row := range d.Hours {
		d.Total.Allocated += row.Allocated
		d.Total.Used += row.Used
		d.Total.Idle += row.Idle
	}
	d.CSV = "/api/v1/reports/gpu-hours?" + url.Values{
		"hub": {f.Hub}, "cluster": {f.Cluster}, "namespace": {f.Namespace},
		"window": {win.Exact()}, "aggregate": {gpustore.KeyDevice}, "format": {"csv"},
	}.Encode()
	d.Busy = newLineChart("busy", "Busy ratio of the project's GPUs and slices", "%", win.Window, pts, 100,
		seriesOf{"busy", "busy", func(p gpustore.UtilizationPoint) float64 { return 100 * p.Busy }})
	d.Timeline = newTimeline("Sessions by GPU", win.Window, d.Sessions, func(s gpustore.Session) string { return shortID(s.Device) }, now)
	return nil
}

// chartPoints is a chart's resolution: about one point per 5 px of its width.
const chartPoints = 120

// shortID is a GPU UUID's first group (and a slice's instance), enough to
// tell a node's GPUs apart on a chart's axis; the full id is in the tables.
func shortID(id string) string {
	if len(id) >= 12 && id[:4] == "GPU-" {
		rest := ""
		if i := len("GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"); len(id) > i {
			rest = id[i:]
		}
		return id[:12] + rest
	}
	return id
}
