//go:build integration

package alertmanagerreceiver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/nerc-project/ai-telemetry-collector/internal/testpeers"
	"github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver/internal/metadata"
)

// alertmanagerBinary is Debian's prometheus-alertmanager; `make deps` installs it.
func alertmanagerBinary(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("ALERTMANAGER_BINARY"), "prometheus-alertmanager", "alertmanager"} {
		if name == "" {
			continue
		}
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	t.Fatal("Alertmanager is not installed: run `make deps` (Debian package prometheus-alertmanager) or set ALERTMANAGER_BINARY")
	return ""
}

type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitempty"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

func postAlerts(t *testing.T, amURL string, alerts ...amAlert) {
	t.Helper()
	body, err := json.Marshal(alerts)
	require.NoError(t, err)
	resp, err := http.Post(amURL+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// lockedSink lets the test read spans while the receiver writes them.
type lockedSink struct {
	mu   sync.Mutex
	sink consumertest.TracesSink
}

func (s *lockedSink) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (s *lockedSink) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sink.ConsumeTraces(ctx, td)
}

func (s *lockedSink) spans() map[string]ptrace.Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]ptrace.Span{}
	for _, td := range s.sink.AllTraces() {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					key := sp.Name() + "/" + attr(sp.Attributes(), "k8s.namespace.name")
					if _, dup := out[key]; dup {
						key += "/duplicate"
					}
					out[key] = sp
				}
			}
		}
	}
	return out
}

func TestWithRealAlertmanager(t *testing.T) {
	bin := alertmanagerBinary(t)

	// Our receiver, as the collector runs it.
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Hub = "moc"
	cfg.SpanNames = map[string]string{"GPUInUse": "gpu.usage"}
	sink := &lockedSink{}
	r, err := NewFactory().CreateTraces(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, r.Shutdown(context.Background())) }()
	webhook := "http://" + r.(*alertmanagerReceiver).addr + cfg.Path

	// A real Alertmanager routing every alert to it, with short group timers.
	dir := t.TempDir()
	amConfig := fmt.Sprintf(`route:
  receiver: ai-telemetry
  group_by: [alertname, exported_namespace]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: ai-telemetry
    webhook_configs:
      - url: %s
        send_resolved: true
`, webhook)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(amConfig), 0o600))
	amAddr := "127.0.0.1:" + testpeers.FreePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	am := exec.CommandContext(ctx, bin,
		"--config.file="+filepath.Join(dir, "alertmanager.yml"),
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+amAddr,
		"--cluster.listen-address=",
		"--log.level=debug")
	var amLog bytes.Buffer
	am.Stdout, am.Stderr = &amLog, &amLog
	require.NoError(t, am.Start())
	defer func() {
		cancel()
		_ = am.Wait()
		if t.Failed() {
			t.Logf("alertmanager log:\n%s", amLog.String())
		}
	}()
	amURL := "http://" + amAddr
	require.Eventually(t, func() bool {
		resp, err := http.Get(amURL + "/-/ready")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 100*time.Millisecond, "alertmanager did not become ready")

	startsAt := time.Now().Add(-10 * time.Minute).Truncate(time.Second).UTC()
	whole := amAlert{
		Labels:       gpuLabels("team-a", "train-0", ""),
		Annotations:  map[string]string{"summary": "GPU in use"},
		StartsAt:     startsAt,
		EndsAt:       time.Now().Add(time.Hour),
		GeneratorURL: "http://prometheus.example/graph",
	}
	slice := whole
	slice.Labels = gpuLabels("team-b", "nb-0", "3")
	postAlerts(t, amURL, whole, slice)

	require.Eventually(t, func() bool { return len(sink.spans()) == 2 }, 30*time.Second, 100*time.Millisecond, "start markers")
	spans := sink.spans()
	require.Contains(t, spans, "gpu.usage.start/team-a")
	require.Contains(t, spans, "gpu.usage.start/team-b")
	assert.Equal(t, startsAt, spans["gpu.usage.start/team-a"].StartTimestamp().AsTime())

	// Posting the same alerts again (Prometheus re-sends every evaluation) adds nothing.
	postAlerts(t, amURL, whole, slice)
	time.Sleep(3 * time.Second)
	require.Len(t, sink.spans(), 2)

	// Resolve both.
	endsAt := time.Now().Truncate(time.Second).UTC()
	whole.EndsAt, slice.EndsAt = endsAt, endsAt
	postAlerts(t, amURL, whole, slice)
	require.Eventually(t, func() bool { return len(sink.spans()) == 4 }, 30*time.Second, 100*time.Millisecond, "session spans")
	time.Sleep(3 * time.Second) // time for any duplicate to arrive
	spans = sink.spans()
	require.Len(t, spans, 4, "no duplicates")

	for ns, wantHwID := range map[string]string{
		"team-a": "GPU-603a8873-0edd-c157-ce48-2078e8b1a935",
		"team-b": "GPU-603a8873-0edd-c157-ce48-2078e8b1a935/3",
	} {
		session, start := spans["gpu.usage/"+ns], spans["gpu.usage.start/"+ns]
		assert.Equal(t, startsAt, session.StartTimestamp().AsTime(), ns)
		assert.Equal(t, endsAt, session.EndTimestamp().AsTime(), ns)
		assert.Equal(t, start.TraceID(), session.TraceID(), ns)
		assert.Equal(t, start.ParentSpanID(), session.SpanID(), ns)
		a := session.Attributes()
		assert.Equal(t, wantHwID, attr(a, "hw.id"), ns)
		assert.Equal(t, "HUB-moc-CLUSTER-nerc-ocp-prod-PROJECT-"+ns, attr(a, "aitelemetry.keycloak.resource"))
		assert.Equal(t, "resolved", attr(a, "alertmanager.alert.status"))
		assert.Equal(t, "ai-telemetry", attr(a, "alertmanager.receiver"))
		assert.Equal(t, "http://prometheus.example/graph", attr(a, "alertmanager.alert.generator_url"))
		assert.Equal(t, "GPU in use", attr(a, "alertmanager.annotation.summary"))
		assert.Len(t, attr(a, "alertmanager.alert.fingerprint"), 16, "Alertmanager's own fingerprint")
		// The IDs are the ones any replica derives from Alertmanager's fingerprint and startsAt
		// and the resource the alert's labels compute to.
		want := deriveSessionIDs(attr(a, "alertmanager.alert.fingerprint"), startsAt.UnixNano(), attr(a, "aitelemetry.keycloak.resource"))
		assert.Equal(t, want.session, session.SpanID())
	}
}
