package pages // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/pages"

import (
	"context"
	"net/http"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// deviceData is a GPU's page.
type deviceData struct {
	gpustore.Device
	State    gpustore.State
	Slices   []sliceCell
	Hours    []gpustore.GPUHoursRow
	Charts   []lineChart
	Timeline timeline
	Sessions []gpustore.Session
}

func (h *Handler) device(r *http.Request, v *view) error {
	now := h.now()
	win, err := readWindow(r, now)
	if err != nil {
		return err
	}
	v.Window = win
	id := r.PathValue("id")
	// a whole GPU only: a slice shows on its GPU's page
	if !topology.GPUUUIDPattern.MatchString(id) {
		return errNotFound
	}
	scope, err := h.scope(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	f := gpustore.Filter{Scope: scope, Device: id, Limit: gpustore.MaxLimit}
	devices, err := h.set.Reader.Devices(ctx, f)
	if err != nil {
		return err
	}
	d := &deviceData{}
	for _, dev := range devices {
		if dev.ID == id {
			d.Device = dev
		}
	}
	if d.ID == "" {
		return errNotFound
	}
	d.State = freshState(d.Device.State, d.LastSeen, now)
	v.Title, v.Data = "GPU "+d.Index+" on "+d.Node, d
	wf := f
	wf.Window = win.Window
	var (
		sl  []gpustore.Slice
		pts []gpustore.UtilizationPoint
	)
	err = readAll(ctx,
		func(ctx context.Context) (err error) { sl, err = h.set.Reader.Slices(ctx, f); return err },
		func(ctx context.Context) (err error) {
			d.Hours, err = h.set.Reader.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: wf, Aggregate: []string{gpustore.KeyProject}})
			return err
		},
		func(ctx context.Context) (err error) { d.Sessions, err = h.set.Reader.Sessions(ctx, wf); return err },
		func(ctx context.Context) (err error) {
			pts, err = h.set.Reader.Utilization(ctx, gpustore.UtilizationQuery{Filter: wf, MaxPoints: chartPoints})
			return err
		},
	)
	if err != nil {
		return err
	}
	for _, s := range sl {
		d.Slices = append(d.Slices, sliceCell{Slice: s, State: freshState(s.State, s.LastSeen, now)})
	}
	d.Timeline = newTimeline("Projects on this GPU", win.Window, d.Sessions, func(s gpustore.Session) string { return s.Namespace }, now)
	d.Charts = deviceCharts(win.Window, pts)
	return nil
}

// deviceCharts are utilization, memory, power and temperature.
func deviceCharts(w gpustore.Window, pts []gpustore.UtilizationPoint) []lineChart {
	return []lineChart{
		newLineChart("busy", "Busy ratio", "%", w, pts, 100,
			seriesOf{"busy", "busy", func(p gpustore.UtilizationPoint) float64 { return 100 * p.Busy }}),
		newLineChart("memory", "Frame buffer used (MiB, peak)", "MiB", w, pts, 0,
			seriesOf{"memory", "memory", func(p gpustore.UtilizationPoint) float64 { return p.FBUsedMiB }}),
		newLineChart("power", "Power (W, peak)", "W", w, pts, 0,
			seriesOf{"power", "power", func(p gpustore.UtilizationPoint) float64 { return p.PowerW }}),
		newLineChart("temperature", "Temperature (°C, peak)", "°C", w, pts, 0,
			seriesOf{"temperature", "temperature", func(p gpustore.UtilizationPoint) float64 { return p.TempC }}),
	}
}
