package gpuqueryextension // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension"

import (
	"context"
	"errors"
	"net/http"
	"path"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/metadata"
	"github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/statuswriter"
	"github.com/nerc-project/ai-telemetry-collector/internal/authz"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// modeHeader marks every answer of local mode, so that no one mistakes an
// unauthenticated API for a site's.
const (
	modeHeader = "X-AI-Telemetry-Mode"
	modeLocal  = "local (no authentication)"
)

type apiSettings struct {
	reader    gpustore.Reader
	scoper    authz.ReadScoper
	local     bool
	telemetry *metadata.TelemetryBuilder
	logger    *zap.Logger
	now       func() time.Time
}

// api is the HTTP handler: it finds the route, checks method and Accept,
// asks the caller's scope, runs the route's handler and answers its error
// as a problem.
type api struct {
	apiSettings
	mux        *http.ServeMux
	openAPI    []byte
	ngsiLDCtx  []byte
	routeNames map[string]bool
}

// handlerFunc answers one request; scope is the caller's.
type handlerFunc func(w http.ResponseWriter, r *http.Request, rq *request) error

// request is what a handler gets: the caller's scope, its parameters, the
// negotiated media type.
type request struct {
	scope     gpustore.Scope
	query     *query
	mediaType string
}

func newAPI(set apiSettings) (*api, error) {
	doc, err := openAPIJSON()
	if err != nil {
		return nil, err
	}
	ctxDoc, err := ngsiLDContext()
	if err != nil {
		return nil, err
	}
	a := &api{apiSettings: set, mux: http.NewServeMux(), openAPI: doc, ngsiLDCtx: ctxDoc, routeNames: map[string]bool{}}
	for _, rt := range a.routes() {
		a.routeNames[rt.pattern] = true
		a.mux.Handle(rt.pattern, a.wrap(rt))
	}
	return a, nil
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.local {
		w.Header().Set(modeHeader, modeLocal)
	}
	// an unclean path (//, /./) is not redirected: it is no resource here
	if _, pattern := a.mux.Handler(r); !a.routeNames[pattern] || path.Clean(r.URL.Path) != r.URL.Path {
		sw := statuswriter.Wrap(w)
		a.fail(sw, r, errNoRoute)
		a.count(r.Context(), "unmatched", sw.Status())
		return
	}
	a.mux.ServeHTTP(w, r)
}

// wrap runs a route's handler with the checks every route shares.
func (a *api) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := statuswriter.Wrap(w)
		defer func() { a.count(r.Context(), rt.pattern, sw.Status()) }()
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			a.fail(sw, r, errMethodNotAllowed)
			return
		}
		if len(rt.offers) > 1 {
			sw.Header().Add("Vary", "Accept")
		}
		mediaType, ok := negotiate(r.Header.Get("Accept"), rt.offers)
		if !ok {
			a.fail(sw, r, errNotAcceptable)
			return
		}
		q, err := newQuery(r.URL.RawQuery, rt.params, a.now())
		if err != nil {
			a.fail(sw, r, err)
			return
		}
		if q.has(paramFormat) {
			// a link (a page's CSV download) cannot set Accept
			if mediaType, err = formatMediaType(q.get(paramFormat), rt.offers); err != nil {
				a.fail(sw, r, err)
				return
			}
		}
		rq := &request{query: q, mediaType: mediaType}
		if !rt.public {
			scope, err := a.scoper.ReadScope(r.Context())
			if err != nil {
				a.fail(sw, r, &scopeError{err})
				return
			}
			rq.scope = scope
		}
		if err := rt.handler(sw, r, rq); err != nil {
			a.fail(sw, r, err)
		}
	})
}

// scopeError is a read scope the auth extension could not give.
type scopeError struct{ err error }

func (e *scopeError) Error() string { return e.err.Error() }
func (e *scopeError) Unwrap() error { return e.err }

// storeError is a backend read that failed, for the operation named.
type storeError struct {
	op  string
	err error
}

func (e *storeError) Error() string { return e.op + ": " + e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

func wrapStore(op string, err error) error {
	if err == nil {
		return nil
	}
	return &storeError{op: op, err: err}
}

// fail answers err as a problem, counting the refusal or the store error.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		pe *paramError
		se *scopeError
		st *storeError
		p  *problem
	)
	switch {
	case errors.As(err, &pe):
		p = newProblem(http.StatusBadRequest, reasonInvalidParam, "Invalid parameter", pe.Error())
		p.InvalidParams = []invalidParam{{Name: pe.name, Reason: pe.reason}}
	case errors.Is(err, errNoRoute), errors.Is(err, gpustore.ErrNotFound):
		p = newProblem(http.StatusNotFound, reasonNotFound, "Not found", "no such resource, or not one you may read")
	case errors.Is(err, errMethodNotAllowed):
		p = newProblem(http.StatusMethodNotAllowed, reasonMethodNotAllowed, "Method not allowed", err.Error())
	case errors.Is(err, errNotAcceptable):
		p = newProblem(http.StatusNotAcceptable, reasonNotAcceptable, "Not acceptable", err.Error())
	case errors.As(err, &se):
		switch {
		case errors.Is(err, authz.ErrUnavailable):
			w.Header().Set("Retry-After", "5")
			p = newProblem(http.StatusServiceUnavailable, reasonAuthUnavailable, "Authorization unavailable", "the authorization server could not be asked; retry later")
		case errors.Is(err, authz.ErrDenied):
			p = newProblem(http.StatusForbidden, reasonForbidden, "Forbidden", "you may read nothing here")
		default:
			p = newProblem(http.StatusUnauthorized, reasonUnauthenticated, "Unauthenticated", "no caller could be identified for this request")
		}
		// the cause may name the caller; it goes to the log at debug only
		a.logger.Debug("Read scope refused", zap.Error(err))
	case errors.Is(err, gpustore.ErrBadQuery):
		p = newProblem(http.StatusBadRequest, reasonBadQuery, "Query refused", "the store refused the query: "+err.Error())
	case errors.As(err, &st):
		a.telemetry.GpuQueryStoreErrors.Add(r.Context(), 1, metric.WithAttributes(attribute.String("operation", st.op)))
		a.logger.Warn("GPU store read failed", zap.String("operation", st.op), zap.Error(err))
		p = newProblem(http.StatusInternalServerError, "store_error", "Store unavailable", "the store could not be read")
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			p = newProblem(http.StatusServiceUnavailable, "store_error", "Store unavailable", "the store did not answer in time")
		}
	default:
		a.logger.Error("Unexpected API error", zap.Error(err))
		p = newProblem(http.StatusInternalServerError, "internal", "Internal error", "")
	}
	if st == nil && p.Status != http.StatusInternalServerError {
		a.telemetry.GpuQueryRefusals.Add(r.Context(), 1, metric.WithAttributes(attribute.String("reason", p.reason)))
	}
	writeProblem(w, r, p)
}

// authFailed answers a refusal of the HTTP server's authenticator (http::auth,
// confighttp's error handler: it runs before any route) as this API's
// problem, counted like the API's own refusals. confighttp would otherwise
// answer a text/plain body of the authenticator's error, outside the OpenAPI
// document and the telemetry. The authenticator's message may describe the
// token; it goes to the debug log only. Other statuses confighttp reports
// (request decoding) keep its plain answer.
func (a *api) authFailed(w http.ResponseWriter, r *http.Request, msg string, status int) {
	if status != http.StatusUnauthorized {
		http.Error(w, msg, status)
		return
	}
	route := "unmatched"
	if _, pattern := a.mux.Handler(r); a.routeNames[pattern] {
		route = pattern
	}
	a.logger.Debug("Authentication refused", zap.String("reason", msg))
	a.telemetry.GpuQueryRefusals.Add(r.Context(), 1, metric.WithAttributes(attribute.String("reason", reasonUnauthenticated)))
	a.count(r.Context(), route, status)
	// RFC 6750 section 3: a 401 names the scheme it wants.
	w.Header().Set("WWW-Authenticate", "Bearer")
	writeProblem(w, r, newProblem(status, reasonUnauthenticated, "Unauthenticated", "a valid bearer token is required"))
}

func (a *api) count(ctx context.Context, route string, status int) {
	if status == 0 {
		status = http.StatusOK
	}
	class := [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}[min(max(status/100, 1), 5)-1]
	a.telemetry.GpuQueryRequests.Add(ctx, 1, metric.WithAttributes(
		attribute.String("route", route), attribute.String("status_class", class)))
}
