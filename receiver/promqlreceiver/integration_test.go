//go:build integration

package promqlreceiver

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/attribute"

	"github.com/nerc-project/ai-telemetry-collector/processor/gpumodelprocessor"
)

// historyStart is where the backfilled history begins: far enough back that
// the blocks never overlap Prometheus' head, on a 5-minute boundary.
func historyStart() time.Time { return time.Now().UTC().Truncate(time.Hour).Add(-8 * time.Hour) }

const historySamples = 48 // 4 h at one sample every 300 s

// pointKey identifies an emitted point: its series and timestamp.
func pointKey(p point) string {
	var parts []string
	for k, v := range p.attrs {
		parts = append(parts, fmt.Sprintf("%s=%v", k, v))
	}
	sort.Strings(parts)
	return p.metric + "{" + strings.Join(parts, ",") + "}@" + p.ts.Format(time.RFC3339)
}

// expectPoints lists the fixture's points at the k-th samples.
func expectPoints(all []series, t0 time.Time, ks ...int) map[string]float64 {
	want := map[string]float64{}
	for _, s := range all {
		attrs := map[string]any{}
		for k, v := range s.labels {
			attrs[k] = v
		}
		for _, k := range ks {
			want[pointKey(point{metric: s.name, ts: t0.Add(time.Duration(k) * 5 * time.Minute), attrs: attrs})] = s.base + float64(k)
		}
	}
	return want
}

func gotPoints(t *testing.T, ps []point) map[string]float64 {
	t.Helper()
	got := map[string]float64{}
	for _, p := range ps {
		k := pointKey(p)
		_, dup := got[k]
		require.False(t, dup, "emitted twice: %s", k)
		got[k] = p.value
	}
	return got
}

func TestRealPrometheus(t *testing.T) {
	t0 := historyStart()
	prod, test := fixtureSeries(t, "nerc-ocp-prod"), fixtureSeries(t, "nerc-ocp-test")
	prom := startPrometheus(t, append(append([]series{}, prod...), test...), t0, historySamples, "", nil)
	at := func(k int) time.Time { return t0.Add(time.Duration(k)*5*time.Minute + 30*time.Second) } // between samples

	t.Run("raw samples: labels, timestamps, catch-up after a stop, nothing twice across restarts", func(t *testing.T) {
		cfg := testConfig(prom.url, QueryConfig{Name: "dcgm", Query: `{__name__=~"DCGM_FI_.*",cluster="{{.Cluster}}"}`, RawSamples: true})
		cfg.Clusters = []string{"nerc-ocp-prod"}
		cfg.Interval, cfg.MaxCatchUp = 5*time.Minute, 30*time.Minute
		cfg.CatchUpChunk = 10 * time.Minute // catch-ups in several requests
		cfg.Storage = &storageID
		dir := t.TempDir()
		var all []point
		var requests int64
		life := func(runs ...time.Time) []point {
			host := newFileStorage(t, dir)
			sink := new(consumertest.MetricsSink)
			h := newHarness(t, cfg, sink, host)
			for _, ts := range runs {
				h.runAll(ts)
			}
			require.Equal(t, int64(0), h.count("query_failures"), "%v", h.logs.All())
			requests = h.count("queries")
			h.shutdown()
			require.NoError(t, host.ext.Shutdown(context.Background()))
			ps := pointsOf(sink.AllMetrics())
			all = append(all, ps...)
			return ps
		}

		// First life: one run, one interval back: the sample at k=12 of every series.
		first := life(at(12))
		require.Len(t, first, len(prod), "one point per series")
		assert.Equal(t, expectPoints(prod, t0, 12), gotPoints(t, first),
			"every label (exported_*, MIG, target labels) and the sample's own timestamp and value")

		// Stopped for 20 minutes; the next life catches up from the stored cursor.
		second := life(at(16), at(17))
		assert.Equal(t, expectPoints(prod, t0, 13, 14, 15, 16, 17), gotPoints(t, second))
		assert.Equal(t, int64(4), requests, "20 minutes in chunks of 10, the rest, then the next interval")

		// Stopped for 2 h: only max_catch_up (30 min) is fetched.
		third := life(at(41))
		assert.Equal(t, expectPoints(prod, t0, 36, 37, 38, 39, 40, 41), gotPoints(t, third))
		assert.Equal(t, int64(3), requests, "30 minutes in chunks of 10")
		gotPoints(t, all) // fails on any point emitted twice over the three lives
		t.Logf("raw samples: %d series, %d points over three lives", len(prod), len(all))
	})

	t.Run("evaluated: instant, then query_range after missed runs", func(t *testing.T) {
		cfg := testConfig(prom.url, QueryConfig{
			Name:  "busy",
			Query: `DCGM_FI_PROF_GR_ENGINE_ACTIVE{cluster="{{.Cluster}}",exported_namespace="team-b"}`,
		})
		cfg.Clusters = []string{"nerc-ocp-test"}
		cfg.Interval = 5 * time.Minute
		cfg.CatchUpChunk = 10 * time.Minute // two evaluations per query_range
		sink := new(consumertest.MetricsSink)
		h := newHarness(t, cfg, sink, componenttest.NewNopHost())
		defer h.shutdown()
		var slice series
		for _, s := range test {
			if s.name == "DCGM_FI_PROF_GR_ENGINE_ACTIVE" && s.labels["exported_namespace"] == "team-b" {
				slice = s
			}
		}
		require.Equal(t, "3g.40gb", slice.labels["GPU_I_PROFILE"], "the fixture's allocated MIG slice")

		h.runAll(at(20))
		h.runAll(at(24)) // three runs missed
		ps := pointsOf(sink.AllMetrics())
		require.Len(t, ps, 5)
		for i, k := range []int{20, 21, 22, 23, 24} {
			assert.Equal(t, at(k), ps[i].ts, "evaluation time")
			assert.InDelta(t, slice.base+float64(k), ps[i].value, 1e-9, "the sample before the evaluation time")
			assert.Equal(t, "jupyter-alice-0", ps[i].attrs["exported_pod"])
			assert.Equal(t, "nvidia-dcgm-exporter-x7k2p", ps[i].attrs["pod"])
		}
		assert.Equal(t, int64(1), h.count("queries", attribute.String("api", "query")))
		assert.Equal(t, int64(2), h.count("queries", attribute.String("api", "query_range")), "20 minutes of 5-minute steps in chunks of 10")
	})

	t.Run("scalar result: one point named after the query", func(t *testing.T) {
		cfg := testConfig(prom.url, QueryConfig{Name: "whole_gpus", Query: `scalar(count(DCGM_FI_DEV_GPU_UTIL{cluster="{{.Cluster}}"}))`})
		cfg.Clusters = []string{"nerc-ocp-test"}
		sink := new(consumertest.MetricsSink)
		h := newHarness(t, cfg, sink, componenttest.NewNopHost())
		defer h.shutdown()
		h.runAll(at(5))
		wholeGPUs := 0
		for _, s := range test {
			if s.name == "DCGM_FI_DEV_GPU_UTIL" {
				wholeGPUs++
			}
		}
		ps := pointsOf(sink.AllMetrics())
		require.Len(t, ps, 1)
		assert.Equal(t, point{metric: "whole_gpus", ts: at(5), value: float64(wholeGPUs), attrs: map[string]any{}}, ps[0])
	})

	t.Run("the gpumodel processor reads the pulled points as a scrape's", func(t *testing.T) {
		f := gpumodelprocessor.NewFactory()
		pcfg := f.CreateDefaultConfig().(*gpumodelprocessor.Config)
		pcfg.Hub = "moc"
		sink := new(consumertest.MetricsSink)
		proc, err := f.CreateMetrics(context.Background(), processortest.NewNopSettings(f.Type()), pcfg, sink)
		require.NoError(t, err)
		require.NoError(t, proc.Start(context.Background(), componenttest.NewNopHost()))
		defer func() { require.NoError(t, proc.Shutdown(context.Background())) }()

		cfg := testConfig(prom.url, QueryConfig{Name: "dcgm", Query: `{__name__=~"DCGM_FI_.*",cluster="{{.Cluster}}"}`, RawSamples: true})
		cfg.Clusters = []string{"nerc-ocp-prod"}
		cfg.Interval = 5 * time.Minute
		h := newHarness(t, cfg, proc, componenttest.NewNopHost())
		defer h.shutdown()
		h.runAll(at(30))

		require.Equal(t, len(prod), sink.DataPointCount(), "every point passes")
		type workload struct{ node, namespace, pod, resource string }
		slices := map[string]workload{} // hw.id of a MIG slice -> its resource's workload
		for _, md := range sink.AllMetrics() {
			for i := 0; i < md.ResourceMetrics().Len(); i++ {
				rm := md.ResourceMetrics().At(i)
				res := rm.Resource().Attributes().AsRaw()
				assert.Equal(t, "nerc-ocp-prod", res["k8s.cluster.name"])
				ms := rm.ScopeMetrics().At(0).Metrics()
				for j := 0; j < ms.Len(); j++ {
					if ms.At(j).Name() != "DCGM_FI_PROF_GR_ENGINE_ACTIVE" {
						continue
					}
					dps := ms.At(j).Gauge().DataPoints()
					for k := 0; k < dps.Len(); k++ {
						a := dps.At(k).Attributes().AsRaw()
						if a["nvidia.mig.profile"] != nil {
							slices[fmt.Sprint(a["hw.id"])] = workload{
								fmt.Sprint(res["k8s.node.name"]), fmt.Sprint(res["k8s.namespace.name"]),
								fmt.Sprint(res["k8s.pod.name"]), fmt.Sprint(res["aitelemetry.keycloak.resource"]),
							}
						}
					}
				}
			}
		}
		assert.Equal(t, map[string]workload{
			"GPU-6b0d4e93-2f8a-4c17-b3e5-91a7c2d8f604/1": {"gpu-a100-node-1.nerc.mghpcc.org", "team-b", "jupyter-alice-0", "HUB-moc-CLUSTER-nerc-ocp-prod-PROJECT-team-b"},
			// The free slice carries only the exporter pod's own labels: no workload.
			"GPU-6b0d4e93-2f8a-4c17-b3e5-91a7c2d8f604/2": {"gpu-a100-node-1.nerc.mghpcc.org", "<nil>", "<nil>", "HUB-moc-CLUSTER-nerc-ocp-prod"},
		}, slices)
	})

	t.Run("API errors are counted, other queries flow", func(t *testing.T) {
		cfg := testConfig(prom.url,
			// Valid PromQL (an invalid one is refused at start) that
			// Prometheus refuses to evaluate: many-to-many matching.
			QueryConfig{Name: "broken", Query: `DCGM_FI_DEV_GPU_UTIL{cluster="{{.Cluster}}"} * on (cluster) DCGM_FI_DEV_GPU_UTIL{cluster="{{.Cluster}}"}`},
			QueryConfig{Name: "util", Query: `DCGM_FI_DEV_GPU_UTIL{cluster="{{.Cluster}}"}`, RawSamples: true})
		// (A raw_samples query that is not a selector is refused by Validate.)
		cfg.Clusters = []string{"nerc-ocp-prod"}
		cfg.Interval = 5 * time.Minute
		sink := new(consumertest.MetricsSink)
		h := newHarness(t, cfg, sink, componenttest.NewNopHost())
		defer h.shutdown()
		h.runAll(at(30))
		assert.Equal(t, int64(1), h.count("query_failures", attribute.String("query", "broken/nerc-ocp-prod"), attribute.String("reason", "api_error")))
		logged := h.logs.FilterMessage("PromQL query failing").All()
		require.Len(t, logged, 1)
		assert.Contains(t, logged[0].ContextMap()["error"], "execution", "Prometheus' own error type")
		wholeGPUs := 0
		for _, s := range prod {
			if s.name == "DCGM_FI_DEV_GPU_UTIL" {
				wholeGPUs++
			}
		}
		require.Positive(t, wholeGPUs)
		assert.Equal(t, wholeGPUs, sink.DataPointCount(), "GPU_UTIL of the whole GPUs (MIG slices have none)")
	})
}

// TestRealPrometheusScrape: Prometheus scrapes the DCGM recording itself, as
// the exporter pod's target: the receiver sees Prometheus' own relabeling
// (exported_*) and the scrape timestamps.
func TestRealPrometheusScrape(t *testing.T) {
	fixture, err := os.ReadFile(fixturePath)
	require.NoError(t, err)
	exporter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write(fixture)
	}))
	defer exporter.Close()
	target := map[string]string{"cluster": "nerc-ocp-prod", "namespace": "nvidia-gpu-operator", "pod": "nvidia-dcgm-exporter-x7k2p", "container": "nvidia-dcgm-exporter"}
	prom := startPrometheus(t, nil, time.Time{}, 0, strings.TrimPrefix(exporter.URL, "http://"), target)

	cfg := testConfig(prom.url, QueryConfig{Name: "dcgm", Query: `{__name__=~"DCGM_FI_.*",cluster="{{.Cluster}}"}`, RawSamples: true})
	cfg.Clusters = []string{"nerc-ocp-prod"}
	cfg.Interval = 10 * time.Second
	sink := new(consumertest.MetricsSink)
	h := newHarness(t, cfg, sink, componenttest.NewNopHost())
	defer h.shutdown()
	start := time.Now()
	require.Eventually(t, func() bool {
		h.runAll(time.Now())
		return sink.DataPointCount() >= 76
	}, time.Minute, time.Second, "the recording's 76 series")

	byUUIDAndSlice := map[string]point{}
	for _, p := range pointsOf(sink.AllMetrics()) {
		assert.False(t, p.ts.Before(start.Add(-time.Second)) || p.ts.After(time.Now()), "a scrape time: %s", p.ts)
		if p.metric == "DCGM_FI_PROF_GR_ENGINE_ACTIVE" {
			byUUIDAndSlice[fmt.Sprint(p.attrs["UUID"], "/", p.attrs["GPU_I_ID"])] = p
		}
	}
	allocated := byUUIDAndSlice["GPU-6b0d4e93-2f8a-4c17-b3e5-91a7c2d8f604/1"].attrs
	assert.Equal(t, "jupyter-alice-0", allocated["exported_pod"])
	assert.Equal(t, "team-b", allocated["exported_namespace"])
	assert.Equal(t, "notebook", allocated["exported_container"])
	assert.Equal(t, "nvidia-dcgm-exporter-x7k2p", allocated["pod"], "the target's own pod")
	assert.Equal(t, "3g.40gb", allocated["GPU_I_PROFILE"])
	assert.Equal(t, "dcgm", allocated["job"])
	free := byUUIDAndSlice["GPU-6b0d4e93-2f8a-4c17-b3e5-91a7c2d8f604/2"].attrs
	assert.NotContains(t, free, "exported_pod", "an empty pod label is dropped by Prometheus, not renamed")
	assert.Equal(t, "nvidia-dcgm-exporter-x7k2p", free["pod"])
}
