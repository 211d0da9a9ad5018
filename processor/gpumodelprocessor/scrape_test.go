package gpumodelprocessor

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/prometheusreceiver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/nerc-project/ai-telemetry-collector/processor/gpumodelprocessor/internal/metadata"
)

// point is one enriched data point with its resource, as a flat map.
type point struct {
	metric   string
	value    float64
	resource map[string]any
	attrs    map[string]any
}

// scrapeThrough serves a fixture in the exposition format, scrapes it with
// the real prometheus receiver and runs the result through the processor, so
// the labels are exactly what a pipeline sees.
func scrapeThrough(t *testing.T, fixture string, mutate func(*Config)) []point {
	t.Helper()
	body, err := os.ReadFile(fixture)
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write(body)
	}))
	defer srv.Close()

	cfg := createDefaultConfig().(*Config)
	cfg.Hub = "moc"
	cfg.Cluster.HubCluster = "nerc-ocp-infra"
	if mutate != nil {
		mutate(cfg)
	}
	sink := new(consumertest.MetricsSink)
	proc, err := NewFactory().CreateMetrics(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, proc.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, proc.Shutdown(context.Background())) }()

	rf := prometheusreceiver.NewFactory()
	rcfg := rf.CreateDefaultConfig()
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"config": map[string]any{"scrape_configs": []any{map[string]any{
			"job_name": "dcgm", "scrape_interval": "1s",
			"static_configs": []any{map[string]any{"targets": []any{strings.TrimPrefix(srv.URL, "http://")}}},
		}}},
	}).Unmarshal(rcfg))
	rset := receivertest.NewNopSettings(rf.Type())
	rset.ID = component.NewIDWithName(rf.Type(), "dcgm")
	rcv, err := rf.CreateMetrics(context.Background(), rset, rcfg, proc)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, rcv.Shutdown(context.Background())) }()

	var points []point
	require.Eventually(t, func() bool {
		points = nil
		for _, md := range sink.AllMetrics() {
			points = append(points, flatten(md)...)
		}
		for _, p := range points {
			if isDCGMSeries(p.metric) {
				return true
			}
		}
		return false
	}, 30*time.Second, 50*time.Millisecond)
	// Keep the first scrape only.
	first := map[string]bool{}
	var out []point
	for _, p := range points {
		key := p.metric + "|" + toString(p.attrs["hw.id"]) + "|" + toString(p.resource["k8s.pod.uid"])
		if first[key] || strings.HasPrefix(p.metric, "scrape_") || p.metric == "up" {
			continue
		}
		first[key] = true
		out = append(out, p)
	}
	return out
}

func flatten(md pmetric.Metrics) []point {
	var out []point
	for _, rm := range md.ResourceMetrics().All() {
		res := rm.Resource().Attributes().AsRaw()
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				var dps pmetric.NumberDataPointSlice
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					dps = m.Gauge().DataPoints()
				case pmetric.MetricTypeSum:
					dps = m.Sum().DataPoints()
				default:
					continue
				}
				for _, dp := range dps.All() {
					out = append(out, point{metric: m.Name(), value: numberValue(dp), resource: res, attrs: dp.Attributes().AsRaw()})
				}
			}
		}
	}
	return out
}

func toString(v any) string {
	s, _ := v.(string)
	return s
}

func find(t *testing.T, points []point, metric, hwID string) point {
	t.Helper()
	for _, p := range points {
		if p.metric == metric && p.attrs["hw.id"] == hwID {
			return p
		}
	}
	t.Fatalf("no %s point for %s in %d points", metric, hwID, len(points))
	return point{}
}

func TestDialectsThroughPrometheusReceiver(t *testing.T) {
	projects, err := filepath.Abs(filepath.Join("testdata", "projects.yaml"))
	require.NoError(t, err)

	t.Run("direct scrape with MIG (the make run recording)", func(t *testing.T) {
		points := scrapeThrough(t, filepath.Join("..", "..", "testdata", "dcgm", "gpu-a100-node-1.prom"), func(c *Config) {
			c.Cluster.Name = "nerc-ocp-prod"
			c.Metadata.File.Path = projects
		})
		whole := find(t, points, "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "GPU-3f1c9a2e-7b4d-4e1a-9c55-0d2b8e6f1a70")
		assert.InDelta(t, 0.962118, whole.value, 1e-9)
		assert.Equal(t, map[string]any{
			"hw.type": "gpu", "hw.vendor": "NVIDIA", "hw.id": "GPU-3f1c9a2e-7b4d-4e1a-9c55-0d2b8e6f1a70",
			"hw.name": "nvidia0", "hw.model": "NVIDIA A100-SXM4-80GB", "hw.driver_version": "550.90.07",
			"nvidia.gpu.index": "0", "nvidia.gpu.pci_bus_id": "00000000:17:00.0",
			"aitelemetry.gpu.allocated": true, "aitelemetry.gpu.slice.fraction": 1.0,
			"aitelemetry.ngsi_ld.id": "urn:ngsi-ld:GpuDevice:nerc-ocp-prod:gpu-a100-node-1.nerc.mghpcc.org:0",
		}, whole.attrs, "raw DCGM labels are replaced by the model")
		for key, want := range map[string]any{
			"k8s.cluster.name": "nerc-ocp-prod", "k8s.node.name": "gpu-a100-node-1.nerc.mghpcc.org",
			"k8s.namespace.name": "team-a", "k8s.pod.name": "llm-finetune-7d9c8b6f5-x2k4q", "k8s.container.name": "trainer",
			"aitelemetry.hub.name": "moc", "aitelemetry.keycloak.resource": "HUB-moc-CLUSTER-nerc-ocp-prod-PROJECT-team-a",
			"aitelemetry.project.id": "1342", "aitelemetry.project.pi": "alice@example.edu",
			"aitelemetry.project.name": "LLM fine-tuning for clinical notes", "aitelemetry.project.gpu.allocation": 4.0,
			"aitelemetry.project.field_of_science": "Computer and Information Sciences",
			"service.name":                         "dcgm",
		} {
			assert.Equal(t, want, whole.resource[key], key)
		}

		slice := find(t, points, "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "GPU-6b0d4e93-2f8a-4c17-b3e5-91a7c2d8f604/1")
		assert.Equal(t, "GPU-6b0d4e93-2f8a-4c17-b3e5-91a7c2d8f604", slice.attrs["hw.parent"])
		assert.Equal(t, "3g.40gb", slice.attrs["nvidia.mig.profile"])
		assert.InDelta(t, 3.0/7, slice.attrs["aitelemetry.gpu.slice.fraction"], 1e-12)
		assert.Equal(t, "team-b", slice.resource["k8s.namespace.name"])
		assert.Equal(t, "Protein folding at scale", slice.resource["aitelemetry.project.name"], "cluster-scoped file entry")

		free := find(t, points, "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "GPU-6b0d4e93-2f8a-4c17-b3e5-91a7c2d8f604/2")
		assert.Equal(t, false, free.attrs["aitelemetry.gpu.allocated"])
		assert.NotContains(t, free.resource, "k8s.namespace.name")
		assert.Equal(t, "HUB-moc-CLUSTER-nerc-ocp-prod", free.resource["aitelemetry.keycloak.resource"])

		energy := find(t, points, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "GPU-3f1c9a2e-7b4d-4e1a-9c55-0d2b8e6f1a70")
		assert.InDelta(t, 412987654321, energy.value, 1)
	})

	t.Run("federated with exported_* labels, local-cluster, A30 MIG", func(t *testing.T) {
		points := scrapeThrough(t, filepath.Join("testdata", "federated-exported.prom"), nil)
		busy := find(t, points, "DCGM_FI_DEV_GPU_UTIL", "GPU-11111111-2222-3333-4444-555555555555")
		assert.Equal(t, "team-a", busy.resource["k8s.namespace.name"])
		assert.Equal(t, "train-0", busy.resource["k8s.pod.name"])
		assert.Equal(t, "wrk-21", busy.resource["k8s.node.name"])
		assert.Equal(t, "nerc-ocp-prod", busy.resource["k8s.cluster.name"])

		idle := find(t, points, "DCGM_FI_DEV_GPU_UTIL", "GPU-66666666-7777-8888-9999-000000000000")
		assert.NotContains(t, idle.resource, "k8s.namespace.name", "the exporter pod never holds a GPU")
		assert.NotContains(t, idle.resource, "k8s.pod.name")
		assert.Equal(t, false, idle.attrs["aitelemetry.gpu.allocated"])

		a30 := find(t, points, "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee/1")
		assert.Equal(t, "nerc-ocp-infra", a30.resource["k8s.cluster.name"], "local-cluster is the hub's own cluster")
		assert.InDelta(t, 0.5, a30.attrs["aitelemetry.gpu.slice.fraction"], 1e-12)
		assert.Equal(t, "HUB-moc-CLUSTER-nerc-ocp-infra-PROJECT-team-c", a30.resource["aitelemetry.keycloak.resource"])
	})

	t.Run("old namespace mode", func(t *testing.T) {
		points := scrapeThrough(t, filepath.Join("testdata", "old-namespace.prom"), func(c *Config) { c.Cluster.Name = "nerc-ocp-test" })
		p := find(t, points, "dcgm_fi_dev_fb_used", "GPU-12345678-90ab-cdef-1234-567890abcdef")
		assert.Equal(t, "team-d", p.resource["k8s.namespace.name"])
		assert.Equal(t, "sim-3", p.resource["k8s.pod.name"])
		assert.Equal(t, "cuda", p.resource["k8s.container.name"])
		assert.Equal(t, "nerc-ocp-test", p.resource["k8s.cluster.name"])
	})

	t.Run("exporter pod in Hostname, resolved through kube-state-metrics", func(t *testing.T) {
		points := scrapeThrough(t, filepath.Join("testdata", "exporter-pod-hostname.prom"), func(c *Config) { c.Cluster.Name = "nerc-ocp-prod" })
		resolved := find(t, points, "DCGM_FI_DEV_POWER_USAGE", "GPU-603a8873-0edd-c157-ce48-2078e8b1a935")
		assert.Equal(t, "wrk-7", resolved.resource["k8s.node.name"])
		assert.NotContains(t, resolved.resource, "aitelemetry.node.unresolved")
		for key, want := range map[string]any{
			"aitelemetry.project.id": "1342", "aitelemetry.project.pi": "alice@example.edu",
			"aitelemetry.project.name": "LLM fine-tuning", "aitelemetry.project.gpu.quota": 4.0,
			"aitelemetry.project.gpu.requests": 1 + 3.0/7,
		} {
			if f, ok := want.(float64); ok {
				assert.InDelta(t, f, resolved.resource[key], 1e-9, key)
				continue
			}
			assert.Equal(t, want, resolved.resource[key], key)
		}

		unknown := find(t, points, "DCGM_FI_DEV_POWER_USAGE", "GPU-585834da-79ca-0599-5140-4ffdb131ae93")
		assert.Equal(t, "nvidia-dcgm-exporter-zzzzz", unknown.resource["k8s.node.name"], "kept")
		assert.Equal(t, true, unknown.resource["aitelemetry.node.unresolved"], "and flagged")

		// kube-state-metrics series pass unchanged.
		var ksm int
		for _, p := range points {
			if p.metric == "kube_pod_info" {
				ksm++
				assert.Equal(t, "nvidia-dcgm-exporter-sn5rp", p.attrs["pod"])
			}
		}
		assert.Equal(t, 1, ksm)
	})

	t.Run("time-slicing: one resource per sharing pod", func(t *testing.T) {
		points := scrapeThrough(t, filepath.Join("testdata", "time-slicing.prom"), func(c *Config) { c.Cluster.Name = "nerc-ocp-prod" })
		byPod := map[string]point{}
		for _, p := range points {
			if p.metric == "DCGM_FI_DEV_FB_USED" {
				byPod[toString(p.resource["k8s.pod.name"])] = p
			}
		}
		require.Len(t, byPod, 2)
		assert.Equal(t, "11111111-0000-0000-0000-000000000002", byPod["share-b"].resource["k8s.pod.uid"])
		assert.Equal(t, "1", byPod["share-b"].attrs["nvidia.vgpu"])
		assert.InDelta(t, 2048, byPod["share-b"].value, 0)
		assert.Equal(t, "team-e", byPod["share-a"].resource["k8s.namespace.name"])
	})
}
