package keycloakauth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/otel/attribute"

	"github.com/nerc-project/ai-telemetry-collector/extension/keycloakauth/internal/metadatatest"
	"github.com/nerc-project/ai-telemetry-collector/internal/telemetrytest"
)

const (
	testAudience = "ai-telemetry-gateway"
	testClientID = "telemetry-writer"
	testSecret   = "unit-test-secret"
)

// fakeKeycloak serves a realm's discovery document, JWKS, client-credentials
// grant and UMA decisions for unit tests; the integration tests use the real one.
type fakeKeycloak struct {
	t   testing.TB
	srv *httptest.Server

	mu      sync.Mutex
	key     *rsa.PrivateKey
	kid     string
	allowed map[string]bool                // "token resource" -> allowed
	granted map[string]map[string][]string // token -> resource -> scopes (response_mode=permissions)
	revoked map[string]bool                // tokens Keycloak no longer accepts
	expires int                            // expires_in of issued tokens

	down        atomic.Bool
	umaRelease  chan struct{} // when set, UMA answers wait for it
	umaArrived  chan struct{}
	discoveries atomic.Int64
	jwksFetches atomic.Int64
	tokens      atomic.Int64
	umas        atomic.Int64
}

func newFakeKeycloak(t testing.TB) *fakeKeycloak {
	f := &fakeKeycloak{
		t: t, allowed: map[string]bool{}, granted: map[string]map[string][]string{}, revoked: map[string]bool{},
		expires: 300,
	}
	f.rotate("k1")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /realms/NERC/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		f.discoveries.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]string{
			"issuer":         f.issuer(),
			"jwks_uri":       f.srv.URL + "/realms/NERC/protocol/openid-connect/certs",
			"token_endpoint": f.srv.URL + "/realms/NERC/protocol/openid-connect/token",
		})
	})
	mux.HandleFunc("GET /realms/NERC/protocol/openid-connect/certs", func(w http.ResponseWriter, _ *http.Request) {
		f.jwksFetches.Add(1)
		f.mu.Lock()
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: f.key.Public(), KeyID: f.kid, Algorithm: "RS256", Use: "sig"},
			{Key: f.key.Public(), KeyID: "enc-key", Algorithm: "RSA-OAEP", Use: "enc"},
		}}
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(set)
	})
	mux.HandleFunc("POST /realms/NERC/protocol/openid-connect/token", f.token)
	f.srv = httptest.NewServer(down(f, mux))
	t.Cleanup(f.srv.Close)
	return f
}

// down answers 503 to everything while the fake is "stopped".
func down(f *fakeKeycloak, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (f *fakeKeycloak) issuer() string { return f.srv.URL + "/realms/NERC" }

// rotate replaces the realm's signing key, as Keycloak's key rotation does.
func (f *fakeKeycloak) rotate(kid string) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(f.t, err)
	f.mu.Lock()
	f.key, f.kid = key, kid
	f.mu.Unlock()
}

func (f *fakeKeycloak) token(w http.ResponseWriter, r *http.Request) {
	require.NoError(f.t, r.ParseForm())
	switch r.PostForm.Get("grant_type") {
	case "client_credentials":
		f.tokens.Add(1)
		id, secret, _ := r.BasicAuth()
		if id != testClientID || secret != testSecret {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"unauthorized_client","error_description":"Invalid client or Invalid client credentials"}`))
			return
		}
		f.mu.Lock()
		expires := f.expires
		f.mu.Unlock()
		tok := f.sign(f.claims(time.Duration(expires) * time.Second))
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": expires})
	case "urn:ietf:params:oauth:grant-type:uma-ticket":
		f.umas.Add(1)
		if f.umaArrived != nil {
			f.umaArrived <- struct{}{}
			<-f.umaRelease
		}
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		require.Equal(f.t, testAudience, r.PostForm.Get("audience"))
		if r.PostForm.Get("response_mode") == "permissions" {
			f.permissions(w, tok, r.PostForm["permission"])
			return
		}
		resource, scopes := parsePermission(r.PostForm.Get("permission"))
		require.Equal(f.t, "decision", r.PostForm.Get("response_mode"))
		w.Header().Set("Content-Type", "application/json")
		f.mu.Lock()
		allowed, known := f.allowed[tok+" "+resource]
		f.mu.Unlock()
		switch {
		case slices.ContainsFunc(scopes, func(s string) bool { return s != "GET" }):
			// The realm defines the one scope GET.
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_scope"}`))
		case !known:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_resource"}`))
		case allowed:
			_, _ = w.Write([]byte(`{"result":true}`))
		default:
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error":"access_denied","error_description":"not_authorized"}`))
		}
	default:
		http.Error(w, "unsupported grant", http.StatusBadRequest)
	}
}

// permissions answers the UMA grant in response_mode=permissions as Keycloak
// does: a token it does not accept is 400 invalid_grant; without permission
// parameters every resource of the resource server is evaluated, with them
// only those named (and, when scopes are named, only those scopes); the
// granted ones are listed as [{"rsid","rsname","scopes"}] in no particular
// order (Go's map order stands in for Keycloak's), or 403 when none is.
func (f *fakeKeycloak) permissions(w http.ResponseWriter, tok string, requested []string) {
	w.Header().Set("Content-Type", "application/json")
	f.mu.Lock()
	key := f.key
	revoked := f.revoked[tok]
	grants := map[string][]string{}
	for resource, scopes := range f.granted[tok] {
		grants[resource] = slices.Clone(scopes)
	}
	f.mu.Unlock()
	if parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256}); err != nil || revoked ||
		parsed.Claims(key.Public(), &map[string]any{}) != nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"Invalid bearer token"}`))
		return
	}
	if len(requested) > 0 {
		asked := map[string][]string{}
		for _, p := range requested {
			resource, scopes := parsePermission(p)
			asked[resource] = append(asked[resource], scopes...)
		}
		for resource, scopes := range grants {
			want, ok := asked[resource]
			switch {
			case !ok:
				delete(grants, resource)
			case len(want) > 0:
				grants[resource] = slices.DeleteFunc(scopes, func(s string) bool { return !slices.Contains(want, s) })
			}
		}
	}
	type permission struct {
		ID     string   `json:"rsid"`
		Name   string   `json:"rsname"`
		Scopes []string `json:"scopes,omitempty"`
	}
	var list []permission
	for resource, scopes := range grants {
		if len(scopes) > 0 {
			list = append(list, permission{ID: "id-" + resource, Name: resource, Scopes: scopes})
		}
	}
	if len(list) == 0 {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"error":"access_denied","error_description":"not_authorized"}`))
		return
	}
	_ = json.NewEncoder(w).Encode(list)
}

// grant gives token the scopes on resource, for response_mode=permissions.
func (f *fakeKeycloak) grant(token, resource string, scopes ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.granted[token] == nil {
		f.granted[token] = map[string][]string{}
	}
	f.granted[token][resource] = append(f.granted[token][resource], scopes...)
}

// revoke makes Keycloak refuse token, as after the user's session ended.
func (f *fakeKeycloak) revoke(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked[token] = true
}

// parsePermission reads a permission parameter as Keycloak's token endpoint
// does (AuthorizationRequest: permission.split("#"), then parts[1].split(",")):
// the resource up to the first '#', the comma-separated scopes up to the
// next, the rest ignored. Java's split drops trailing empty strings, so
// "res#" has no scopes.
func parsePermission(permission string) (resource string, scopes []string) {
	parts := javaSplit(permission, "#")
	if len(parts) == 0 {
		return "", nil
	}
	if len(parts) == 1 {
		return parts[0], nil
	}
	return parts[0], javaSplit(parts[1], ",")
}

// javaSplit is Java's String.split for a literal one-character separator.
func javaSplit(s, sep string) []string {
	if s == "" {
		return []string{""}
	}
	parts := strings.Split(s, sep)
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return parts
}

func (f *fakeKeycloak) allow(token, resource string, allowed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.allowed[token+" "+resource] = allowed
}

// claims of a typical Keycloak client-credentials access token.
func (f *fakeKeycloak) claims(ttl time.Duration) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": f.issuer(), "aud": []string{testAudience, "account"}, "sub": "7d1c-service-account",
		"azp": testClientID, "typ": "Bearer", "preferred_username": "service-account-" + testClientID,
		"exp": now.Add(ttl).Unix(), "iat": now.Unix(), "nbf": now.Add(-time.Second).Unix(),
		"jti": rand.Text(), "groups": []string{"team-a-writers"},
		"realm_access":    map[string]any{"roles": []string{"offline_access"}},
		"resource_access": map[string]any{"account": map[string]any{"roles": []string{"view-profile"}}},
	}
}

// sign signs claims with the realm's current key.
func (f *fakeKeycloak) sign(claims map[string]any) string {
	f.mu.Lock()
	key, kid := f.key, f.kid
	f.mu.Unlock()
	return signWith(f.t, jose.RS256, key, kid, claims)
}

func signWith(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	require.NoError(t, err)
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	require.NoError(t, err)
	return tok
}

// testConfig is a server-and-client configuration against the fake.
func (f *fakeKeycloak) config() *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.ServerURL = f.srv.URL
	cfg.Server.Audiences = []string{testAudience}
	cfg.Server.JWKSMinRefetchInterval = time.Hour // tests that need refetches set it
	cfg.Client = configoptional.Some(ClientConfig{
		ClientID: testClientID, ClientSecret: configopaque.String(testSecret),
		ExpiryMargin: defaultExpiryMargin, MaxBackoff: defaultMaxBackoff,
	})
	cfg.Authorization = AuthorizationConfig{
		Mode: ModeResource, ResourceServer: testAudience, Scope: "GET",
		ReadScope: "GET", ManagerScope: "GETManager",
		DecisionCacheTTL: time.Hour, DecisionCacheSize: 100,
		// Ample: tests of the budget set their own.
		MaxDecisionsPerMinute: 1_000_000, DecisionBurst: 1_000_000,
	}
	return cfg
}

// start creates and starts the extension with telemetry the test can read.
func start(t *testing.T, cfg *Config) (*keycloakAuth, *componenttest.Telemetry) {
	t.Helper()
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	e, err := newKeycloakAuth(cfg, metadatatest.NewSettings(tel))
	require.NoError(t, err)
	require.NoError(t, e.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, e.Shutdown(context.Background())) })
	return e, tel
}

// count sums a counter's data points carrying all the given attributes.
func count(t *testing.T, tel *componenttest.Telemetry, name string, attrs ...attribute.KeyValue) int64 {
	t.Helper()
	return telemetrytest.SumCounter(tel, "otelcol_keycloakauth_"+name, attrs...)
}

func bearerHeader(tok string) map[string][]string {
	return map[string][]string{"Authorization": {"Bearer " + tok}}
}

// hostWith is a host holding the given extensions.
type hostWith map[component.ID]component.Component

func (h hostWith) GetExtensions() map[component.ID]component.Component { return h }
