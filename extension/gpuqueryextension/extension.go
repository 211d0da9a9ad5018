package gpuqueryextension // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension"

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.opentelemetry.io/collector/extension/extensioncapabilities"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/login"
	"github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/metadata"
	"github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/pages"
	"github.com/nerc-project/ai-telemetry-collector/internal/authz"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

var (
	_ extension.Extension             = (*queryExtension)(nil)
	_ extensioncapabilities.Dependent = (*queryExtension)(nil)
)

// localScoper is local mode's scope: everything, to everyone.
var localScoper = authz.ReadScoperFunc(func(context.Context) (gpustore.Scope, error) {
	return gpustore.Scope{All: true}, nil
})

type queryExtension struct {
	cfg       *Config
	settings  extension.Settings
	telemetry *metadata.TelemetryBuilder

	server     *http.Server
	serverDone sync.WaitGroup
	addr       string
}

func newExtension(cfg *Config, set extension.Settings) (*queryExtension, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return &queryExtension{cfg: cfg, settings: set, telemetry: tb}, nil
}

// Dependencies makes the collector start the store, the read scoper and the
// server's authenticator before this extension, which looks them up at
// Start (extensions otherwise start in no particular order).
func (e *queryExtension) Dependencies() []component.ID {
	deps := []component.ID{e.cfg.Storage}
	if e.cfg.Auth != nil {
		deps = append(deps, *e.cfg.Auth)
	}
	if a := e.cfg.HTTP.Auth.Get(); a != nil && (e.cfg.Auth == nil || a.Config.AuthenticatorID != *e.cfg.Auth) {
		deps = append(deps, a.Config.AuthenticatorID)
	}
	return deps
}

// Start obtains the store and the read scoper from their extensions, then
// serves the API.
func (e *queryExtension) Start(ctx context.Context, host component.Host) error {
	reader, err := gpustore.Lookup(host, e.cfg.Storage)
	if err != nil {
		return err
	}
	scoper := authz.ReadScoper(localScoper)
	if e.cfg.Auth != nil {
		if scoper, err = authz.LookupReadScoper(host, *e.cfg.Auth); err != nil {
			return err
		}
	} else {
		e.settings.Logger.Warn("gpu_query serves every GPU, project and report to every caller, without authentication: insecure_local_mode is for a local machine, never a site",
			zap.String("endpoint", e.cfg.HTTP.NetAddr.Endpoint))
	}
	handler, err := newAPI(apiSettings{
		reader:    reader,
		scoper:    scoper,
		local:     e.cfg.Auth == nil,
		telemetry: e.telemetry,
		logger:    e.settings.Logger,
		now:       time.Now,
	})
	if err != nil {
		return err
	}
	site := router{api: handler}
	if e.cfg.Login != nil {
		if site.authn, err = lookupAuthenticator(host, *e.cfg.Auth); err != nil {
			return err
		}
		site.login = e.newLogin(ctx)
	}
	// A site serves pages only with a login: a browser sends no bearer token.
	if e.cfg.Auth == nil || site.login != nil {
		if site.pages, err = e.newPages(reader, handler, site.login); err != nil {
			return err
		}
	}
	server, err := e.cfg.HTTP.ToServer(ctx, host.GetExtensions(), e.settings.TelemetrySettings, site,
		confighttp.WithErrorHandler(handler.authFailed))
	if err != nil {
		return err
	}
	listener, err := e.cfg.HTTP.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", e.cfg.HTTP.NetAddr.Endpoint, err)
	}
	e.server = server
	e.addr = listener.Addr().String()
	switch {
	case site.login != nil:
		e.settings.Logger.Info("Serving the AI Telemetry site (pages, login and API)", zap.String("endpoint", e.addr), zap.String("url", e.cfg.Login.PublicURL))
	case site.pages != nil:
		e.settings.Logger.Info("Serving the AI Telemetry site (pages and API) in local mode", zap.String("url", "http://"+e.addr+"/"))
	default:
		e.settings.Logger.Info("Serving the GPU query API", zap.String("endpoint", e.addr))
	}
	e.serverDone.Add(1)
	go func() {
		defer e.serverDone.Done()
		if err := server.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	}()
	return nil
}

// newPages builds the pages over the API's store and scope, counted in the
// API's request telemetry under "page <pattern>".
func (e *queryExtension) newPages(reader gpustore.Reader, a *api, lh *login.Handler) (http.Handler, error) {
	set := pages.Settings{
		Reader:   reader,
		Scope:    func(r *http.Request) (gpustore.Scope, error) { return a.scoper.ReadScope(r.Context()) },
		Local:    a.local,
		TraceURL: e.cfg.TraceURL,
		Now:      a.now,
		Logger:   e.settings.Logger,
		Count:    a.count,
	}
	if lh != nil {
		set.User = sessionUser
		// the logout form's answer redirects to Keycloak's end-session endpoint
		set.FormActions = []string{lh.IssuerOrigin()}
	}
	return pages.New(set)
}

// newLogin builds the login with the collector's telemetry.
func (e *queryExtension) newLogin(ctx context.Context) *login.Handler {
	tb := e.telemetry
	return login.New(login.Settings{
		Config: *e.cfg.Login,
		Now:    time.Now,
		Logger: e.settings.Logger,
		Logins: func(ctx context.Context, outcome string) {
			tb.GpuQueryLogins.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", outcome)))
		},
		Refreshes: func(ctx context.Context, outcome string) {
			tb.GpuQuerySessionRefreshes.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", outcome)))
		},
		// sessions end inside requests and evictions; the collector's context carries nothing they need
		Ended: func(reason string) {
			tb.GpuQuerySessionsEnded.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reason)))
		},
		Active: func(delta int64) { tb.GpuQuerySessionsActive.Add(ctx, delta) },
	})
}

var errNotAuthenticator = errors.New("extension is not a server authenticator")

// lookupAuthenticator finds the auth extension as the login's authenticator.
func lookupAuthenticator(host component.Host, id component.ID) (extensionauth.Server, error) {
	ext, ok := host.GetExtensions()[id]
	if !ok {
		return nil, fmt.Errorf("authenticator %q: not configured", id)
	}
	a, ok := ext.(extensionauth.Server)
	if !ok {
		return nil, fmt.Errorf("authenticator %q: %w", id, errNotAuthenticator)
	}
	return a, nil
}

// Shutdown stops the server.
func (e *queryExtension) Shutdown(ctx context.Context) error {
	var err error
	if e.server != nil {
		err = e.server.Shutdown(ctx)
		e.serverDone.Wait()
		e.server = nil
	}
	e.telemetry.Shutdown()
	return err
}
