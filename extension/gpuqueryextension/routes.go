package gpuqueryextension // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension"

import (
	"context"
	"net/http"
	"time"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// Media types served.
const (
	mediaJSON    = "application/json"
	mediaLDJSON  = "application/ld+json"
	mediaCSV     = "text/csv"
	mediaProblem = "application/problem+json"
)

// route is one resource: its ServeMux pattern (also its OpenAPI path and its
// telemetry name), the query parameters it takes, the media types it serves
// (the first is the default), and whether it is readable without a scope.
type route struct {
	pattern string
	params  []string
	offers  []string
	public  bool
	handler handlerFunc
}

var (
	entityOffers = []string{mediaJSON, mediaLDJSON}
	reportOffers = []string{mediaJSON, mediaCSV}
	pageParams   = []string{paramWindow, paramLimit, paramOffset}
)

func with(base []string, more ...string) []string {
	return append(append([]string{}, more...), base...)
}

// routes is the API. The OpenAPI document lists exactly these paths (a test
// fails when they differ).
func (a *api) routes() []route {
	return []route{
		{pattern: "/api/openapi.json", offers: []string{mediaJSON}, public: true, handler: a.serveOpenAPI},
		{pattern: topology.NGSILDContextPath, offers: []string{mediaLDJSON, mediaJSON}, public: true, handler: a.serveContext},

		{
			pattern: "/api/v1/hubs", params: with(pageParams, paramHub), offers: entityOffers,
			handler: listHandler("hubs", a.reader.Hubs, a.hubsLD),
		},
		{
			pattern: "/api/v1/clusters", params: with(pageParams, paramHub, paramCluster), offers: entityOffers,
			handler: listHandler("clusters", a.reader.Clusters, a.clustersLD),
		},
		{pattern: "/api/v1/clusters/{hub}/{cluster}", params: []string{paramWindow}, offers: entityOffers, handler: a.getCluster},
		{
			pattern: "/api/v1/nodes", params: with(pageParams, paramHub, paramCluster, paramNode), offers: entityOffers,
			handler: listHandler("nodes", a.reader.Nodes, a.nodesLD),
		},
		{
			pattern: "/api/v1/devices", params: with(pageParams, paramHub, paramCluster, paramNode, paramNamespace, paramDevice), offers: entityOffers,
			handler: listHandler("devices", a.reader.Devices, a.devicesLD),
		},
		{pattern: "/api/v1/devices/{id}", params: []string{paramWindow}, offers: entityOffers, handler: a.getDevice},
		{
			pattern: "/api/v1/slices", params: with(pageParams, paramHub, paramCluster, paramNode, paramNamespace, paramDevice), offers: entityOffers,
			handler: listHandler("slices", a.reader.Slices, a.slicesLD),
		},
		{
			pattern: "/api/v1/projects", params: with(pageParams, paramHub, paramCluster, paramNamespace), offers: entityOffers,
			handler: listHandler("projects", a.reader.Projects, a.projectsLD),
		},
		{pattern: "/api/v1/projects/{hub}/{cluster}/{namespace}", params: []string{paramWindow}, offers: entityOffers, handler: a.getProject},
		{
			pattern: "/api/v1/sessions", params: with(pageParams, paramHub, paramCluster, paramNode, paramNamespace, paramDevice), offers: []string{mediaJSON},
			handler: listHandler[gpustore.Session]("sessions", a.reader.Sessions, nil),
		},

		{
			pattern: "/api/v1/reports/gpu-hours", offers: reportOffers, handler: a.gpuHours,
			params: with(pageParams, paramHub, paramCluster, paramNode, paramNamespace, paramDevice, paramAggregate, paramStep, paramSource, paramFormat),
		},
		{
			pattern: "/api/v1/reports/idle", offers: reportOffers, handler: a.idle,
			params: with(pageParams, paramHub, paramCluster, paramNode, paramNamespace, paramDevice, paramFormat),
		},
		{
			pattern: "/api/v1/reports/utilization", offers: reportOffers, handler: a.utilization,
			params: []string{paramHub, paramCluster, paramNamespace, paramDevice, paramWindow, paramPoints, paramFormat},
		},

		{pattern: "/ngsi-ld/v1/entities", params: []string{paramType, paramID, paramQ, paramLimit, paramOffset}, offers: entityOffers, handler: a.ngsiEntities},
		{pattern: "/ngsi-ld/v1/entities/{id}", offers: entityOffers, handler: a.ngsiEntity},
	}
}

// toLD renders entities as NGSI-LD.
type toLD[T any] func(ctx context.Context, scope gpustore.Scope, items []T) ([]ldEntity, error)

// listHandler serves a paginated entity list: JSON pages, or an NGSI-LD
// array when ld is set and asked for.
func listHandler[T any](op string, read func(context.Context, gpustore.Filter) ([]T, error), ld toLD[T]) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, rq *request) error {
		f, err := rq.query.filter(rq.scope)
		if err != nil {
			return err
		}
		items, err := read(r.Context(), f)
		if err != nil {
			return wrapStore(op, err)
		}
		items = items[:min(len(items), f.Limit)]
		if rq.mediaType == mediaLDJSON && ld != nil {
			ents, err := ld(r.Context(), rq.scope, items)
			if err != nil {
				return err
			}
			if len(items) == f.Limit {
				w.Header().Add("Link", "<"+nextURL(r, f.Limit, f.Offset)+`>; rel="next"`)
			}
			return writeNGSILD(w, r, ents, true)
		}
		return writeJSON(w, http.StatusOK, newPage(r, items, f))
	}
}

// one answers a single entity: absent or outside the scope are both 404.
func one[T any](w http.ResponseWriter, r *http.Request, rq *request, op string, items []T, err error, ld toLD[T]) error {
	if err != nil {
		return wrapStore(op, err)
	}
	if len(items) == 0 {
		return gpustore.ErrNotFound
	}
	if rq.mediaType == mediaLDJSON && ld != nil {
		ents, err := ld(r.Context(), rq.scope, items[:1])
		if err != nil {
			return err
		}
		return writeNGSILD(w, r, ents[0], true)
	}
	return writeJSON(w, http.StatusOK, items[0])
}

// pathName reads a path segment as a name of kind.
func pathName(r *http.Request, seg, kind string) (string, error) {
	v := r.PathValue(seg)
	if err := topology.ValidateName(kind, v); err != nil {
		return "", badParam(seg, "%v", err)
	}
	return v, nil
}

func (a *api) entityFilter(rq *request) (gpustore.Filter, error) {
	f := gpustore.Filter{Scope: rq.scope, Limit: gpustore.MaxLimit}
	if rq.query.has(paramWindow) {
		w, err := parseWindow(rq.query.get(paramWindow), rq.query.now)
		if err != nil {
			return f, err
		}
		f.Window = w
	}
	return f, nil
}

func (a *api) getCluster(w http.ResponseWriter, r *http.Request, rq *request) error {
	f, err := a.entityFilter(rq)
	if err != nil {
		return err
	}
	if f.Hub, err = pathName(r, paramHub, topology.KindHub); err != nil {
		return err
	}
	if f.Cluster, err = pathName(r, paramCluster, topology.KindCluster); err != nil {
		return err
	}
	items, err := a.reader.Clusters(r.Context(), f)
	items = keep(items, func(c gpustore.Cluster) bool { return c.Hub == f.Hub && c.Name == f.Cluster })
	return one(w, r, rq, "clusters", items, err, a.clustersLD)
}

func (a *api) getDevice(w http.ResponseWriter, r *http.Request, rq *request) error {
	f, err := a.entityFilter(rq)
	if err != nil {
		return err
	}
	f.Device = r.PathValue(paramID)
	if !gpuUUIDPattern.MatchString(f.Device) {
		return badParam(paramID, "must be a GPU UUID (GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")
	}
	items, err := a.reader.Devices(r.Context(), f)
	items = keep(items, func(d gpustore.Device) bool { return d.ID == f.Device })
	return one(w, r, rq, "devices", items, err, a.devicesLD)
}

func (a *api) getProject(w http.ResponseWriter, r *http.Request, rq *request) error {
	f, err := a.entityFilter(rq)
	if err != nil {
		return err
	}
	if f.Hub, err = pathName(r, paramHub, topology.KindHub); err != nil {
		return err
	}
	if f.Cluster, err = pathName(r, paramCluster, topology.KindCluster); err != nil {
		return err
	}
	if f.Namespace, err = pathName(r, paramNamespace, topology.KindNamespace); err != nil {
		return err
	}
	items, err := a.reader.Projects(r.Context(), f)
	items = keep(items, func(p gpustore.Project) bool {
		return p.Hub == f.Hub && p.Cluster == f.Cluster && p.Namespace == f.Namespace
	})
	return one(w, r, rq, "projects", items, err, a.projectsLD)
}

// keep filters items; the store already narrowed them, this guards the exact match.
func keep[T any](items []T, ok func(T) bool) []T {
	var out []T
	for _, it := range items {
		if ok(it) {
			out = append(out, it)
		}
	}
	return out
}

func (a *api) serveOpenAPI(w http.ResponseWriter, _ *http.Request, _ *request) error {
	w.Header().Set("Content-Type", mediaJSON)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, err := w.Write(a.openAPI)
	return ignoreWriteErr(err)
}

func (a *api) serveContext(w http.ResponseWriter, _ *http.Request, rq *request) error {
	w.Header().Set("Content-Type", rq.mediaType)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, err := w.Write(a.ngsiLDCtx)
	return ignoreWriteErr(err)
}

// ignoreWriteErr: a client gone mid-answer is not the API's failure.
func ignoreWriteErr(error) error { return nil }

// defaultUtilizationWindow is the utilization series' window when none is given.
const defaultUtilizationWindow = 24 * time.Hour
