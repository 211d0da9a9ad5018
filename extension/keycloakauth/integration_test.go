//go:build integration

package keycloakauth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/nerc-project/ai-telemetry-collector/internal/authz"
	"github.com/nerc-project/ai-telemetry-collector/internal/testpeers"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
	"github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver"
)

// realmClients are the test realm's client-credentials clients this test logs in as.
var realmClients = []string{"hub-writer", "team-a-writer", "no-access", "other-audience"}

func startRealKeycloak(t *testing.T) *testpeers.Keycloak {
	return testpeers.StartKeycloak(t, testpeers.KeycloakOptions{RealmFile: filepath.Join("testdata", "realm-nerc.json")})
}

// gatewayConfig validates tokens for ai-telemetry-gateway and decides per resource.
func gatewayConfig(kc *testpeers.Keycloak) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.ServerURL = kc.URL()
	cfg.Server.Audiences = []string{"ai-telemetry-gateway"}
	cfg.Server.JWKSMinRefetchInterval = time.Second
	cfg.Authorization = AuthorizationConfig{
		Mode: ModeResource, ResourceServer: "ai-telemetry-gateway", Scope: "GET",
		ReadScope: defaultReadScope, ManagerScope: defaultManagerScope,
		DecisionCacheTTL: time.Hour, DecisionCacheSize: 1000,
		MaxDecisionsPerMinute: defaultMaxDecisionsPerMinute, DecisionBurst: defaultDecisionBurst,
	}
	return cfg
}

// clientConfig obtains tokens as one of the realm's clients.
func clientConfig(kc *testpeers.Keycloak, clientID string) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.ServerURL = kc.URL()
	cfg.Client = configoptional.Some(ClientConfig{
		ClientID: clientID, ClientSecret: configopaque.String(kc.Secret(clientID)),
		ExpiryMargin: defaultExpiryMargin, MaxBackoff: time.Second,
	})
	return cfg
}

// tokenOf returns the Authorization header value a client extension presents.
func tokenOf(t *testing.T, e *keycloakAuth) (string, error) {
	t.Helper()
	creds, err := e.PerRPCCredentials()
	require.NoError(t, err)
	md, err := creds.GetRequestMetadata(context.Background())
	if err != nil {
		return "", err
	}
	return md["authorization"], nil
}

func authenticate(e *keycloakAuth, header string) (context.Context, error) {
	return e.Authenticate(context.Background(), map[string][]string{"authorization": {header}})
}

func TestRealKeycloak(t *testing.T) {
	kc := startRealKeycloak(t)
	gateway, gatewayTel := start(t, gatewayConfig(kc))
	clients := map[string]*keycloakAuth{}
	headers := map[string]string{}
	for _, id := range realmClients {
		clients[id], _ = start(t, clientConfig(kc, id))
		h, err := tokenOf(t, clients[id])
		require.NoError(t, err, id)
		headers[id] = h
	}
	hub := topology.HubResource("moc")
	cluster := topology.ClusterResource("moc", "nerc-ocp-prod")
	teamA := topology.ProjectResource("moc", "nerc-ocp-prod", "team-a")
	teamB := topology.ProjectResource("moc", "nerc-ocp-prod", "team-b")
	contexts := map[string]context.Context{}

	t.Run("authentication", func(t *testing.T) {
		for _, id := range []string{"hub-writer", "team-a-writer", "no-access"} {
			ctx, err := authenticate(gateway, headers[id])
			require.NoError(t, err, id)
			auth := client.FromContext(ctx).Auth
			assert.Equal(t, id, auth.GetAttribute(AttrClientID))
			assert.Equal(t, "service-account-"+id, auth.GetAttribute(AttrUsername))
			assert.NotEmpty(t, auth.GetAttribute(AttrSubject))
			contexts[id] = ctx
		}
		groups := client.FromContext(contexts["team-a-writer"]).Auth.GetAttribute(AttrGroups)
		assert.Equal(t, []string{"team-a-writers"}, groups)
		_, err := authenticate(gateway, headers["other-audience"])
		require.ErrorIs(t, err, errAudience, "a token for another audience is refused")
	})

	t.Run("authorization", func(t *testing.T) {
		want := map[string]map[string]bool{
			"hub-writer":    {hub: true, cluster: true, teamA: true, teamB: true},
			"team-a-writer": {hub: false, teamA: true, teamB: false},
			"no-access":     {hub: false, cluster: false, teamA: false, teamB: false},
		}
		for id, resources := range want {
			for resource, allowed := range resources {
				err := gateway.Authorize(contexts[id], resource)
				if allowed {
					assert.NoError(t, err, "%s on %s", id, resource)
				} else {
					assert.ErrorIs(t, err, authz.ErrDenied, "%s on %s", id, resource)
				}
			}
		}
		unknown := topology.ProjectResource("moc", "nerc-ocp-prod", "no-such-project")
		err := gateway.Authorize(contexts["hub-writer"], unknown)
		assert.ErrorIs(t, err, authz.ErrDenied, "a resource Keycloak does not know")
		umas := count(t, gatewayTel, "keycloak_requests", attribute.String("kind", "uma"))
		err = gateway.Authorize(contexts["team-a-writer"], unknown)
		assert.ErrorIs(t, err, authz.ErrDenied)
		assert.Equal(t, umas, count(t, gatewayTel, "keycloak_requests", attribute.String("kind", "uma")),
			"Keycloak's invalid_resource is remembered for every token")
	})

	t.Run("separator injection", func(t *testing.T) {
		// Issue 14: a cluster name carrying "#GET#" makes Keycloak decide on
		// team-a while the data would be stored as team-b's.
		injected := topology.ProjectResource("moc", "nerc-ocp-prod-PROJECT-team-a#GET#", "team-b")
		raw := client.FromContext(contexts["team-a-writer"]).Auth.(*authData).raw
		ans, err := gateway.askKeycloak(context.Background(), raw, injected)
		require.NoError(t, err)
		require.Equal(t, answerAllowed, ans, "without the check, real Keycloak allows it: it reads up to the first '#'")
		umas := count(t, gatewayTel, "keycloak_requests", attribute.String("kind", "uma"))
		err = gateway.Authorize(contexts["team-a-writer"], injected)
		require.ErrorIs(t, err, authz.ErrDenied)
		require.ErrorIs(t, err, topology.ErrInvalidResource)
		assert.Equal(t, umas, count(t, gatewayTel, "keycloak_requests", attribute.String("kind", "uma")), "Keycloak is not asked")
	})

	t.Run("decision budget", func(t *testing.T) {
		cfg := gatewayConfig(kc)
		cfg.Authorization.DecisionBurst = 2
		limited, tel := start(t, cfg)
		ctx, err := authenticate(limited, headers["hub-writer"])
		require.NoError(t, err)
		require.NoError(t, limited.Authorize(ctx, hub))
		require.NoError(t, limited.Authorize(ctx, cluster))
		err = limited.Authorize(ctx, teamA)
		require.ErrorIs(t, err, errDecisionBudget)
		require.NotErrorIs(t, err, authz.ErrDenied)
		require.NoError(t, limited.Authorize(ctx, hub), "cached answers are free")
		assert.Equal(t, int64(2), count(t, tel, "keycloak_requests", attribute.String("kind", "uma")))
	})

	t.Run("HTTP client to a protected server", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, err := gateway.Authenticate(r.Context(), r.Header)
			if err != nil {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			if err := gateway.Authorize(ctx, teamA); err != nil {
				w.WriteHeader(http.StatusForbidden)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}))
		defer srv.Close()
		for id, status := range map[string]int{"team-a-writer": 204, "no-access": 403, "other-audience": 401} {
			rt, err := clients[id].RoundTripper(http.DefaultTransport)
			require.NoError(t, err)
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL, http.NoBody)
			require.NoError(t, err)
			resp, err := rt.RoundTrip(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			assert.Equal(t, status, resp.StatusCode, id)
		}
	})

	t.Run("Keycloak requests for 10,000 requests from 100 tokens over 10 projects", func(t *testing.T) {
		// 100 distinct client-credentials tokens of hub-writer, fetched directly.
		cc := clientcredentials.Config{
			ClientID: "hub-writer", ClientSecret: kc.Secret("hub-writer"),
			TokenURL: kc.TokenURL(),
		}
		tokens := make([]map[string][]string, 100)
		for i := range tokens {
			tok, err := cc.Token(context.Background())
			require.NoError(t, err)
			tokens[i] = map[string][]string{"authorization": {"Bearer " + tok.AccessToken}}
		}
		projects := make([]string, 10)
		for i := range projects {
			projects[i] = topology.ProjectResource("moc", "nerc-ocp-prod", "team-"+string(rune('a'+i)))
		}
		cfg := gatewayConfig(kc)
		cfg.Authorization.MaxDecisionsPerMinute, cfg.Authorization.DecisionBurst = 10_000, 10_000 // one caller, 1000 questions
		fresh, tel := start(t, cfg)
		for i := range 10_000 {
			ctx, err := fresh.Authenticate(context.Background(), tokens[i%len(tokens)])
			require.NoError(t, err)
			require.NoError(t, fresh.Authorize(ctx, projects[(i/len(tokens))%len(projects)]))
		}
		total := count(t, tel, "keycloak_requests")
		t.Logf("Keycloak requests for 10,000 authorized requests (100 tokens x 10 projects): %d "+
			"(discovery %d, jwks %d, uma %d)", total,
			count(t, tel, "keycloak_requests", attribute.String("kind", "discovery")),
			count(t, tel, "keycloak_requests", attribute.String("kind", "jwks")),
			count(t, tel, "keycloak_requests", attribute.String("kind", "uma")))
		assert.Equal(t, int64(1000), count(t, tel, "keycloak_requests", attribute.String("kind", "uma")),
			"one decision per (token, project)")
		assert.Equal(t, int64(1002), total, "plus one discovery document and one key set")
	})

	t.Run("Alertmanager receiver end to end", func(t *testing.T) {
		// The receiver as the gateway runs it: auth and authorizer both this
		// extension; the sender uses the client side over HTTP.
		gatewayID := component.MustNewIDWithName("keycloakauth", "gateway")
		factory := alertmanagerreceiver.NewFactory()
		cfg := factory.CreateDefaultConfig()
		endpoint := "127.0.0.1:" + testpeers.FreePort(t)
		require.NoError(t, confmap.NewFromStringMap(map[string]any{
			"endpoint": endpoint, "hub": "moc", "authorizer": gatewayID.String(),
			"auth": map[string]any{"authenticator": gatewayID.String()},
		}).Unmarshal(cfg))
		sink := new(consumertest.TracesSink)
		rcv, err := factory.CreateTraces(context.Background(), receivertest.NewNopSettings(factory.Type()), cfg, sink)
		require.NoError(t, err)
		require.NoError(t, rcv.Start(context.Background(), hostWith{gatewayID: gateway}))
		defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()

		post := func(sender string, namespaces ...string) int {
			t.Helper()
			var alerts []map[string]any
			for i, ns := range namespaces {
				alerts = append(alerts, map[string]any{
					"status": "firing", "startsAt": "2026-11-02T09:00:00Z", "fingerprint": fmt.Sprintf("%016x", i+1),
					"labels": map[string]string{
						"alertname": "GPUInUse", "cluster": "nerc-ocp-prod", "Hostname": "wrk-10",
						"UUID": fmt.Sprintf("GPU-%d", i), "exported_namespace": ns, "exported_pod": "train-0",
					},
				})
			}
			body, err := json.Marshal(map[string]any{"version": "4", "status": "firing", "receiver": "ai-telemetry", "alerts": alerts})
			require.NoError(t, err)
			rt := http.DefaultTransport
			if sender != "" {
				rt, err = clients[sender].RoundTripper(http.DefaultTransport)
				require.NoError(t, err)
			}
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://"+endpoint+"/alerts", bytes.NewReader(body))
			require.NoError(t, err)
			resp, err := rt.RoundTrip(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			return resp.StatusCode
		}
		assert.Equal(t, http.StatusUnauthorized, post("", "team-a"), "no token")
		assert.Equal(t, http.StatusForbidden, post("no-access", "team-a"), "no permission on any project")
		assert.Equal(t, 0, sink.SpanCount())
		assert.Equal(t, http.StatusOK, post("team-a-writer", "team-a", "team-b"), "team-b's alert is dropped")
		assert.Equal(t, 1, sink.SpanCount())
		assert.Equal(t, http.StatusOK, post("hub-writer", "team-a", "team-b"))
		assert.Equal(t, 2, sink.SpanCount(), "team-a's alert was already emitted; team-b's is new")
	})

	// A token obtained but never shown to the gateway, for the outage.
	unseen, err := tokenOf(t, mustStart(t, clientConfig(kc, "team-a-writer")))
	require.NoError(t, err)

	t.Run("Keycloak down", func(t *testing.T) {
		kc.Stop()
		_, err := authenticate(gateway, headers["team-a-writer"])
		require.NoError(t, err, "a cached token still passes")
		require.NoError(t, gateway.Authorize(contexts["team-a-writer"], teamA), "a cached decision still holds")
		err = gateway.Authorize(contexts["team-a-writer"], cluster)
		require.ErrorIs(t, err, errNoDecision, "an uncached decision fails closed")

		ctx, err := authenticate(gateway, unseen)
		require.NoError(t, err, "a new token signed with a cached key is validated locally")
		require.ErrorIs(t, gateway.Authorize(ctx, teamA), errNoDecision, "but nothing is authorized without Keycloak")

		forged := "Bearer " + signWith(t, jose.RS256, mustRSAKey(t), "unknown-kid", map[string]any{
			"iss": gateway.cfg.expectedIssuer(), "aud": "ai-telemetry-gateway", "exp": time.Now().Add(time.Minute).Unix(),
		})
		time.Sleep(gateway.cfg.Server.JWKSMinRefetchInterval) // so the unknown kid tries Keycloak
		_, err = authenticate(gateway, forged)
		require.ErrorIs(t, err, errUnknownKey, "a token with a key Keycloak cannot confirm fails closed")

		_, err = tokenOf(t, mustStart(t, clientConfig(kc, "hub-writer")))
		require.Error(t, err, "no new client token while Keycloak is down")
	})

	t.Run("recovery after restart", func(t *testing.T) {
		kc.Start() // a fresh realm: new signing keys, as after a key rotation
		fresh, err := tokenOf(t, mustStart(t, clientConfig(kc, "team-a-writer")))
		require.NoError(t, err)
		ctx, err := authenticate(gateway, fresh)
		require.NoError(t, err, "the new key is fetched on first sight of its kid")
		require.NoError(t, gateway.Authorize(ctx, teamA))
		require.ErrorIs(t, gateway.Authorize(ctx, teamB), authz.ErrDenied)
		_, err = authenticate(gateway, headers["team-a-writer"])
		require.ErrorIs(t, err, errUnknownKey, "a cached token whose key Keycloak no longer publishes is refused")
	})
}

func mustStart(t *testing.T, cfg *Config) *keycloakAuth {
	e, _ := start(t, cfg)
	return e
}

func mustRSAKey(t *testing.T) *rsa.PrivateKey {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	return key
}
