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
	"go.opentelemetry.io/collector/extension/extensioncapabilities"
	"go.uber.org/zap"

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
	if e.cfg.Auth == nil {
		// The pages need a login to serve a site (a browser sends no bearer
		// token); until then they are served in local mode only.
		if site.pages, err = e.newPages(reader, handler); err != nil {
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
	if site.pages != nil {
		e.settings.Logger.Info("Serving the AI Telemetry site (pages and API) in local mode", zap.String("url", "http://"+e.addr+"/"))
	} else {
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
func (e *queryExtension) newPages(reader gpustore.Reader, a *api) (http.Handler, error) {
	return pages.New(pages.Settings{
		Reader:   reader,
		Scope:    func(r *http.Request) (gpustore.Scope, error) { return a.scoper.ReadScope(r.Context()) },
		Local:    a.local,
		TraceURL: e.cfg.TraceURL,
		Now:      a.now,
		Logger:   e.settings.Logger,
		Count:    a.count,
	})
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
