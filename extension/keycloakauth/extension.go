package keycloakauth // import "github.com/nerc-project/ai-telemetry-collector/extension/keycloakauth"

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/nerc-project/ai-telemetry-collector/extension/keycloakauth/internal/metadata"
	"github.com/nerc-project/ai-telemetry-collector/internal/authz"
)

var (
	_ extension.Extension      = (*keycloakAuth)(nil)
	_ extensionauth.Server     = (*keycloakAuth)(nil)
	_ extensionauth.HTTPClient = (*keycloakAuth)(nil)
	_ extensionauth.GRPCClient = (*keycloakAuth)(nil)
	_ authz.Authorizer         = (*keycloakAuth)(nil)
	_ authz.ReadScoper         = (*keycloakAuth)(nil)
)

// keycloakAuth is one configured extension: the server side (keys, token
// cache, decisions) and the client side (token source) share its HTTP client.
type keycloakAuth struct {
	cfg       *Config
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder

	httpClient *http.Client
	keys       *keySet
	tokens     *lru.Cache[string, cachedToken]
	decisions  *lru.Cache[decisionKey, decision]
	unknown    *lru.Cache[string, time.Time] // resources Keycloak does not know, until when
	budgets    *lru.Cache[string, *rate.Limiter]
	inflight   singleflight.Group
	readScopes *lru.Cache[[sha256.Size]byte, readScope] // by token hash
	readFlight singleflight.Group
	source     *tokenSource

	now func() time.Time // time.Now; tests move the clock

	stopLoop context.CancelFunc
	wg       sync.WaitGroup
}

func newKeycloakAuth(cfg *Config, set extension.Settings) (*keycloakAuth, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	tokens, err := lru.New[string, cachedToken](cfg.Server.TokenCacheSize)
	if err != nil {
		return nil, fmt.Errorf("token cache: %w", err)
	}
	e := &keycloakAuth{
		cfg:        cfg,
		logger:     set.Logger,
		telemetry:  tb,
		httpClient: &http.Client{Timeout: cfg.Timeout, CheckRedirect: cfg.checkRedirect},
		tokens:     tokens,
		now:        time.Now,
		stopLoop:   func() {},
	}
	if cfg.Authorization.Mode == ModeResource {
		// Expiry is checked on read (no janitor goroutine): an expired
		// decision costs one slot until the LRU evicts it.
		if e.decisions, err = lru.New[decisionKey, decision](cfg.Authorization.DecisionCacheSize); err != nil {
			return nil, fmt.Errorf("decision cache: %w", err)
		}
		if e.unknown, err = lru.New[string, time.Time](cfg.Authorization.DecisionCacheSize); err != nil {
			return nil, fmt.Errorf("unknown resource cache: %w", err)
		}
		if e.budgets, err = lru.New[string, *rate.Limiter](cfg.Server.TokenCacheSize); err != nil {
			return nil, fmt.Errorf("decision budgets: %w", err)
		}
		// One read scope per validated token at most.
		if e.readScopes, err = lru.New[[sha256.Size]byte, readScope](cfg.Server.TokenCacheSize); err != nil {
			return nil, fmt.Errorf("read scope cache: %w", err)
		}
	}
	e.keys = newKeySet(e, cfg)
	if cl := cfg.Client.Get(); cl != nil && cl.ClientID != "" {
		if e.source, err = newTokenSource(e, cl); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Start builds the HTTP client and, on the server side, loads the keys. An
// unreachable Keycloak does not stop the collector: tokens are refused
// (counted, reason keys_unavailable) until the background refresh succeeds.
func (e *keycloakAuth) Start(ctx context.Context, _ component.Host) error {
	if e.cfg.InsecureAllowHTTP {
		e.logger.Warn("insecure_allow_http is set: access tokens and the client secret may travel to Keycloak in clear text",
			zap.String("server_url", e.cfg.ServerURL))
	}
	if e.source != nil && e.source.cfg.InsecureAllowHTTP {
		e.logger.Warn("client.insecure_allow_http is set: this collector's token may be sent over plain http and gRPC without TLS")
	}
	tlsCfg, err := e.cfg.TLS.LoadTLSConfig(ctx)
	if err != nil {
		return fmt.Errorf("keycloakauth tls: %w", err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsCfg
	e.httpClient.Transport = transport
	if len(e.cfg.Server.Audiences) == 0 {
		return nil
	}
	// Validating tokens without per-resource decisions lets one caller write
	// every project: allowed, but only as a setting an operator sees.
	if e.cfg.Authorization.Mode == ModeNone {
		e.logger.Warn("keycloakauth: authorization.mode is none: any valid token may write any project's data; "+
			"set authorization.mode: resource to authorize per project",
			zap.Strings("audiences", e.cfg.Server.Audiences))
	}
	if err := e.keys.refresh(ctx); err != nil {
		e.logger.Warn("Keycloak keys not loaded yet; tokens are refused until they are", zap.Error(err))
	}
	// The loop outlives Start's context but keeps its values; Shutdown cancels it.
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.stopLoop = cancel
	e.wg.Add(1)
	go e.refreshLoop(loopCtx)
	return nil
}

func (e *keycloakAuth) refreshLoop(ctx context.Context) {
	defer e.wg.Done()
	interval := e.cfg.Server.JWKSRefreshInterval
	for {
		// Until the first success, retry at the (short) refetch interval.
		wait := interval
		if !e.keys.loaded() {
			wait = e.cfg.Server.JWKSMinRefetchInterval
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		fetchCtx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
		if err := e.keys.refresh(fetchCtx); err != nil {
			e.logger.Warn("Keycloak key refresh failed; keeping the cached keys", zap.Error(err))
		}
		cancel()
	}
}

// Shutdown stops the background refresh.
func (e *keycloakAuth) Shutdown(context.Context) error {
	e.stopLoop()
	e.wg.Wait()
	e.httpClient.CloseIdleConnections()
	e.telemetry.Shutdown()
	return nil
}

// countRequest records one request to Keycloak.
func (e *keycloakAuth) countRequest(ctx context.Context, kind string, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	e.telemetry.KeycloakauthKeycloakRequests.Add(ctx, 1, metric.WithAttributes(
		attribute.String("kind", kind), attribute.String("outcome", outcome)))
}

var (
	errKeycloakStatus = errors.New("unexpected status from Keycloak")
	errInsecureURL    = errors.New("refusing to send credentials over plain http to a host that is not loopback")
)

// checkRedirect keeps the requests to Keycloak (client secret, access tokens
// in them) from following a redirect to plain http.
func (c *Config) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if !c.InsecureAllowHTTP && !secureURL(req.URL) {
		return fmt.Errorf("redirect to %s://%s: %w", req.URL.Scheme, req.URL.Host, errInsecureURL)
	}
	return nil
}
