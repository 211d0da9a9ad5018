package pages // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/pages"

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"time"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// stateStale is a device or slice whose last sample is too old to say what
// it does now (its exporter or the pipeline stopped): not "free".
const stateStale gpustore.State = "stale"

// overviewData is the overview: managers see their clusters' grid,
// occupancy, GPU-hours by project and idle allocations; members their projects.
type overviewData struct {
	Manager   bool
	NoGrant   bool
	Clusters  []clusterGrid
	Occupancy []occupancy
	Projects  []projectRow
	// ProjectTable is Projects as the table's rows (projectTableHTML).
	ProjectTable template.HTML
	Bars         barChart
	Idle         []gpustore.IdleAllocation
	NoData       bool
}

type clusterGrid struct {
	gpustore.Cluster
	Grid template.HTML // its nodes' cells (gridHTML)
}

type nodeGrid struct {
	Name    string
	Devices []deviceCell
}

// deviceCell is one GPU of the grid; a MIG GPU shows its slices as cells.
type deviceCell struct {
	gpustore.Device
	State  gpustore.State
	Slices []sliceCell
}

type sliceCell struct {
	gpustore.Slice
	State gpustore.State
}

// occupancy is one GPU model's capacity and how it is held now, in GPUs
// (a slice counts its fraction).
type occupancy struct {
	Model                      string
	GPUs                       int
	InUse, Idle, Free, Unknown float64
	Errors                     int
}

// projectRow is one project with its GPU-hours in the window.
type projectRow struct {
	gpustore.Project
	Allocated, Used, Idle float64
}

// chartBars is how many projects the GPU-hours chart draws: a bar per
// project of a fleet's 400 would be a chart 11,000 px tall (the table below
// it lists them all).
const chartBars = 20

func (h *Handler) overview(r *http.Request, v *view) error {
	now := h.now()
	win, err := readWindow(r, now)
	if err != nil {
		return err
	}
	v.Window, v.Title = win, "Overview"
	scope, err := h.scope(r)
	if err != nil {
		return err
	}
	d := &overviewData{NoGrant: scope.Empty(), Manager: scope.All || len(scope.Hubs) > 0 || len(scope.Clusters) > 0}
	v.Data = d
	if d.NoGrant {
		return nil
	}
	all := gpustore.Filter{Scope: scope, Limit: gpustore.MaxLimit}
	inWin := all
	inWin.Window = win.Window
	var (
		projects []gpustore.Project
		rows     []gpustore.GPUHoursRow
		grid     gridReads
		idle     []gpustore.IdleAllocation
	)
	reads := []func(context.Context) error{
		func(ctx context.Context) (err error) { projects, err = h.set.Reader.Projects(ctx, inWin); return err },
		func(ctx context.Context) (err error) {
			rows, err = h.set.Reader.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: inWin, Aggregate: []string{gpustore.KeyProject}})
			return err
		},
	}
	if d.Manager {
		reads = append(reads,
			func(ctx context.Context) (err error) {
				grid.clusters, err = h.set.Reader.Clusters(ctx, all)
				return err
			},
			func(ctx context.Context) error { return h.readDevices(ctx, all, &grid) },
			func(ctx context.Context) (err error) { idle, err = h.set.Reader.Idle(ctx, all); return err },
		)
	}
	if err := readAll(r.Context(), reads...); err != nil {
		return err
	}
	if d.Manager {
		fillGrid(d, grid, now)
		d.Idle = freshIdle(idle, now)
	}
	d.Projects = projectRows(projects, rows)
	d.ProjectTable = projectTableHTML(d.Projects, win.Query())
	var labels []string
	var alloc, used []float64
	for _, p := range d.Projects {
		if p.Allocated > 0 {
			labels, alloc, used = append(labels, p.Namespace), append(alloc, p.Allocated), append(used, p.Used)
		}
	}
	title := "GPU-hours by project, allocated and used"
	if len(labels) > chartBars {
		// most allocated first: the chart's bars are the top of the table
		title = fmt.Sprintf("GPU-hours of the %d most allocated of %d projects (the table lists them all), allocated and used",
			chartBars, len(labels))
		labels, alloc, used = labels[:chartBars], alloc[:chartBars], used[:chartBars]
	}
	d.Bars = newBarChart(title, labels, alloc, used)
	d.NoData = len(d.Projects) == 0 && len(d.Clusters) == 0
	return nil
}

// projectRows joins the projects seen in the window with their GPU-hours,
// most allocated first; a project with GPU-hours but no entity row (its
// metadata arrived later) still shows.
func projectRows(projects []gpustore.Project, rows []gpustore.GPUHoursRow) []projectRow {
	type key struct{ hub, cluster, ns string }
	byKey := map[key]*projectRow{}
	var out []*projectRow
	for _, p := range projects {
		pr := &projectRow{Project: p}
		byKey[key{p.Hub, p.Cluster, p.Namespace}] = pr
		out = append(out, pr)
	}
	for _, r := range rows {
		k := key{r.Keys[gpustore.KeyHub], r.Keys[gpustore.KeyCluster], r.Keys[gpustore.KeyProject]}
		pr := byKey[k]
		if pr == nil {
			pr = &projectRow{Project: gpustore.Project{Hub: k.hub, Cluster: k.cluster, Namespace: k.ns}}
			byKey[k] = pr
			out = append(out, pr)
		}
		pr.Allocated += r.Allocated
		pr.Used += r.Used
		pr.Idle += r.Idle
	}
	slices.SortStableFunc(out, func(a, b *projectRow) int {
		switch {
		case a.Allocated > b.Allocated:
			return -1
		case a.Allocated < b.Allocated:
			return 1
		}
		return 0
	})
	res := make([]projectRow, len(out))
	for i, p := range out {
		res[i] = *p
	}
	return res
}

// gridReads are the grid's reads: every cluster, device and slice the
// scope sees at its last sample.
type gridReads struct {
	clusters []gpustore.Cluster
	devices  []gpustore.Device
	slices   []gpustore.Slice
}

// readDevices reads the devices, then the slices only where a GPU is made
// of them: on a fleet without MIG that read is a tenth of a manager
// overview's CPU for nothing.
func (h *Handler) readDevices(ctx context.Context, f gpustore.Filter, g *gridReads) (err error) {
	if g.devices, err = h.set.Reader.Devices(ctx, f); err != nil {
		return err
	}
	if slices.ContainsFunc(g.devices, func(d gpustore.Device) bool { return d.MIG }) {
		g.slices, err = h.set.Reader.Slices(ctx, f)
	}
	return err
}

// fillGrid lays the grid's reads out by cluster and node, and counts the
// occupancy by model.
func fillGrid(d *overviewData, g gridReads, now time.Time) {
	clusters, devices, sl := g.clusters, g.devices, g.slices
	slicesOf := map[string][]sliceCell{}
	for _, s := range sl {
		slicesOf[s.Parent] = append(slicesOf[s.Parent], sliceCell{Slice: s, State: freshState(s.State, s.LastSeen, now)})
	}
	occ := map[string]*occupancy{}
	var models []string
	type ck struct{ hub, cluster string }
	nodes := map[ck]map[string]*nodeGrid{}
	for _, c := range clusters {
		nodes[ck{c.Hub, c.Name}] = map[string]*nodeGrid{}
	}
	for _, dev := range devices {
		cell := deviceCell{Device: dev, State: freshState(dev.State, dev.LastSeen, now), Slices: slicesOf[dev.ID]}
		o := occ[dev.Model]
		if o == nil {
			o = &occupancy{Model: dev.Model}
			occ[dev.Model] = o
			models = append(models, dev.Model)
		}
		o.GPUs++
		if dev.MIG && len(cell.Slices) > 0 {
			free := 1.0
			for _, s := range cell.Slices {
				o.add(s.State, s.Fraction)
				free -= s.Fraction
			}
			// compute slices not configured as MIG instances are free capacity
			o.Free += max(free, 0)
		} else {
			o.add(cell.State, 1)
		}
		cn := nodes[ck{dev.Hub, dev.Cluster}]
		if cn == nil {
			continue // a device of a cluster the scope's cluster list lacks cannot happen; skip it
		}
		n := cn[dev.Node]
		if n == nil {
			n = &nodeGrid{Name: dev.Node}
			cn[dev.Node] = n
		}
		n.Devices = append(n.Devices, cell)
	}
	for _, c := range clusters {
		g := clusterGrid{Cluster: c}
		cn := nodes[ck{c.Hub, c.Name}]
		names := make([]string, 0, len(cn))
		for name := range cn {
			names = append(names, name)
		}
		slices.Sort(names)
		grid := make([]nodeGrid, 0, len(names))
		for _, name := range names {
			grid = append(grid, *cn[name])
		}
		g.Grid = gridHTML(grid)
		d.Clusters = append(d.Clusters, g)
	}
	slices.Sort(models)
	for _, m := range models {
		d.Occupancy = append(d.Occupancy, *occ[m])
	}
}

func (o *occupancy) add(s gpustore.State, f float64) {
	switch s {
	case gpustore.StateInUse:
		o.InUse += f
	case gpustore.StateIdle:
		o.Idle += f
	case gpustore.StateFree:
		o.Free += f
	case gpustore.StateError:
		o.Errors++
		o.Unknown += f
	default:
		o.Unknown += f
	}
}

// fresh says whether a last sample still describes now: within the longest
// interval one sample stands for (gpustore.MaxSampleIntervalS).
func fresh(lastSeen, now time.Time) bool {
	return now.Sub(lastSeen) <= gpustore.MaxSampleIntervalS*time.Second
}

func freshState(s gpustore.State, lastSeen, now time.Time) gpustore.State {
	if !fresh(lastSeen, now) {
		return stateStale
	}
	return s
}

// freshIdle keeps the idle allocations whose last sample is recent: an
// allocation that ended hours ago is no warning.
func freshIdle(idle []gpustore.IdleAllocation, now time.Time) []gpustore.IdleAllocation {
	var out []gpustore.IdleAllocation
	for _, a := range idle {
		if fresh(a.LastSeen, now) {
			out = append(out, a)
		}
	}
	return out
}
