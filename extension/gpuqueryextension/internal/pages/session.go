package pages // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/pages"

import (
	"net/http"
	"regexp"
	"time"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

var traceIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// sessionData is one GPU session's page.
type sessionData struct {
	gpustore.Session
	TraceLink string
	Chart     lineChart
}

func (h *Handler) session(r *http.Request, v *view) error {
	scope, err := h.scope(r)
	if err != nil {
		return err
	}
	f, err := projectFilter(r, scope)
	if err != nil {
		return err
	}
	trace := r.PathValue("trace")
	if !traceIDPattern.MatchString(trace) {
		return errNotFound
	}
	start, err := time.Parse(time.RFC3339, r.URL.Query().Get("start"))
	if err != nil {
		return &badRequest{param: "start", reason: "must be the session's start in RFC 3339 (the session links carry it)"}
	}
	// the sessions overlapping the second it started hold it
	f.Window = gpustore.Window{From: start.UTC(), To: start.UTC().Add(time.Second)}
	sessions, err := h.set.Reader.Sessions(r.Context(), f)
	if err != nil {
		return err
	}
	d := &sessionData{}
	for _, s := range sessions {
		if s.TraceID == trace {
			d.Session = s
		}
	}
	if d.TraceID == "" {
		return errNotFound
	}
	v.Title, v.Data = "Session of "+d.Pod, d
	d.TraceLink = h.traceLink(d.TraceID)

	end := h.now()
	if d.End != nil {
		end = *d.End
	}
	w := gpustore.Window{From: d.Start, To: end.Add(time.Second)}
	if w.To.Sub(w.From) > gpustore.MaxWindow {
		w.From = w.To.Add(-gpustore.MaxWindow) // the chart shows the longest window the store reads
	}
	v.Window = pageWindow{Window: w}
	uf := gpustore.Filter{Scope: scope, Hub: d.Hub, Cluster: d.Cluster, Namespace: d.Namespace, Device: d.Device, Window: w}
	pts, err := h.set.Reader.Utilization(r.Context(), gpustore.UtilizationQuery{Filter: uf, MaxPoints: chartPoints})
	if err != nil {
		return err
	}
	d.Chart = newLineChart("busy", "Busy ratio during the session", "%", w, pts, 100,
		seriesOf{"busy", "busy", func(p gpustore.UtilizationPoint) float64 { return 100 * p.Busy }})
	return nil
}
