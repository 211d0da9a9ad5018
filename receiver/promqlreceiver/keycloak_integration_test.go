//go:build integration

package promqlreceiver

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/otel/attribute"

	"github.com/nerc-project/ai-telemetry-collector/extension/keycloakauth"
	"github.com/nerc-project/ai-telemetry-collector/internal/authz"
	"github.com/nerc-project/ai-telemetry-collector/internal/testpeers"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

const hub = "moc"

// startKeycloakAuth creates and starts a keycloakauth extension from its
// configuration as a collector file spells it.
func startKeycloakAuth(t *testing.T, conf map[string]any) extension.Extension {
	t.Helper()
	f := keycloakauth.NewFactory()
	cfg := f.CreateDefaultConfig()
	require.NoError(t, confmap.NewFromStringMap(conf).Unmarshal(cfg))
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	return ext
}

// authorizingProxy behaves like prom-keycloak-proxy in front of Prometheus:
// a valid Keycloak bearer token is required (401), and the caller must hold
// GET on HUB-{hub}-CLUSTER-{cluster} for the cluster matcher of every
// selector in the query, or on HUB-{hub} for a selector without one (403).
// Tokens are validated and decisions asked through keycloakauth's server side.
func authorizingProxy(t *testing.T, gateway extension.Extension, upstream string) *httptest.Server {
	t.Helper()
	target, err := url.Parse(upstream)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(target)
	authn := gateway.(extensionauth.Server)
	authzr := gateway.(authz.Authorizer)
	promql := parser.NewParser(parser.Options{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" && r.URL.Path != "/api/v1/query_range" {
			http.NotFound(w, r)
			return
		}
		ctx, err := authn.Authenticate(r.Context(), r.Header)
		if err != nil {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		expr, err := promql.ParseExpr(r.URL.Query().Get("query"))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": "bad_data", "error": err.Error()})
			return
		}
		for _, resource := range requiredResources(expr) {
			if err := authzr.Authorize(ctx, resource); err != nil {
				http.Error(w, "Forbidden: no GET on "+resource, http.StatusForbidden)
				return
			}
		}
		r.Header.Del("Authorization")
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func requiredResources(expr parser.Expr) []string {
	seen := map[string]bool{}
	var out []string
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		resource := topology.HubResource(hub)
		for _, m := range vs.LabelMatchers {
			if m.Name == "cluster" && m.Type == labels.MatchEqual {
				resource = topology.ClusterResource(hub, m.Value)
			}
		}
		if !seen[resource] {
			seen[resource] = true
			out = append(out, resource)
		}
		return nil
	})
	return out
}

// extensionsHost offers the named extensions.
type extensionsHost struct {
	component.Host
	exts map[component.ID]component.Component
}

func (h extensionsHost) GetExtensions() map[component.ID]component.Component { return h.exts }

// TestRealKeycloakProxy: the receiver presents keycloakauth client
// credentials from the real Keycloak to a proxy that authorizes per cluster
// through the same Keycloak; the realm grants hub-writer the hub and
// nerc-ocp-prod but nothing on nerc-ocp-test, so nerc-ocp-test is denied and
// counted while nerc-ocp-prod flows.
// resourceServer is the test realm's client holding the authorization settings.
const resourceServer = "ai-telemetry-gateway"

func TestRealKeycloakProxy(t *testing.T) {
	kc := testpeers.StartKeycloak(t, testpeers.KeycloakOptions{RealmFile: "../../extension/keycloakauth/testdata/realm-nerc.json"})
	t0 := historyStart()
	prod, test := fixtureSeries(t, "nerc-ocp-prod"), fixtureSeries(t, "nerc-ocp-test")
	prom := startPrometheus(t, append(append([]series{}, prod...), test...), t0, historySamples, "", nil)
	at := func(k int) time.Time { return t0.Add(time.Duration(k)*5*time.Minute + 30*time.Second) }

	gateway := startKeycloakAuth(t, map[string]any{
		"server_url":    kc.URL(),
		"server":        map[string]any{"audiences": []string{resourceServer}},
		"authorization": map[string]any{"mode": "resource", "resource_server": resourceServer, "scope": "GET"},
	})
	proxy := authorizingProxy(t, gateway, prom.url)

	run := func(t *testing.T, clientID string) *harness {
		t.Helper()
		exts := map[component.ID]component.Component{}
		cfg := testConfig(proxy.URL,
			QueryConfig{Name: "dcgm", Query: `{__name__=~"DCGM_FI_.*",cluster="{{.Cluster}}"}`, RawSamples: true},
			QueryConfig{Name: "gpus", Query: `count(DCGM_FI_DEV_GPU_UTIL)`, Unscoped: true})
		cfg.Clusters = []string{"nerc-ocp-prod", "nerc-ocp-test"}
		cfg.Interval = 5 * time.Minute
		if clientID != "" {
			id := component.MustNewIDWithName("keycloakauth", "promql")
			exts[id] = startKeycloakAuth(t, map[string]any{
				"server_url": kc.URL(),
				"client":     map[string]any{"client_id": clientID, "client_secret": kc.Secret(clientID)},
			})
			cfg.Auth = configoptional.Some(configauth.Config{AuthenticatorID: id})
		}
		sink := new(consumertest.MetricsSink)
		h := newHarness(t, cfg, sink, extensionsHost{Host: componenttest.NewNopHost(), exts: exts})
		t.Cleanup(h.shutdown)
		h.runAll(at(12))
		h.runAll(at(13))
		return h
	}
	prodQ, testQ, hubQ := attribute.String("query", "dcgm/nerc-ocp-prod"), attribute.String("query", "dcgm/nerc-ocp-test"), attribute.String("query", "gpus")

	t.Run("hub-writer: nerc-ocp-prod flows, nerc-ocp-test is denied", func(t *testing.T) {
		h := run(t, "hub-writer")
		assert.Equal(t, int64(2*len(prod)), h.count("points", prodQ), "two runs of every series")
		assert.Equal(t, int64(0), h.count("query_failures", prodQ))
		assert.Equal(t, int64(2), h.count("query_failures", testQ, attribute.String("reason", "denied")))
		assert.Equal(t, int64(0), h.count("points", testQ))
		assert.Equal(t, int64(2), h.count("points", hubQ), "the hub-wide query: hub-writer holds HUB-moc")
		failing := h.logs.FilterMessage("PromQL query failing").All()
		require.Len(t, failing, 1, "logged once per state change")
		assert.Equal(t, "dcgm/nerc-ocp-test", failing[0].ContextMap()["query"])
		assert.Contains(t, failing[0].ContextMap()["error"], "HUB-moc-CLUSTER-nerc-ocp-test")
		for _, e := range h.logs.All() {
			for _, v := range e.ContextMap() {
				assert.NotContains(t, v, kc.Secret("hub-writer"), "no secret in logs")
			}
		}
	})

	t.Run("team-a-writer: no cluster, no hub", func(t *testing.T) {
		h := run(t, "team-a-writer")
		assert.Equal(t, int64(0), h.count("points"))
		for _, q := range []attribute.KeyValue{prodQ, testQ, hubQ} {
			assert.Equal(t, int64(2), h.count("query_failures", q, attribute.String("reason", "denied")), q.Value.AsString())
		}
	})

	t.Run("no token", func(t *testing.T) {
		h := run(t, "")
		assert.Equal(t, int64(6), h.count("query_failures", attribute.String("reason", "unauthorized")))
	})
}
