//go:build attack

package attack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
)

const (
	attrCluster   = "k8s.cluster.name"
	attrNamespace = "k8s.namespace.name"
	attrNode      = "k8s.node.name"
	attrHub       = "aitelemetry.hub.name"
	attrResource  = "aitelemetry.keycloak.resource"
	teamAResource = "HUB-moc-CLUSTER-nerc-ocp-prod-PROJECT-team-a"
)

// suite records what was sent: controls must arrive, attacks must not.
type suite struct {
	*gateway
	controls []string
	attacks  []string
}

func (s *suite) control(name string) string { s.controls = append(s.controls, name); return name }
func (s *suite) attack(name string) string  { s.attacks = append(s.attacks, name); return name }

func TestAttacks(t *testing.T) {
	s := &suite{gateway: startGateway(t)}
	writer := s.token(teamAWriter)

	t.Run("class 1: separator injection and non-Kubernetes names in OTLP", func(t *testing.T) {
		// Each variant tries to have Keycloak decide on team-a's resource
		// (it splits a permission on '#') while the data is stored under
		// another project, or smuggles a name Kubernetes never allows.
		variants := []struct {
			name     string
			resource []kv
			record   []kv
		}{
			{"cluster carries team-a's resource and a #", []kv{{attrCluster, "nerc-ocp-prod-PROJECT-team-a#GET#"}, {attrNamespace, "team-b"}}, nil},
			{"cluster ends in #GET", []kv{{attrCluster, "nerc-ocp-prod-PROJECT-team-a#GET"}, {attrNamespace, "team-b"}}, nil},
			{"scopes smuggled with a comma", []kv{{attrCluster, "nerc-ocp-prod-PROJECT-team-a#GET,POST#"}, {attrNamespace, "team-b"}}, nil},
			{"-PROJECT- folded into the cluster", []kv{{attrCluster, "nerc-ocp-prod-PROJECT-team-a"}, {attrNamespace, "x"}}, nil},
			{"namespace carries a #", []kv{{attrCluster, cluster}, {attrNamespace, "team-a#GET#team-b"}}, nil},
			{"upper-case namespace", []kv{{attrCluster, cluster}, {attrNamespace, "TEAM-A"}}, nil},
			{"control character in the namespace", []kv{{attrCluster, cluster}, {attrNamespace, "team-a\nteam-b"}}, nil},
			{"space in the cluster", []kv{{attrCluster, "nerc-ocp-prod team-a"}, {attrNamespace, "team-a"}}, nil},
			{"hub with a #", []kv{{attrCluster, cluster}, {attrNamespace, "team-a"}, {attrHub, "moc#GET"}}, nil},
			{"record namespace with a #", []kv{{attrCluster, cluster}, {attrNamespace, "team-a"}}, []kv{{attrNamespace, "team-a#GET#team-b"}}},
			{"record node with a comma", []kv{{attrCluster, cluster}, {attrNamespace, "team-a"}}, []kv{{attrNode, "wrk-1,GET"}}},
		}
		i := 0
		for _, v := range variants {
			for _, signal := range []string{"metrics", "traces", "logs"} {
				encoding := []string{"json", "protobuf"}[i%2]
				i++
				name := s.attack(fmt.Sprintf("attack/1/%s/%s/%s", v.name, signal, encoding))
				status, msg := s.sendOTLP(signal, encoding, writer, otlpJSON(signal, name, v.resource, v.record))
				// on_denied: drop answers success for what it drops; the
				// files decide.
				assert.Contains(t, []int{http.StatusOK, http.StatusBadRequest, http.StatusForbidden}, status, "%s: %s", name, msg)
			}
		}
		for _, signal := range []string{"metrics", "traces", "logs"} {
			name := s.control("control/1/" + signal)
			status, msg := s.sendOTLP(signal, "json", writer, otlpJSON(signal, name, []kv{{attrCluster, cluster}, {attrNamespace, "team-a"}}, nil))
			require.Equal(t, http.StatusOK, status, "%s: %s", name, msg)
		}
	})

	t.Run("class 1: separator injection in alert labels", func(t *testing.T) {
		variants := []map[string]string{
			{"cluster": "nerc-ocp-prod-PROJECT-team-a#GET#", "namespace": "team-b"},
			{"cluster": "nerc-ocp-prod-PROJECT-team-a#GET", "namespace": "team-b"},
			{"cluster": cluster, "namespace": "team-a#GET#team-b"},
			{"cluster": cluster, "namespace": "TEAM-B"},
			{"cluster": cluster, "namespace": "team-b"},
			{"cluster": cluster, "namespace": "team-a", "node": "wrk 1"},
			{"cluster": cluster, "namespace": "team-a", "gpu": "0#GET"},
		}
		for i, labels := range variants {
			pod := fmt.Sprintf("attack-1-alert-%d", i)
			labels["alertname"], labels["pod"], labels["UUID"] = "GPUInUse", pod, "GPU-attack-"+pod
			if labels["node"] == "" {
				labels["node"] = "wrk-1"
			}
			s.attack("gpu.usage.start/" + pod)
			status, msg := s.post(s.webhook, "application/json", writer, alertJSON(labels, randomFingerprint(t), time.Now()))
			assert.Contains(t, []int{http.StatusBadRequest, http.StatusForbidden}, status, "%v: %s", labels, msg)
		}
		pod := "control-1-alert"
		s.control("gpu.usage.start/" + pod)
		status, msg := s.post(s.webhook, "application/json", writer, alertJSON(map[string]string{
			"alertname": "GPUInUse", "cluster": cluster, "namespace": "team-a", "node": "wrk-1", "pod": pod, "UUID": "GPU-control",
		}, randomFingerprint(t), time.Now()))
		require.Equal(t, http.StatusOK, status, msg)
	})

	t.Run("class 6: session pre-emption", func(t *testing.T) {
		// The writer posts, for its own project, an alert with the
		// fingerprint and startsAt of team-b's session before team-b's real
		// one arrives (from hub-writer, as the real Alertmanager): team-b's
		// session must still be recorded and emitted.
		fingerprint, startsAt := randomFingerprint(t), time.Now().Add(-time.Minute)
		pod := "attack-6-preempt"
		s.control("gpu.usage.start/" + pod) // team-a's own alert: allowed, stored under team-a
		status, msg := s.post(s.webhook, "application/json", writer, alertJSON(map[string]string{
			"alertname": "GPUInUse", "cluster": cluster, "namespace": "team-a", "node": "wrk-1", "pod": pod, "UUID": "GPU-preempt",
		}, fingerprint, startsAt))
		require.Equal(t, http.StatusOK, status, msg)
		pod = "control-6-team-b"
		s.control("gpu.usage.start/" + pod)
		status, msg = s.post(s.webhook, "application/json", s.token(hubWriter), alertJSON(map[string]string{
			"alertname": "GPUInUse", "cluster": cluster, "namespace": "team-b", "node": "wrk-1", "pod": pod, "UUID": "GPU-preempt",
		}, fingerprint, startsAt))
		require.Equal(t, http.StatusOK, status, msg)
	})

	t.Run("class 7: slow bodies and the memory budget", func(t *testing.T) {
		// Four stalled 1 MiB bodies fill the writer's share (4 MiB of the
		// 8 MiB in flight): its next notification is refused with a
		// retryable 503 before its body is read, another caller is still
		// served, and once read_timeout (5 s here) has cut the stalled
		// bodies the writer is served again.
		for range 4 {
			s.stallBody(writer, 1<<20)
		}
		require.Eventually(t, func() bool { return s.bodyBytesInFlight() >= 4<<20 },
			30*time.Second, 100*time.Millisecond, "the stalled bodies hold their share of the budget")
		body := alertJSON(map[string]string{"alertname": "GPUInUse", "cluster": cluster, "namespace": "team-a", "node": "wrk-1", "pod": "control-7-a", "UUID": "GPU-7"},
			randomFingerprint(t), time.Now())
		status, msg := s.post(s.webhook, "application/json", writer, body)
		assert.Equal(t, http.StatusServiceUnavailable, status, "the caller's share is held by its stalled bodies: %s", msg)
		pod := "control-7-hub"
		s.control("gpu.usage.start/" + pod)
		status, msg = s.post(s.webhook, "application/json", s.token(hubWriter), alertJSON(map[string]string{
			"alertname": "GPUInUse", "cluster": cluster, "namespace": "team-b", "node": "wrk-1", "pod": pod, "UUID": "GPU-7b",
		}, randomFingerprint(t), time.Now()))
		assert.Equal(t, http.StatusOK, status, "another caller is served: %s", msg)
		s.control("gpu.usage.start/control-7-a")
		require.Eventually(t, func() bool {
			status, _ := s.post(s.webhook, "application/json", writer, body)
			return status == http.StatusOK
		}, time.Minute, time.Second, "read_timeout frees the stalled bodies' share")
	})

	t.Run("class 2: topology attributes given twice", func(t *testing.T) {
		team := func(ns string) kv { return kv{attrNamespace, ns} }
		prod := kv{attrCluster, cluster}
		variants := []struct {
			name     string
			resource []kv
			record   []kv
		}{
			{"namespace team-a then team-b", []kv{prod, team("team-a"), team("team-b")}, nil},
			{"namespace team-b then team-a", []kv{prod, team("team-b"), team("team-a")}, nil},
			{"cluster twice", []kv{prod, team("team-a"), {attrCluster, "nerc-ocp-test"}}, nil},
			{"keycloak resource twice", []kv{prod, team("team-a"), {attrResource, teamAResource}, {attrResource, "HUB-moc-CLUSTER-nerc-ocp-prod-PROJECT-team-b"}}, nil},
			{"record namespace twice", []kv{prod, team("team-a")}, []kv{team("team-a"), team("team-b")}},
		}
		for _, v := range variants {
			for _, signal := range []string{"metrics", "traces", "logs"} {
				for _, encoding := range []string{"json", "protobuf"} {
					name := s.attack(fmt.Sprintf("attack/2/%s/%s/%s", v.name, signal, encoding))
					status, msg := s.sendOTLP(signal, encoding, writer, otlpJSON(signal, name, v.resource, v.record))
					assert.Contains(t, []int{http.StatusOK, http.StatusBadRequest, http.StatusForbidden}, status, "%s: %s", name, msg)
				}
			}
		}
		// Over gRPC too: the OTLP receiver's gRPC decoder keeps repeated keys as well.
		name := s.attack("attack/2/namespace twice/metrics/grpc")
		md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(otlpJSON("metrics", name, []kv{prod, team("team-a"), team("team-b")}, nil))
		require.NoError(t, err)
		require.NoError(t, s.exportGRPC(writer, md))
		name = s.control("control/2/metrics/grpc")
		md, err = (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(otlpJSON("metrics", name, []kv{prod, team("team-a")}, nil))
		require.NoError(t, err)
		require.NoError(t, s.exportGRPC(writer, md))
	})

	t.Run("regressions: another project's name, spoofed keycloak resource", func(t *testing.T) {
		for _, v := range []struct {
			name     string
			resource []kv
		}{
			{"team-b directly", []kv{{attrCluster, cluster}, {attrNamespace, "team-b"}}},
			{"team-b labelled with team-a's resource", []kv{{attrCluster, cluster}, {attrNamespace, "team-b"}, {attrResource, teamAResource}}},
			{"cluster-wide data", []kv{{attrCluster, cluster}}},
			{"hub-wide data", nil},
			{"another hub", []kv{{attrCluster, cluster}, {attrNamespace, "team-a"}, {attrHub, "other"}}},
		} {
			name := s.attack("attack/regression/" + v.name)
			status, msg := s.sendOTLP("metrics", "protobuf", writer, otlpJSON("metrics", name, v.resource, nil))
			assert.Contains(t, []int{http.StatusOK, http.StatusForbidden}, status, "%s: %s", name, msg)
		}
	})

	t.Run("class 8: Keycloak amplification", func(t *testing.T) {
		// Names Kubernetes allows but Keycloak does not know: none can be
		// answered from a cache. The writer's budget (30 decisions, then 30 a
		// minute) bounds what Keycloak is asked; beyond it the answer is
		// retryable (503), never an allow.
		const decisions = "otelcol_keycloakauth_authorization_decisions"
		askedBefore := s.counter(decisions, `source="keycloak"`)
		statuses := map[int]int{}
		for r := range 8 {
			var resources []string
			for i := range 10 {
				resources = append(resources, otlpResourceJSON([]kv{{attrCluster, cluster}, {attrNamespace, fmt.Sprintf("unknown-%d-%d-%s", r, i, randomFingerprint(t)[:6])}},
					s.attack(fmt.Sprintf("attack/8/request-%d/resource-%d", r, i))))
			}
			status, msg := s.post(s.otlpHTTP+"/v1/metrics", "application/json", writer,
				[]byte(`{"resourceMetrics":[`+strings.Join(resources, ",")+`]}`))
			statuses[status]++
			t.Logf("request %d: %d %s", r, status, msg)
		}
		asked := s.counter(decisions, `source="keycloak"`) - askedBefore
		assert.LessOrEqual(t, asked, 30.0+5, "Keycloak asked at most the burst (plus the rate over the test's seconds)")
		assert.Positive(t, statuses[http.StatusServiceUnavailable], "beyond the budget: retryable refusals")
		assert.Positive(t, s.counter(decisions, `decision="throttled"`), "throttled decisions counted")
		t.Logf("80 unknown resources in 8 requests: Keycloak asked %.0f times, answers %v", asked, statuses)
	})

	t.Run("class 10: a token whose key left the key set", func(t *testing.T) {
		// Validated and cached, then Keycloak restarts with new signing keys
		// (dev mode imports the realm afresh): once the collector sees the new
		// key set (a token with the new kid makes it refetch), the old token
		// is refused though it has not expired.
		old := s.token(hubWriter)
		name := s.control("control/10/before-rotation")
		status, msg := s.sendOTLP("metrics", "json", old, otlpJSON("metrics", name, []kv{{attrCluster, cluster}, {attrNamespace, "team-b"}}, nil))
		require.Equal(t, http.StatusOK, status, msg)
		s.keycloak.Stop()
		s.keycloak.Start()
		fresh := s.token(hubWriter)
		name = s.control("control/10/new-key")
		require.Eventually(t, func() bool {
			status, _ := s.sendOTLP("metrics", "json", fresh, otlpJSON("metrics", name, []kv{{attrCluster, cluster}, {attrNamespace, "team-b"}}, nil))
			return status == http.StatusOK
		}, time.Minute, 2*time.Second, "a token signed with the new key is accepted")
		name = s.attack("attack/10/old-key")
		status, msg = s.sendOTLP("metrics", "json", old, otlpJSON("metrics", name, []kv{{attrCluster, cluster}, {attrNamespace, "team-b"}}, nil))
		assert.Equal(t, http.StatusUnauthorized, status, "the token of a key Keycloak no longer publishes: %s", msg)
	})

	t.Run("nothing of another project reached the exporters", func(t *testing.T) {
		s.stop()
		stored := s.stored()
		var missing, leaked []string
		for _, c := range s.controls {
			if len(stored[c]) == 0 {
				missing = append(missing, c)
			}
		}
		for _, a := range s.attacks {
			if len(stored[a]) > 0 {
				leaked = append(leaked, fmt.Sprintf("%s (stored under namespace %q)", a, stored[a]))
			}
		}
		for name, namespaces := range stored {
			for _, ns := range namespaces {
				// hub-writer's controls (classes 6, 7, 10) may write team-b.
				if ns != "team-a" && !strings.HasPrefix(name, "control/10/") && !strings.HasPrefix(name, "gpu.usage.start/control-") {
					leaked = append(leaked, fmt.Sprintf("%s under %q", name, ns))
				}
			}
		}
		sort.Strings(leaked)
		if !assert.Empty(t, missing, "controls that should have arrived") {
			var names []string
			for name := range stored {
				names = append(names, name)
			}
			sort.Strings(names)
			t.Logf("stored: %q", names)
		}
		assert.Empty(t, leaked, "attacks that reached the exporters")
		t.Logf("%d attacks refused, %d controls stored", len(s.attacks), len(s.controls))
	})
}

func randomFingerprint(t *testing.T) string {
	b := make([]byte, 8)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// exportGRPC sends metrics over OTLP/gRPC with the bearer token.
func (g *gateway) exportGRPC(token string, md pmetric.Metrics) error {
	conn, err := grpc.NewClient(g.otlpGRPC, grpc.WithTransportCredentials(credentials.NewTLS(g.tlsConfig)))
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	_, err = pmetricotlp.NewGRPCClient(conn).Export(ctx, pmetricotlp.NewExportRequestFromMetrics(md))
	return err
}
