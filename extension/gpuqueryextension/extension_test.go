package gpuqueryextension

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/login"
	"github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/metadata"
	"github.com/nerc-project/ai-telemetry-collector/internal/authz"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// storeExt provides a store as the gpu_storage extension does.
type storeExt struct {
	component.StartFunc
	component.ShutdownFunc
	store gpustore.Store
	err   error
}

func (s storeExt) GPUStore() (gpustore.Store, error) { return s.store, s.err }

// memFull makes the fake a Store (it never writes).
type memFull struct{ *memStore }

func (memFull) WriteMetrics(context.Context, pmetricMetrics) error { return gpustore.ErrReadOnly }
func (memFull) WriteTraces(context.Context, ptraceTraces) error    { return gpustore.ErrReadOnly }
func (memFull) Close() error                                       { return nil }

// tokenAuth authenticates a Bearer token into the client's auth data, as
// keycloakauth does with a validated token's subject.
type tokenAuth struct {
	component.StartFunc
	component.ShutdownFunc
}

var errNoToken = errors.New("no bearer token")

func (tokenAuth) Authenticate(ctx context.Context, headers map[string][]string) (context.Context, error) {
	h := headers["Authorization"]
	if len(h) != 1 || h[0] == "" {
		return ctx, errNoToken
	}
	info := client.FromContext(ctx)
	info.Auth = subject(h[0])
	return client.NewContext(ctx, info), nil
}

type subject string

func (s subject) GetAttribute(k string) any {
	if k == "subject" {
		return string(s)
	}
	return nil
}
func (subject) GetAttributeNames() []string { return []string{"subject"} }

// scopeBySubject reads the subject the authenticator put in the context:
// "Bearer team-a" may read team-a.
type scopeBySubject struct{}

func (scopeBySubject) ReadScope(ctx context.Context) (gpustore.Scope, error) {
	info := client.FromContext(ctx)
	if info.Auth == nil {
		return gpustore.Scope{}, errNoToken
	}
	switch info.Auth.GetAttribute("subject") {
	case "Bearer team-a":
		return scopeTeamA, nil
	case "Bearer keycloak-down":
		return gpustore.Scope{}, authz.ErrUnavailable
	}
	return gpustore.Scope{}, authz.ErrDenied
}

var (
	_ gpustore.Provider    = storeExt{}
	_ extensionauth.Server = tokenAuth{}
	_ authz.ReadScoper     = siteExtension{}
)

type host map[component.ID]component.Component

func (h host) GetExtensions() map[component.ID]component.Component { return h }

var (
	storageID = component.MustNewID("gpu_storage")
	authID    = component.MustNewID("keycloakauth")
)

func startExtension(t *testing.T, cfg *Config, h host, logger *zap.Logger) (*queryExtension, error) {
	t.Helper()
	set := extensiontest.NewNopSettings(metadata.Type)
	if logger != nil {
		set.Logger = logger
	}
	ext, err := newExtension(cfg, set)
	require.NoError(t, err)
	if err := ext.Start(context.Background(), h); err != nil {
		return nil, err
	}
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	return ext, nil
}

func siteConfig() *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.HTTP.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Storage = storageID
	cfg.Auth = &authID
	cfg.HTTP.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: authID}})
	return cfg
}

// siteExtension is what keycloakauth is to the API: an authenticator and a
// read scoper in one extension.
type siteExtension struct {
	tokenAuth
	scopeBySubject
}

func fetch(t *testing.T, addr, path, token string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, http.NoBody)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	d, err := loadDoc()
	require.NoError(t, err)
	router, err := legacyRouter(d)
	require.NoError(t, err)
	if isAPIPath(path) || resp.Header.Get("Content-Type") == mediaProblem {
		require.NoError(t, validateResponse(router, req, resp, body), "%s -> %d %s", path, resp.StatusCode, body)
	}
	return resp.StatusCode, resp.Header, body
}

// TestStartSite: the collector's server authenticates (http::auth) before
// the handler; the handler asks the auth extension for the caller's scope.
func TestStartSite(t *testing.T) {
	h := host{storageID: storeExt{store: memFull{fixture()}}, authID: siteExtension{}}
	ext, err := startExtension(t, siteConfig(), h, nil)
	require.NoError(t, err)

	status, hdr, body := fetch(t, ext.addr, "/api/v1/projects", "")
	assert.Equal(t, http.StatusUnauthorized, status, "no token: refused by the authenticator")
	// the authenticator's refusal is this API's problem, not confighttp's text
	assert.Equal(t, mediaProblem, hdr.Get("Content-Type"))
	assert.Contains(t, string(body), "#"+reasonUnauthenticated)
	assert.Equal(t, "Bearer", hdr.Get("WWW-Authenticate"))
	status, hdr, body = fetch(t, ext.addr, "/api/v1/projects", "Bearer team-a")
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.Contains(t, string(body), `"namespace":"team-a"`)
	assert.NotContains(t, string(body), "team-b")
	assert.Empty(t, hdr.Get(modeHeader))
	status, _, _ = fetch(t, ext.addr, "/api/v1/projects", "Bearer mallory")
	assert.Equal(t, http.StatusForbidden, status)
	status, _, _ = fetch(t, ext.addr, "/api/v1/projects", "Bearer keycloak-down")
	assert.Equal(t, http.StatusServiceUnavailable, status)
	// without a login the pages are not served on a site: / is the API's 404
	status, hdr, _ = fetch(t, ext.addr, "/", "Bearer team-a")
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, mediaProblem, hdr.Get("Content-Type"))
}

// TestStartSiteWithLogin: with a login, a page without a session redirects
// to it (keeping where to return), the API takes bearer tokens itself (no
// http::auth) and answers 401 without one, and the login answers its path.
func TestStartSiteWithLogin(t *testing.T) {
	cfg := siteConfig()
	cfg.HTTP.Auth = configoptional.None[confighttp.AuthConfig]()
	cfg.Login = &login.Config{IssuerURL: "http://127.0.0.1:1/realms/none", PublicURL: "http://127.0.0.1:8080", ClientID: "site-web", ClientSecret: "s"}
	require.NoError(t, cfg.Validate())
	ext, err := startExtension(t, cfg, host{storageID: storeExt{store: memFull{fixture()}}, authID: siteExtension{}}, nil)
	require.NoError(t, err)

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get("http://" + ext.addr + "/projects/moc/nerc-ocp-prod/team-a?window=7d")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/login?next=%2Fprojects%2Fmoc%2Fnerc-ocp-prod%2Fteam-a%3Fwindow%3D7d", resp.Header.Get("Location"))

	status, hdr, _ := fetch(t, ext.addr, "/api/v1/projects", "")
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Equal(t, "Bearer", hdr.Get("WWW-Authenticate"))
	status, _, body := fetch(t, ext.addr, "/api/v1/projects", "Bearer team-a")
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.Contains(t, string(body), `"namespace":"team-a"`)
	assert.NotContains(t, string(body), "team-b")

	// the login serves /login: here it says that Keycloak cannot be reached
	status, _, body = fetch(t, ext.addr, "/login", "")
	assert.Equal(t, http.StatusServiceUnavailable, status, "Keycloak cannot be reached: %s", body)
}

// TestStartLocal: local mode serves everything, warns at Start and marks answers.
func TestStartLocal(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	cfg := createDefaultConfig().(*Config)
	cfg.HTTP.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Storage = storageID
	cfg.InsecureLocalMode = true
	ext, err := startExtension(t, cfg, host{storageID: storeExt{store: memFull{fixture()}}}, zap.New(core))
	require.NoError(t, err)
	require.Equal(t, 1, logs.FilterMessageSnippet("without authentication").Len(), "local mode warns at Start")

	status, hdr, body := fetch(t, ext.addr, "/api/v1/hubs", "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.Equal(t, modeLocal, hdr.Get(modeHeader))
	assert.Contains(t, string(body), `"other"`, "local mode sees every hub")

	// the pages are served beside the API, marked as local mode's too
	status, hdr, body = fetch(t, ext.addr, "/", "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.True(t, strings.HasPrefix(hdr.Get("Content-Type"), "text/html"))
	assert.Equal(t, modeLocal, hdr.Get(modeHeader))
	assert.Contains(t, string(body), "Local mode:")
	status, _, body = fetch(t, ext.addr, "/projects/moc/nerc-ocp-prod/team-a", "")
	require.Equal(t, http.StatusOK, status, "%s", body)
	assert.Contains(t, string(body), "LLM fine-tuning")
	// an API path the API lacks is still the API's problem, not a page
	status, hdr, _ = fetch(t, ext.addr, "/api/v1/nope", "")
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, mediaProblem, hdr.Get("Content-Type"))
}

// TestStartRefused: a missing or wrong storage or auth extension stops Start.
func TestStartRefused(t *testing.T) {
	good := storeExt{store: memFull{fixture()}}
	tests := []struct {
		name    string
		host    host
		wantErr error
	}{
		{"no storage extension", host{authID: siteExtension{}}, nil},
		{"storage is not a provider", host{storageID: tokenAuth{}, authID: siteExtension{}}, gpustore.ErrNotProvider},
		{"storage failed to open", host{storageID: storeExt{err: gpustore.ErrReadOnly}, authID: siteExtension{}}, gpustore.ErrReadOnly},
		{"no auth extension", host{storageID: good}, nil},
		{"auth is not a read scoper", host{storageID: good, authID: tokenAuth{}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := startExtension(t, siteConfig(), tt.host, nil)
			require.Error(t, err)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
			}
		})
	}
}

// TestDependencies: the collector starts extensions in dependency order
// only; without it the store may not be open when gpu_query starts.
func TestDependencies(t *testing.T) {
	storage := component.MustNewID("gpu_storage")
	kc := component.MustNewID("keycloakauth")
	other := component.MustNewIDWithName("oidc", "site")
	tests := []struct {
		name string
		cfg  func(*Config)
		want []component.ID
	}{
		{name: "local", cfg: func(c *Config) { c.InsecureLocalMode = true }, want: []component.ID{storage}},
		{name: "keycloak for both", cfg: func(c *Config) {
			c.Auth = &kc
			c.HTTP.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: kc}})
		}, want: []component.ID{storage, kc}},
		{name: "another authenticator", cfg: func(c *Config) {
			c.Auth = &kc
			c.HTTP.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: other}})
		}, want: []component.ID{storage, kc, other}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			cfg.Storage = storage
			tt.cfg(cfg)
			e, err := newExtension(cfg, extensiontest.NewNopSettings(metadata.Type))
			require.NoError(t, err)
			assert.Equal(t, tt.want, e.Dependencies())
		})
	}
}
