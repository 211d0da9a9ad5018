// Package pages serves the AI Telemetry site's web pages: server-rendered
// HTML (html/template) and SVG charts over the same store and read scope as
// the API, with no script at all, so that its Content-Security-Policy can
// forbid every script and inline style.
package pages // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/pages"

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/statuswriter"
	"github.com/nerc-project/ai-telemetry-collector/internal/authz"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// Settings are what the pages read and how they report.
type Settings struct {
	Reader gpustore.Reader
	// Scope is the caller's read scope (the API's scoper).
	Scope func(*http.Request) (gpustore.Scope, error)
	// Local marks every page as local mode's: no login, everything visible.
	Local bool
	// TraceURL links a session to its trace: "{traceId}" is replaced.
	TraceURL string
	Now      func() time.Time
	Logger   *zap.Logger
	// Count records one answer of route (its pattern) with its status.
	Count func(ctx context.Context, route string, status int)
	// User is the logged-in caller's name and the CSRF token of their
	// logout form; nil or !ok: no login (local mode).
	User func(*http.Request) (name, csrf string, ok bool)
	// FormActions are origins besides this one that a form's answer may
	// redirect to (the logout's redirect to the identity provider).
	FormActions []string
}

// Handler serves the pages.
type Handler struct {
	set    Settings
	mux    *http.ServeMux
	assets *assets
	tmpl   *templates
	csp    string
}

var _ http.Handler = (*Handler)(nil)

// pageFunc renders one page into a view; an error becomes an error page.
type pageFunc func(r *http.Request, v *view) error

// New builds the handler.
func New(set Settings) (*Handler, error) {
	as, err := loadAssets()
	if err != nil {
		return nil, err
	}
	tm, err := parseTemplates(as)
	if err != nil {
		return nil, err
	}
	h := &Handler{set: set, mux: http.NewServeMux(), assets: as, tmpl: tm, csp: contentSecurityPolicy(set.FormActions)}
	h.page("GET /{$}", "overview", h.overview)
	h.page("GET /projects/{hub}/{cluster}/{namespace}", "project", h.project)
	h.page("GET /devices/{id}", "device", h.device)
	h.page("GET /sessions/{hub}/{cluster}/{namespace}/{trace}", "session", h.session)
	h.mux.Handle("GET "+assetPrefix+"{hash}/{name}", h.counted(assetPrefix, http.HandlerFunc(h.assets.serve)))
	return h, nil
}

// ServeHTTP serves a page, an asset, or the not-found page.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header(), h.csp)
	if _, pattern := h.mux.Handler(r); pattern == "" {
		h.counted("unmatched", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			status := http.StatusNotFound
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				status = http.StatusMethodNotAllowed
				w.Header().Set("Allow", "GET, HEAD")
			}
			h.renderError(w, r, status, nil)
		})).ServeHTTP(w, r)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// contentSecurityPolicy allows the site's own stylesheet and images only:
// no script, no inline style, no frame, forms to this origin (and where the
// logout's answer redirects).
func contentSecurityPolicy(formActions []string) string {
	fa := "'self'"
	for _, o := range formActions {
		if o != "" {
			fa += " " + o
		}
	}
	return "default-src 'none'; style-src 'self'; img-src 'self'; form-action " + fa + "; frame-ancestors 'none'; base-uri 'none'"
}

func setSecurityHeaders(h http.Header, csp string) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
}

func (h *Handler) page(pattern, name string, fn pageFunc) {
	h.mux.Handle(pattern, h.counted("page "+pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// a page shows what this caller may see: no shared cache may keep it
		w.Header().Set("Cache-Control", "no-store")
		v := h.newView(r, name)
		if err := fn(r, v); err != nil {
			h.renderError(w, r, 0, err)
			return
		}
		h.render(w, http.StatusOK, v)
	})))
}

func (h *Handler) counted(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := statuswriter.Wrap(w)
		next.ServeHTTP(sw, r)
		if h.set.Count != nil {
			h.set.Count(r.Context(), route, sw.Status())
		}
	})
}

// render executes the view's page into a buffer first, so that a template
// failure becomes an error page instead of half a page.
func (h *Handler) render(w http.ResponseWriter, status int, v *view) {
	var b bytes.Buffer
	if err := h.tmpl.execute(&b, v); err != nil {
		h.set.Logger.Error("Rendering a page failed", zap.String("page", v.Page), zap.Error(err))
		status = http.StatusInternalServerError
		b.Reset()
		ev := &view{Page: "error", Title: "Internal error", Local: v.Local, Assets: v.Assets, Error: &errorView{Status: status, Detail: "The page could not be rendered."}}
		if err := h.tmpl.execute(&b, ev); err != nil {
			http.Error(w, "internal error", status)
			return
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes()) // a client gone mid-answer is not the site's failure
}

// Errors a page returns for the error page to explain.
var (
	errNotFound = errors.New("no such page, or not one you may see")
)

// badRequest is a parameter of the URL that cannot be read.
type badRequest struct{ param, reason string }

func (e *badRequest) Error() string { return e.param + ": " + e.reason }

// renderError answers an error page: status, or the one err implies.
func (h *Handler) renderError(w http.ResponseWriter, r *http.Request, status int, err error) {
	ev := &errorView{Status: status}
	var (
		br *badRequest
		se *scopeError
	)
	switch {
	case status != 0:
	case errors.As(err, &br):
		ev.Status, ev.Detail = http.StatusBadRequest, "The address has a parameter this site cannot read: "+br.Error()+"."
	case errors.Is(err, errNotFound), errors.Is(err, gpustore.ErrNotFound):
		ev.Status = http.StatusNotFound
	case errors.Is(err, authz.ErrUnavailable):
		w.Header().Set("Retry-After", "5")
		ev.Status, ev.Detail = http.StatusServiceUnavailable, "The authorization server could not be asked what you may see. Try again in a moment."
	case errors.As(err, &se):
		// the cause may describe the caller's token: the log has it, at debug
		h.set.Logger.Debug("Read scope refused", zap.Error(err))
		ev.Status, ev.Detail = http.StatusForbidden, "What you may see could not be decided for your login. Log out and in again."
	case errors.Is(err, gpustore.ErrBadQuery):
		ev.Status, ev.Detail = http.StatusBadRequest, "The store refused this query: "+err.Error()+"."
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		ev.Status, ev.Detail = http.StatusServiceUnavailable, "The store did not answer in time. Try again in a moment."
	default:
		h.set.Logger.Warn("A page failed", zap.String("path", r.URL.Path), zap.Error(err))
		ev.Status, ev.Detail = http.StatusInternalServerError, "The store could not be read."
	}
	if ev.Status == http.StatusNotFound && ev.Detail == "" {
		ev.Detail = "There is no such page, or it shows a project you may not see."
	}
	v := h.newView(r, "error")
	v.Title = http.StatusText(ev.Status)
	v.Error = ev
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, ev.Status, v)
}

// readAll runs a page's independent store reads at once, so that the page
// waits for its slowest read instead of their sum; the first error cancels
// the others and is the page's.
func readAll(ctx context.Context, reads ...func(context.Context) error) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, read := range reads {
		g.Go(func() error { return read(ctx) })
	}
	return g.Wait()
}

// scope asks the caller's read scope.
func (h *Handler) scope(r *http.Request) (gpustore.Scope, error) {
	s, err := h.set.Scope(r)
	switch {
	case errors.Is(err, authz.ErrDenied):
		// granted nothing: the pages say so instead of failing
		return gpustore.Scope{}, nil
	case err != nil:
		return s, &scopeError{err}
	}
	return s, nil
}

// scopeError is a read scope that could not be decided: never a store error.
type scopeError struct{ err error }

func (e *scopeError) Error() string { return e.err.Error() }
func (e *scopeError) Unwrap() error { return e.err }

func (h *Handler) now() time.Time { return h.set.Now().UTC() }

// traceLink is the configured trace URL of a trace id, or "".
func (h *Handler) traceLink(traceID string) string {
	if h.set.TraceURL == "" || traceID == "" {
		return ""
	}
	return strings.ReplaceAll(h.set.TraceURL, "{traceId}", traceID)
}
