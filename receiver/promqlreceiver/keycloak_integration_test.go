//go:build integration

package promqlreceiver

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/otel/attribute"
	"go.yaml.in/yaml/v3"

	"github.com/nerc-project/ai-telemetry-collector/extension/keycloakauth"
	"github.com/nerc-project/ai-telemetry-collector/internal/testpeers"
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

// envRef is a ${env:NAME} or ${env:NAME:-default} reference of a collector config.
var envRef = regexp.MustCompile(`\$\{env:([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

// shippedGateway is configs/gateway.yaml's promql receiver and the
// keycloakauth/prometheus extension it authenticates with, ${env:...}
// resolved from env (else their defaults). tls goes (Keycloak and the
// proxy listen on loopback http here; the CA bundle path is the image's)
// and so does storage (the harness keeps the cursors in memory).
func shippedGateway(t *testing.T, env map[string]string) (promql, auth map[string]any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "configs", "gateway.yaml"))
	require.NoError(t, err)
	resolved := envRef.ReplaceAllStringFunc(string(raw), func(m string) string {
		sub := envRef.FindStringSubmatch(m)
		if v, ok := env[sub[1]]; ok {
			return v
		}
		return strings.TrimPrefix(sub[2], ":-")
	})
	var cfg struct {
		Receivers  map[string]map[string]any `yaml:"receivers"`
		Extensions map[string]map[string]any `yaml:"extensions"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(resolved), &cfg))
	promql, auth = cfg.Receivers["promql"], cfg.Extensions["keycloakauth/prometheus"]
	require.NotNil(t, promql, "configs/gateway.yaml has a promql receiver")
	require.NotNil(t, auth, "configs/gateway.yaml has keycloakauth/prometheus")
	require.Equal(t, "keycloakauth/prometheus", get(promql, "auth", "authenticator"), "the receiver presents keycloakauth/prometheus' token")
	delete(promql, "tls")
	delete(promql, "storage")
	delete(auth, "tls")
	return promql, auth
}

func get(m map[string]any, path ...string) any {
	var v any = m
	for _, k := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

// samePoints compares emitted points with the expected ones, reporting a
// few differences rather than both sets whole.
func samePoints(t *testing.T, want, got map[string]float64, msg string) {
	t.Helper()
	var diffs []string
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			diffs = append(diffs, fmt.Sprintf("want %s=%v, got %v (emitted: %v)", k, v, g, ok))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, "unexpected "+k)
		}
	}
	if len(diffs) > 0 {
		slices.Sort(diffs)
		t.Errorf("%s: %d points expected, %d emitted, %d differences, e.g.:\n%s",
			msg, len(want), len(got), len(diffs), strings.Join(diffs[:min(3, len(diffs))], "\n"))
	}
}

// proxyClient is the test realm's client of prom-keycloak-proxy: its own
// resource server (HUB, HUB-moc, HUB-moc-CLUSTER-nerc-ocp-prod and -test),
// granting ai-telemetry-gateway and hub-writer GET on nerc-ocp-prod only.
const proxyClient = "prom-keycloak-proxy"

// TestRealKeycloakProxy: the receiver configured as configs/gateway.yaml
// ships it (the gateway's client ai-telemetry-gateway, its token requested
// with the scopes shipped, the shipped queries and schedule) pulls from a
// real Prometheus through a double of prom-keycloak-proxy that asks the real
// Keycloak what the real proxy asks: introspection as the proxy's client,
// userinfo with the caller's token, UMA on the proxy's resources.
func TestRealKeycloakProxy(t *testing.T) {
	kc := testpeers.StartKeycloak(t, testpeers.KeycloakOptions{RealmFile: "../../extension/keycloakauth/testdata/realm-nerc.json"})
	t0 := historyStart()
	prod, test := fixtureSeries(t, "nerc-ocp-prod"), fixtureSeries(t, "nerc-ocp-test")
	prom := startPrometheus(t, append(append([]series{}, prod...), test...), t0, historySamples, "", nil)
	// Between samples; with the shipped delay (2m) a run at at(k) reads up to sample k-1.
	at := func(k int) time.Time { return t0.Add(time.Duration(k)*5*time.Minute + 30*time.Second) }
	proxy := startKeycloakProxy(t, kc, proxyClient, hub, prom.url)

	// run builds the receiver from the shipped sections, changed by edit.
	run := func(t *testing.T, edit func(promql, auth map[string]any)) (*harness, *consumertest.MetricsSink) {
		t.Helper()
		promqlConf, authConf := shippedGateway(t, map[string]string{
			"KEYCLOAK_URL": kc.URL(), "PROM_PROXY_URL": proxy.URL, "PROM_PROXY_CLIENT_SECRET": kc.Secret("gateway"),
		})
		if edit != nil {
			edit(promqlConf, authConf)
		}
		exts := map[component.ID]component.Component{}
		if authConf != nil {
			exts[component.MustNewIDWithName("keycloakauth", "prometheus")] = startKeycloakAuth(t, authConf)
		}
		cfg := createDefaultConfig().(*Config)
		require.NoError(t, confmap.NewFromStringMap(promqlConf).Unmarshal(cfg))
		sink := new(consumertest.MetricsSink)
		h := newHarness(t, cfg, sink, extensionsHost{Host: componenttest.NewNopHost(), exts: exts})
		t.Cleanup(h.shutdown)
		return h, sink
	}
	prodQ, testQ := attribute.String("query", "dcgm/nerc-ocp-prod"), attribute.String("query", "dcgm/nerc-ocp-test")
	const perCluster = 5 // the shipped queries
	const queries = 2 * perCluster
	noSecrets := func(t *testing.T, h *harness) {
		t.Helper()
		for _, e := range h.logs.All() {
			for _, v := range e.ContextMap() {
				for _, c := range []string{"gateway", "hub-writer", proxyClient} {
					assert.NotContains(t, fmt.Sprint(v), kc.Secret(c), "no secret in logs")
				}
			}
		}
	}

	t.Run("shipped settings: nerc-ocp-prod flows, nerc-ocp-test is denied", func(t *testing.T) {
		h, sink := run(t, nil)
		h.runAll(at(12))
		h.runAll(at(13))
		samePoints(t, expectPoints(prod, t0, 11, 12), gotPoints(t, pointsOf(sink.AllMetrics())),
			"every sample of nerc-ocp-prod once, with its labels, value and own timestamp")
		assert.Equal(t, int64(2*len(prod)), h.count("points", prodQ))
		assert.Equal(t, int64(0), h.count("query_failures", prodQ))
		assert.Equal(t, int64(2), h.count("query_failures", testQ, attribute.String("reason", "denied")))
		assert.Equal(t, int64(queries), h.count("query_failures", attribute.String("reason", "denied")), "every nerc-ocp-test query, twice")
		assert.Equal(t, int64(queries), h.count("queries"), "every nerc-ocp-prod query, twice")
		assert.Equal(t, int64(0), h.count("series_dropped"), "Prometheus' answers carry the cluster asked for")
		noSecrets(t, h)
		if refused := proxy.refused(); t.Failed() && len(refused) > 0 {
			t.Logf("the proxy refused, first: %s", refused[0])
		}
	})

	t.Run("without the openid scope: userinfo refuses the token", func(t *testing.T) {
		before := len(proxy.refused())
		h, _ := run(t, func(_, auth map[string]any) { delete(auth["client"].(map[string]any), "scopes") })
		h.runAll(at(12))
		assert.Equal(t, int64(queries), h.count("query_failures", attribute.String("reason", "unauthorized")))
		assert.Equal(t, int64(0), h.count("points"))
		refused := proxy.refused()[before:]
		require.NotEmpty(t, refused)
		t.Logf("the proxy's refusal: %s", refused[0])
		for _, r := range refused {
			assert.Contains(t, r, "401 userinfo:")
			assert.Contains(t, r, "insufficient_scope")
		}
	})

	t.Run("without the audience mapper: introspection says inactive", func(t *testing.T) {
		// hub-writer is granted what ai-telemetry-gateway is on the proxy's
		// resource server, and requests the same scopes, but its tokens are
		// for ai-telemetry-gateway only.
		before := len(proxy.refused())
		h, _ := run(t, func(_, auth map[string]any) {
			client := auth["client"].(map[string]any)
			client["client_id"], client["client_secret"] = "hub-writer", kc.Secret("hub-writer")
		})
		h.runAll(at(12))
		assert.Equal(t, int64(queries), h.count("query_failures", attribute.String("reason", "unauthorized")))
		assert.Equal(t, int64(0), h.count("points"))
		refused := proxy.refused()[before:]
		require.NotEmpty(t, refused)
		t.Logf("the proxy's refusal: %s", refused[0])
		for _, r := range refused {
			assert.Contains(t, r, "401 introspection: token not active for "+proxyClient)
		}
	})

	t.Run("no token", func(t *testing.T) {
		h, _ := run(t, func(promql, _ map[string]any) { delete(promql, "auth") })
		h.runAll(at(12))
		assert.Equal(t, int64(queries), h.count("query_failures", attribute.String("reason", "unauthorized")))
	})

	t.Run("upstream outage: HTTP 200 with an empty body, counted; no hole, no duplicate after", func(t *testing.T) {
		h, sink := run(t, nil)
		h.runAll(at(12))
		down := httptest.NewServer(http.NotFoundHandler())
		down.Close()
		proxy.setUpstream(down.URL)
		h.runAll(at(13))
		h.runAll(at(14))
		proxy.setUpstream(prom.url)
		h.runAll(at(15))
		assert.Equal(t, int64(2*perCluster), h.count("query_failures", attribute.String("reason", "decode_error")),
			"each nerc-ocp-prod query in each of the two runs of the outage")
		samePoints(t, expectPoints(prod, t0, 11, 12, 13, 14), gotPoints(t, pointsOf(sink.AllMetrics())), "samples 11 to 14")
	})

	t.Run("a gate that leaks: a negated matcher authorized against nerc-ocp-prod returns nerc-ocp-test, all dropped", func(t *testing.T) {
		h, _ := run(t, nil)
		// The startup check refuses such a query; set it as a leaking gate
		// would answer it, to see the receiver's second line of defense.
		for i, q := range h.rcv.queries {
			if q.id == "dcgm/nerc-ocp-prod" {
				h.rcv.queries[i].promql = `{__name__=~"DCGM_FI_.*",cluster!="nerc-ocp-prod"}`
			}
		}
		h.runAll(at(12))
		assert.Equal(t, int64(0), h.count("query_failures", prodQ), "the proxy authorized it")
		assert.Equal(t, int64(len(test)), h.count("series_dropped", prodQ, attribute.String("reason", "other_cluster")),
			"every nerc-ocp-test series the proxy let through")
		assert.Equal(t, int64(0), h.count("points", prodQ))
	})
}
