package gpuqueryextension // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension"

import (
	"encoding/json"
	"net/http"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// gpuHours serves /api/v1/reports/gpu-hours: window required (an invoice
// names its month), aggregate keys, step, source.
func (a *api) gpuHours(w http.ResponseWriter, r *http.Request, rq *request) error {
	f, err := rq.query.filter(rq.scope)
	if err != nil {
		return err
	}
	csvLimit(rq, &f)
	if f.Window.IsZero() {
		return badParam(paramWindow, "required: from,to (RFC 3339), a duration (7d) or a calendar keyword (lastmonth, month:YYYY-MM)")
	}
	q := gpustore.GPUHoursQuery{Filter: f}
	if q.Aggregate, err = parseAggregate(rq.query.get(paramAggregate)); err != nil {
		return err
	}
	if q.Step, err = parseStep(rq.query.get(paramStep), f.Window); err != nil {
		return err
	}
	if q.Source, err = parseSource(rq.query.get(paramSource)); err != nil {
		return err
	}
	rows, err := a.reader.GPUHours(r.Context(), q)
	if err != nil {
		return wrapStore("gpu_hours", err)
	}
	rows = rows[:min(len(rows), f.Limit)]
	if rq.mediaType == mediaCSV {
		return writeCSVReport(w, r, f, gpuHoursCSV(rows, q.Aggregate))
	}
	p := newPage(r, rows, f)
	p.Window = newWindowJSON(f.Window)
	return writeJSONReport(w, r, p)
}

// idle serves /api/v1/reports/idle: now, or over a window.
func (a *api) idle(w http.ResponseWriter, r *http.Request, rq *request) error {
	f, err := rq.query.filter(rq.scope)
	if err != nil {
		return err
	}
	csvLimit(rq, &f)
	rows, err := a.reader.Idle(r.Context(), f)
	if err != nil {
		return wrapStore("idle", err)
	}
	rows = rows[:min(len(rows), f.Limit)]
	if rq.mediaType == mediaCSV {
		return writeCSVReport(w, r, f, idleCSV(rows))
	}
	p := newPage(r, rows, f)
	p.Window = newWindowJSON(f.Window)
	return writeJSONReport(w, r, p)
}

// utilizationReport is the utilization series: bounded by points, not paged.
type utilizationReport struct {
	Items  []gpustore.UtilizationPoint `json:"items"`
	Points int                         `json:"points"`
	Window *windowJSON                 `json:"window"`
}

// utilization serves /api/v1/reports/utilization of a device or a project.
func (a *api) utilization(w http.ResponseWriter, r *http.Request, rq *request) error {
	f, err := rq.query.filter(rq.scope)
	if err != nil {
		return err
	}
	if f.Device == "" && f.Namespace == "" {
		return badParam(paramDevice, "a device or a namespace is required")
	}
	if f.Window.IsZero() {
		now := rq.query.now.UTC()
		f.Window = gpustore.Window{From: now.Add(-defaultUtilizationWindow), To: now}
	}
	points, err := rq.query.intParam(paramPoints, defaultPoints, 1, gpustore.MaxPoints)
	if err != nil {
		return err
	}
	pts, err := a.reader.Utilization(r.Context(), gpustore.UtilizationQuery{Filter: f, MaxPoints: points})
	if err != nil {
		return wrapStore("utilization", err)
	}
	pts = pts[:min(len(pts), points)]
	if rq.mediaType == mediaCSV {
		return writeCSVReport(w, r, gpustore.Filter{}, utilizationCSV(pts))
	}
	if pts == nil {
		pts = []gpustore.UtilizationPoint{}
	}
	return writeJSONReport(w, r, utilizationReport{Items: pts, Points: points, Window: newWindowJSON(f.Window)})
}

func writeJSONReport(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeCached(w, r, mediaJSON, body)
}

// csvLimit: a CSV report without a limit is read whole up to MaxLimit, so an
// invoicing script that ignores the Link header does not stop at 100 rows.
func csvLimit(rq *request, f *gpustore.Filter) {
	if rq.mediaType == mediaCSV && !rq.query.has(paramLimit) {
		f.Limit = gpustore.MaxLimit
	}
}
