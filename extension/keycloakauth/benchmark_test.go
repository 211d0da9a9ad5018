package keycloakauth

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/oidcauthextension"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// The upstream comparison uses the same fake realm, token and keys: upstream's
// oidc extension (contrib v0.165.1) checks the signature of every request;
// keycloakauth checks it on a token's first use and then finds it in its cache.

func benchHeaders(b *testing.B, f *fakeKeycloak) map[string][]string {
	b.Helper()
	return bearerHeader(f.sign(f.claims(time.Hour)))
}

func BenchmarkKeycloakAuthAuthenticate(b *testing.B) {
	f := newFakeKeycloak(b)
	e := benchStart(b, f.config())
	headers := benchHeaders(b, f)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.Authenticate(ctx, headers); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKeycloakAuthAuthenticateUncached validates the signature every time
// (two tokens alternating through a one-entry cache): a token's first request.
func BenchmarkKeycloakAuthAuthenticateUncached(b *testing.B) {
	f := newFakeKeycloak(b)
	cfg := f.config()
	cfg.Server.TokenCacheSize = 1
	e := benchStart(b, cfg)
	headers := []map[string][]string{benchHeaders(b, f), benchHeaders(b, f)}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i++
		if _, err := e.Authenticate(ctx, headers[i%2]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUpstreamOIDCAuthenticate(b *testing.B) {
	f := newFakeKeycloak(b)
	factory := oidcauthextension.NewFactory()
	cfg := factory.CreateDefaultConfig().(*oidcauthextension.Config)
	cfg.Providers = []oidcauthextension.ProviderCfg{{IssuerURL: f.issuer(), Audience: testAudience}}
	ext, err := factory.Create(context.Background(), extensiontest.NewNopSettings(factory.Type()), cfg)
	require.NoError(b, err)
	require.NoError(b, ext.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { _ = ext.Shutdown(context.Background()) }()
	server := ext.(extensionauth.Server)
	headers := benchHeaders(b, f)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := server.Authenticate(ctx, headers); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKeycloakAuth10kRequests100Tokens10Resources: one op is 10,000
// authorized requests (authenticate, then authorize on the request's project)
// from 100 distinct tokens over 10 project resources, on a fresh extension;
// keycloak-requests/op counts what reached Keycloak (discovery, JWKS, UMA).
func BenchmarkKeycloakAuth10kRequests100Tokens10Resources(b *testing.B) {
	f := newFakeKeycloak(b)
	tokens := make([]map[string][]string, 100)
	resources := make([]string, 10)
	for r := range resources {
		resources[r] = topology.ProjectResource("moc", "nerc-ocp-prod", fmt.Sprintf("project-%d", r))
	}
	for i := range tokens {
		tok := f.sign(f.claims(time.Hour))
		tokens[i] = bearerHeader(tok)
		for _, r := range resources {
			f.allow(tok, r, true)
		}
	}
	var requests int64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		before := f.discoveries.Load() + f.jwksFetches.Load() + f.umas.Load()
		cfg := f.config()
		cfg.Authorization.DecisionCacheSize = defaultDecisionCacheSize
		e := benchStart(b, cfg)
		for i := range 10_000 {
			ctx, err := e.Authenticate(context.Background(), tokens[i%len(tokens)])
			if err != nil {
				b.Fatal(err)
			}
			if err := e.Authorize(ctx, resources[(i/len(tokens))%len(resources)]); err != nil {
				b.Fatal(err)
			}
		}
		require.NoError(b, e.Shutdown(context.Background()))
		requests += f.discoveries.Load() + f.jwksFetches.Load() + f.umas.Load() - before
	}
	b.ReportMetric(float64(requests)/float64(b.N), "keycloak-requests/op")
}

func benchStart(b *testing.B, cfg *Config) *keycloakAuth {
	b.Helper()
	e, err := newKeycloakAuth(cfg, extensiontest.NewNopSettings(extensiontest.NopType))
	require.NoError(b, err)
	require.NoError(b, e.Start(context.Background(), componenttest.NewNopHost()))
	b.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	return e
}

// BenchmarkReadScope500Projects: the read scope of a caller granted 500
// projects, against the fake. Cached is the site's every request after the
// first (a copy of the cached scope); Uncached parses Keycloak's list each
// time (a one-token cache, two tokens alternating), the cost besides
// Keycloak's own evaluation. keycloak-requests/op counts the grants sent.
func BenchmarkReadScope500Projects(b *testing.B) {
	for _, cached := range []bool{true, false} {
		name := "Cached"
		if !cached {
			name = "Uncached"
		}
		b.Run(name, func(b *testing.B) {
			f := newFakeKeycloak(b)
			cfg := f.config()
			if !cached {
				cfg.Server.TokenCacheSize = 1
			}
			e := benchStart(b, cfg)
			ctxs := make([]context.Context, 2)
			for i := range ctxs {
				tok := f.sign(f.claims(time.Hour))
				for p := range 500 {
					f.grant(tok, topology.ProjectResource("moc", "nerc-ocp-prod", fmt.Sprintf("project-%d", p)), "GET")
				}
				ctx, err := e.Authenticate(context.Background(), bearerHeader(tok))
				require.NoError(b, err)
				ctxs[i] = ctx
			}
			before := f.umas.Load()
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				i++
				scope, err := e.ReadScope(ctxs[i%2])
				if err != nil || len(scope.Projects) != 500 {
					b.Fatal(err, len(scope.Projects))
				}
			}
			b.ReportMetric(float64(f.umas.Load()-before)/float64(b.N), "keycloak-requests/op")
		})
	}
}
