//go:build smoke

// Package smoke starts the built distribution the way `make run` does and checks
// that scraped GPU metrics reach the output files. Run with `make smoke`, which
// builds the binary and sets OTELCOL_BINARY.
package smoke

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/nerc-project/ai-telemetry-collector/internal/dcgmreplay"
	"github.com/nerc-project/ai-telemetry-collector/internal/testpeers"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

const recording = "../../testdata/dcgm/gpu-a100-node-1.prom"

// smokeCluster is not configs/local.yaml's default, so the test sees the
// setting reach the data, and not nerc-ocp-prod, the cluster of team-b's
// metadata entry (which must then stay unmatched).
const smokeCluster = "lab-cluster"

func binary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("OTELCOL_BINARY")
	require.NotEmpty(t, bin, "OTELCOL_BINARY must name the built collector (make smoke sets it)")
	_, err := os.Stat(bin)
	require.NoError(t, err, "the collector binary must be built first (make build)")
	return bin
}

// syncBuffer collects the collector's output while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// scrapedDCGM decodes metrics.jsonl and returns, per DCGM metric name, the data
// points of the first scrape that reached the file (a scrape's points share one
// timestamp, whatever the batching).
func scrapedDCGM(t *testing.T, path string) map[string][]pmetric.NumberDataPoint {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	out := map[string][]pmetric.NumberDataPoint{}
	var scrapeTime pcommon.Timestamp
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(sc.Bytes())
		require.NoError(t, err, "every line must be an OTLP JSON metrics request")
		for _, rm := range md.ResourceMetrics().All() {
			cluster, _ := rm.Resource().Attributes().Get(topology.AttrK8sClusterName)
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					if !strings.HasPrefix(m.Name(), "DCGM_FI_") {
						continue
					}
					assert.Equal(t, smokeCluster, cluster.Str(), "%s: gpumodel puts CLUSTER_NAME on every GPU's resource", m.Name())
					var dps pmetric.NumberDataPointSlice
					switch m.Type() {
					case pmetric.MetricTypeGauge:
						dps = m.Gauge().DataPoints()
					case pmetric.MetricTypeSum:
						dps = m.Sum().DataPoints()
					default:
						t.Errorf("%s: unexpected metric type %s", m.Name(), m.Type())
						continue
					}
					for _, dp := range dps.All() {
						if scrapeTime == 0 {
							scrapeTime = dp.Timestamp()
						}
						if dp.Timestamp() == scrapeTime {
							out[m.Name()] = append(out[m.Name()], dp)
						}
					}
				}
			}
		}
	}
	require.NoError(t, sc.Err())
	return out
}

// spanDurations reads traces.jsonl: span name and project to duration.
func spanDurations(t *testing.T, path string) map[string]time.Duration {
	t.Helper()
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	out := map[string]time.Duration{}
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(line)
		require.NoError(t, err)
		for _, rs := range td.ResourceSpans().All() {
			ns, _ := rs.Resource().Attributes().Get("k8s.namespace.name")
			cluster, _ := rs.Resource().Attributes().Get(topology.AttrK8sClusterName)
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					spanCluster, _ := sp.Attributes().Get(topology.AttrK8sClusterName)
					assert.Equal(t, spanCluster.Str(), cluster.Str(), "%s: the resource and the span name one cluster", sp.Name())
					key := sp.Name() + "/" + ns.Str()
					_, dup := out[key]
					require.False(t, dup, "duplicate span %s", key)
					out[key] = sp.EndTimestamp().AsTime().Sub(sp.StartTimestamp().AsTime())
				}
			}
		}
	}
	return out
}

// projectNames maps each namespace in metrics.jsonl to its project name.
func projectNames(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	out := map[string]string{}
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(line)
		require.NoError(t, err)
		for _, rm := range md.ResourceMetrics().All() {
			ns, ok := rm.Resource().Attributes().Get("k8s.namespace.name")
			if !ok {
				continue
			}
			name, _ := rm.Resource().Attributes().Get("aitelemetry.project.name")
			out[ns.Str()] = name.Str()
		}
	}
	return out
}

func TestLocalConfigScrapesDCGMIntoFiles(t *testing.T) {
	bin := binary(t)
	rec, err := dcgmreplay.Load(recording)
	require.NoError(t, err)
	dcgm := httptest.NewServer(rec)
	defer dcgm.Close()

	out := t.TempDir()
	health := "127.0.0.1:" + testpeers.FreePort(t)
	alertmanager := "127.0.0.1:" + testpeers.FreePort(t)
	site := "http://127.0.0.1:" + testpeers.FreePort(t)
	cmd := exec.Command(bin, "--config", "../../configs/local.yaml")
	cmd.Env = append(os.Environ(),
		"DCGM_EXPORTER_ENDPOINT="+strings.TrimPrefix(dcgm.URL, "http://"),
		"OUTPUT_DIR="+out,
		"OTLP_GRPC_ENDPOINT=127.0.0.1:"+testpeers.FreePort(t),
		"OTLP_HTTP_ENDPOINT=127.0.0.1:"+testpeers.FreePort(t),
		"HEALTH_CHECK_ENDPOINT="+health,
		"SELF_METRICS_PORT="+testpeers.FreePort(t),
		"ALERTMANAGER_ENDPOINT="+alertmanager,
		"SITE_ENDPOINT="+strings.TrimPrefix(site, "http://"),
		"PROJECTS_FILE=../../configs/metadata/projects.example.yaml",
		"CLUSTER_NAME="+smokeCluster,
	)
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("collector output:\n%s", logs.String())
		}
	}()

	waitFor(t, "the health check", 60*time.Second, func() bool {
		select {
		case err := <-exited:
			t.Fatalf("the collector exited before becoming healthy: %v", err)
		default:
		}
		resp, err := http.Get("http://" + health + "/")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	assert.Contains(t, logs.String(), `"auth": "none-local-mode"`, "local mode must say in its log that it runs without authentication")

	metricsFile := filepath.Join(out, "metrics.jsonl")
	var got map[string][]pmetric.NumberDataPoint
	waitFor(t, "scraped DCGM metrics in "+metricsFile, 60*time.Second, func() bool {
		got = scrapedDCGM(t, metricsFile)
		return len(got) > 0
	})

	// Every series of the recording arrived, with its labels as attributes.
	series := 0
	for _, dps := range got {
		series += len(dps)
	}
	assert.Equal(t, rec.Series, series, "one data point per recorded DCGM series")
	assert.Len(t, got, 21, "DCGM metric families")

	// The gpumodel processor turned raw DCGM labels into the GPU model.
	util := got["DCGM_FI_PROF_GR_ENGINE_ACTIVE"]
	require.Len(t, util, 4)
	byEntity := map[string]float64{}
	for _, dp := range util {
		hwID, _ := dp.Attributes().Get("hw.id")
		_, raw := dp.Attributes().Get("UUID")
		assert.False(t, raw, "raw DCGM labels are replaced")
		byEntity[hwID.Str()] = dp.DoubleValue()
	}
	assert.Equal(t, map[string]float64{
		"GPU-3f1c9a2e-7b4d-4e1a-9c55-0d2b8e6f1a70":   0.962118,
		"GPU-a8e27c41-0c3b-4f7e-8d2a-5b6c9e0f4d13":   0,
		"GPU-6b0d4e93-2f8a-4c17-b3e5-91a7c2d8f604/1": 0.381124,
		"GPU-6b0d4e93-2f8a-4c17-b3e5-91a7c2d8f604/2": 0,
	}, byEntity)
	assert.Equal(t, map[string]string{
		"team-a": "LLM fine-tuning for clinical notes",
		"team-b": "",
	}, projectNames(t, metricsFile), "team-a's metadata comes from configs/metadata/projects.example.yaml; team-b's entry is for another cluster")
	_, isSum := got["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"]
	assert.True(t, isSum)

	// GPU usage sessions from Alertmanager webhooks reach traces.jsonl.
	for _, n := range []string{"firing", "resolved"} {
		body, err := os.ReadFile("../../testdata/alertmanager/gpu-usage-" + n + ".json")
		require.NoError(t, err)
		resp, err := http.Post("http://"+alertmanager+"/alerts", "application/json", bytes.NewReader(body))
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode, n)
	}
	tracesFile := filepath.Join(out, "traces.jsonl")
	var sessions map[string]time.Duration
	waitFor(t, "GPU usage spans in "+tracesFile, 30*time.Second, func() bool {
		sessions = spanDurations(t, tracesFile)
		return len(sessions) == 4
	})
	assert.Equal(t, map[string]time.Duration{
		"gpu.usage.start/team-a": 0,
		"gpu.usage.start/team-b": 0,
		"gpu.usage/team-a":       3*time.Hour + 15*time.Minute,
		"gpu.usage/team-b":       75 * time.Minute,
	}, sessions)

	// The site's API serves the same GPUs and sessions from the embedded
	// store, in local mode, saying so on every answer.
	var devices, slices, stored []map[string]any
	waitFor(t, "the GPU model and both sessions in the site's API", 30*time.Second, func() bool {
		devices = siteItems(t, site+"/api/v1/devices")
		slices = siteItems(t, site+"/api/v1/slices")
		stored = siteItems(t, site+"/api/v1/sessions")
		return len(devices) == 3 && len(slices) == 2 && len(stored) == 2
	})
	holders := map[string]any{}
	for _, sl := range slices {
		holders[sl["id"].(string)] = sl["holder"]
	}
	assert.Equal(t, map[string]any{
		"GPU-6b0d4e93-2f8a-4c17-b3e5-91a7c2d8f604/1": map[string]any{"namespace": "team-b", "pod": "jupyter-alice-0"},
		"GPU-6b0d4e93-2f8a-4c17-b3e5-91a7c2d8f604/2": nil,
	}, holders)

	// ... and the pages, from the same store: team-b's project page names its
	// notebook on the MIG slice, and says it is local mode's.
	resp, err := http.Get(site + "/projects/moc/" + smokeCluster + "/team-b")
	require.NoError(t, err)
	page, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", page)
	assert.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html"))
	assert.Contains(t, string(page), "Local mode:")
	assert.Contains(t, string(page), "jupyter-alice-0")

	// A clean stop: SIGTERM, exit status 0, shutdown logged.
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		require.NoError(t, err, "the collector must exit cleanly on SIGTERM")
	case <-time.After(30 * time.Second):
		t.Fatal("the collector did not stop within 30s of SIGTERM")
	}
	assert.Contains(t, logs.String(), "Shutdown complete.")
}

// siteItems GETs one page of a list of the site's API (local mode).
func siteItems(t *testing.T, url string) []map[string]any {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return nil
	}
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	assert.Equal(t, "local (no authentication)", resp.Header.Get("X-AI-Telemetry-Mode"), "local mode says so on every answer")
	var page struct {
		Items []map[string]any `json:"items"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&page), url)
	return page.Items
}

// TestBrokenConfigNamesTheField checks that a bad configuration stops the
// collector at startup with a message that names the offending field.
func TestBrokenConfigNamesTheField(t *testing.T) {
	bin := binary(t)
	tests := []struct {
		name   string
		config string
		want   []string
	}{
		{
			name:   "file exporter without path",
			config: "exporters:\n  file:\n    file_mode: 0600\n",
			want:   []string{"exporters::file", "path must be set"},
		},
		{
			name:   "misspelled field",
			config: "exporters:\n  file:\n    paht: out.jsonl\n",
			want:   []string{`configuration for "file"`, "invalid keys: paht"},
		},
		{
			name:   "wrong type",
			config: "exporters:\n  file:\n    path: out.jsonl\n    file_mode: everyone\n",
			want:   []string{`configuration for "file"`, "'file_mode' expected type"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.config + `receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
service:
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [file]
`
			path := filepath.Join(t.TempDir(), "config.yaml")
			require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			output, err := exec.CommandContext(ctx, bin, "--config", path).CombinedOutput()
			var exitErr *exec.ExitError
			require.ErrorAs(t, err, &exitErr, "the collector must refuse to start; output:\n%s", output)
			for _, w := range tt.want {
				assert.Contains(t, string(output), w)
			}
			assert.NotContains(t, string(output), "panic")
		})
	}
}
