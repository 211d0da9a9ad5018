package gpumodelprocessor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/nerc-project/ai-telemetry-collector/processor/gpumodelprocessor/internal/metadata"
	"github.com/nerc-project/ai-telemetry-collector/processor/gpumodelprocessor/internal/metadatatest"
)

type testProcessor struct {
	sink *consumertest.MetricsSink
	tel  *componenttest.Telemetry
	run  func(pmetric.Metrics)
}

func newTestProcessor(t *testing.T, mutate func(*Config)) *testProcessor {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.Hub = "moc"
	cfg.Cluster.Name = "nerc-ocp-prod"
	if mutate != nil {
		mutate(cfg)
	}
	tel := componenttest.NewTelemetry()
	set := processortest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	sink := new(consumertest.MetricsSink)
	p, err := NewFactory().CreateMetrics(context.Background(), set, cfg, sink)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		require.NoError(t, p.Shutdown(context.Background()))
		require.NoError(t, tel.Shutdown(context.Background()))
	})
	return &testProcessor{sink: sink, tel: tel, run: func(md pmetric.Metrics) {
		require.NoError(t, p.ConsumeMetrics(context.Background(), md))
	}}
}

// gauge adds a gauge with one point per label set.
func gauge(t testing.TB, sm pmetric.ScopeMetrics, name string, value float64, labelSets ...map[string]any) {
	t.Helper()
	m := sm.Metrics().AppendEmpty()
	m.SetName(name)
	dps := m.SetEmptyGauge().DataPoints()
	for _, l := range labelSets {
		dp := dps.AppendEmpty()
		dp.SetDoubleValue(value)
		dp.SetTimestamp(1_800_000_000_000_000_000)
		require.NoError(t, dp.Attributes().FromRaw(l))
	}
}

func TestBadInputPassesAndIsCounted(t *testing.T) {
	tp := newTestProcessor(t, nil)
	md := pmetric.NewMetrics()
	sm := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	gauge(t, sm, "DCGM_FI_PROF_GR_ENGINE_ACTIVE", 0.5, map[string]any{
		"UUID": "GPU-1", "gpu": "0", "modelName": "NVIDIA L40S", "GPU_I_PROFILE": "1g.12gb", "GPU_I_ID": "1", "Hostname": "n1",
	})
	gauge(t, sm, "DCGM_FI_DEV_GPU_UTIL", 3, map[string]any{"Hostname": 42, "weird": true})
	hist := sm.Metrics().AppendEmpty()
	hist.SetName("DCGM_FI_CUSTOM_HISTOGRAM")
	hist.SetEmptyHistogram().DataPoints().AppendEmpty().SetCount(3)
	gauge(t, sm, "node_cpu_seconds_total", 1, map[string]any{"cpu": "0"})
	tp.run(md)

	out := flatten(tp.sink.AllMetrics()[0])
	require.Len(t, out, 3, "no data point is lost")
	var names []string
	for _, p := range out {
		names = append(names, p.metric)
	}
	assert.ElementsMatch(t, []string{"DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_DEV_GPU_UTIL", "node_cpu_seconds_total"}, names)
	assert.Equal(t, 1, countMetric(tp.sink.AllMetrics()[0], "DCGM_FI_CUSTOM_HISTOGRAM"), "unsupported types pass unchanged")

	unknown := find(t, out, "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "GPU-1/1")
	assert.NotContains(t, unknown.attrs, "aitelemetry.gpu.slice.fraction")
	assert.Equal(t, "1g.12gb", unknown.attrs["nvidia.mig.profile"])
	for _, p := range out {
		if p.metric == "DCGM_FI_DEV_GPU_UTIL" {
			assert.Equal(t, "42", p.resource["k8s.node.name"], "non-string labels are read as text")
			assert.Equal(t, true, p.attrs["weird"], "unknown labels are kept")
		}
		if p.metric == "node_cpu_seconds_total" {
			assert.Equal(t, map[string]any{"cpu": "0"}, p.attrs)
		}
	}

	reasons := func(r string, n int64) metricdata.DataPoint[int64] {
		return metricdata.DataPoint[int64]{Attributes: attribute.NewSet(attribute.String("reason", r)), Value: n}
	}
	metadatatest.AssertEqualProcessorGpumodelDatapointsIncomplete(t, tp.tel, []metricdata.DataPoint[int64]{
		reasons(reasonUnknownMIGProfile, 1), reasons(reasonNoGPUIdentity, 1), reasons(reasonUnsupportedType, 1),
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	metadatatest.AssertEqualProcessorGpumodelDatapointsEnriched(t, tp.tel,
		[]metricdata.DataPoint[int64]{{Value: 2}}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

func countMetric(md pmetric.Metrics, name string) int {
	n := 0
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				if m.Name() == name {
					n++
				}
			}
		}
	}
	return n
}

func TestSemconvMetrics(t *testing.T) {
	gpu := map[string]any{"UUID": "GPU-1", "gpu": "0", "modelName": "NVIDIA A100-SXM4-80GB", "Hostname": "n1", "namespace": "a", "pod": "p"}
	slice := map[string]any{"UUID": "GPU-2", "gpu": "1", "modelName": "NVIDIA A100-SXM4-80GB", "Hostname": "n1", "GPU_I_PROFILE": "3g.40gb", "GPU_I_ID": "2", "namespace": "a", "pod": "p"}
	const used, free, reserved = "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_RESERVED"
	mib := map[string]float64{used: 1000, free: 80000, reserved: 920}
	tests := []struct {
		name        string
		frameBuffer []string // the frame buffer fields scraped
		wantUsage   float64  // bytes; 0: no hw.gpu.memory.usage point
		wantLimit   float64  // bytes; 0: not asserted
	}{
		{"every frame buffer field", []string{used, free, reserved}, 1000 * 1048576.0, 81920 * 1048576.0},
		// hw.gpu.memory.limit with a field missing: not asserted here, issue 18 fixes it (TestMemoryLimitNeedsEveryFrameBufferField).
		{"FB_USED only", []string{used}, 1000 * 1048576.0, 0},
		{"FB_USED and FB_FREE", []string{used, free}, 1000 * 1048576.0, 0},
		{"FB_USED and FB_RESERVED", []string{used, reserved}, 1000 * 1048576.0, 0},
		{"no FB_USED", []string{free, reserved}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp := newTestProcessor(t, func(c *Config) { c.SemconvMetrics = true })
			md := pmetric.NewMetrics()
			sm := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
			gauge(t, sm, "DCGM_FI_DEV_GPU_UTIL", 97, gpu)
			gauge(t, sm, "DCGM_FI_PROF_GR_ENGINE_ACTIVE", 0.9, gpu, slice)
			gauge(t, sm, "DCGM_FI_DEV_DEC_UTIL", 10, gpu)
			for _, f := range tt.frameBuffer {
				gauge(t, sm, f, mib[f], gpu)
			}
			gauge(t, sm, "DCGM_FI_DEV_POWER_USAGE", 250.5, gpu)
			energy := sm.Metrics().AppendEmpty()
			energy.SetName("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION")
			edp := energy.SetEmptySum().DataPoints().AppendEmpty()
			energy.Sum().SetIsMonotonic(true)
			edp.SetIntValue(5_000_000)
			require.NoError(t, edp.Attributes().FromRaw(gpu))
			tp.run(md)

			got := tp.sink.AllMetrics()[0]
			out := flatten(got)
			util := map[string]float64{}
			usage := 0
			for _, p := range out {
				if p.metric == "hw.gpu.utilization" {
					util[toString(p.attrs["hw.id"])+"/"+toString(p.attrs["hw.gpu.task"])] = p.value
					assert.Equal(t, "gpu", p.attrs["hw.type"])
				}
				if p.metric == "hw.gpu.memory.usage" {
					usage++
				}
			}
			assert.InDeltaMapValues(t, map[string]float64{"GPU-1/general": 0.97, "GPU-1/decoder": 0.10, "GPU-2/2/general": 0.9}, util, 1e-12)
			if tt.wantUsage > 0 {
				require.Equal(t, 1, usage, "one usage point, from FB_USED")
				assert.InDelta(t, tt.wantUsage, find(t, out, "hw.gpu.memory.usage", "GPU-1").value, 0)
			} else {
				assert.Zero(t, usage, "no usage without FB_USED")
			}
			if tt.wantLimit > 0 {
				assert.InDelta(t, tt.wantLimit, find(t, out, "hw.gpu.memory.limit", "GPU-1").value, 0)
			}
			assert.InDelta(t, 250.5, find(t, out, "hw.power", "GPU-1").value, 0)
			assert.InDelta(t, 5000, find(t, out, "hw.energy", "GPU-1").value, 0)
			assert.Equal(t, 1, countMetric(got, "DCGM_FI_DEV_GPU_UTIL"), "DCGM series stay")
			for _, f := range tt.frameBuffer {
				assert.Equal(t, 1, countMetric(got, f), "DCGM series stay: %s", f)
			}
		})
	}
}

// TestMemoryLimitNeedsEveryFrameBufferField: the limit is used + free +
// reserved, so with any of them missing it is not the memory's size (with
// FB_USED alone it would equal the usage) and is not emitted.
func TestMemoryLimitNeedsEveryFrameBufferField(t *testing.T) {
	fields := []string{"DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_RESERVED"}
	for skip := range fields {
		t.Run("without "+fields[skip], func(t *testing.T) {
			tp := newTestProcessor(t, func(c *Config) { c.SemconvMetrics = true })
			gpu := map[string]any{"UUID": "GPU-1", "gpu": "0", "modelName": "NVIDIA A100-SXM4-80GB", "Hostname": "n1", "namespace": "a", "pod": "p"}
			md := pmetric.NewMetrics()
			sm := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
			for i, f := range fields {
				if i != skip {
					gauge(t, sm, f, 1000, gpu)
				}
			}
			tp.run(md)
			out := tp.sink.AllMetrics()[0]
			assert.Equal(t, 0, countMetric(out, "hw.gpu.memory.limit"))
			kept := 0
			for _, f := range fields {
				kept += countMetric(out, f)
			}
			assert.Equal(t, len(fields)-1, kept, "the DCGM series stay")
		})
	}
}

func TestRegroupingKeepsOtherResourceAttributes(t *testing.T) {
	tp := newTestProcessor(t, nil)
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "dcgm-exporter")
	rm.Resource().Attributes().PutStr("k8s.cluster.name", "nerc-ocp-test")
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("prometheusreceiver")
	gauge(t, sm, "DCGM_FI_DEV_GPU_UTIL", 1,
		map[string]any{"UUID": "GPU-1", "Hostname": "n1", "namespace": "a", "pod": "p1"},
		map[string]any{"UUID": "GPU-2", "Hostname": "n1", "namespace": "b", "pod": "p2"},
		map[string]any{"UUID": "GPU-3", "Hostname": "n1", "namespace": "a", "pod": "p1"})
	tp.run(md)
	got := tp.sink.AllMetrics()[0]
	require.Equal(t, 2, got.ResourceMetrics().Len(), "one resource per (cluster, node, namespace, pod, container); the emptied input is dropped")
	for _, rm := range got.ResourceMetrics().All() {
		attrs := rm.Resource().Attributes()
		v, _ := attrs.Get("service.name")
		assert.Equal(t, "dcgm-exporter", v.Str())
		v, _ = attrs.Get("k8s.cluster.name")
		assert.Equal(t, "nerc-ocp-test", v.Str(), "the resource's cluster wins over the configured one")
		assert.Equal(t, "prometheusreceiver", rm.ScopeMetrics().At(0).Scope().Name())
	}
	assert.Equal(t, 3, got.DataPointCount())
}

// A label set naming its project, cluster, node or GPU with something that is
// not a Kubernetes name cannot name a Keycloak resource or tenant: its points
// are dropped and counted, the others of the same metric go on.
func TestInvalidNamesRefused(t *testing.T) {
	valid := map[string]any{"UUID": "GPU-1", "gpu": "0", "Hostname": "wrk-1", "namespace": "team-a", "pod": "p"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range valid {
			m[kk] = vv
		}
		m[k] = v
		return m
	}
	bad := []map[string]any{
		with("namespace", "team-b#GET"),
		with("namespace", "TEAM-B"),
		with("cluster", "nerc-ocp-prod-PROJECT-team-a#GET#"),
		with("Hostname", "wrk 1"),
		with("gpu", "0,GET"),
	}
	tp := newTestProcessor(t, nil)
	md := pmetric.NewMetrics()
	sm := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	gauge(t, sm, "DCGM_FI_DEV_GPU_UTIL", 7, append([]map[string]any{valid}, bad...)...)
	tp.run(md)

	out := flatten(tp.sink.AllMetrics()[0])
	require.Len(t, out, 1, "only the valid point goes on")
	assert.Equal(t, "team-a", out[0].resource["k8s.namespace.name"])
	metadatatest.AssertEqualProcessorGpumodelDatapointsRefused(t, tp.tel, []metricdata.DataPoint[int64]{
		{Attributes: attribute.NewSet(attribute.String("reason", "invalid_name")), Value: int64(len(bad))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	metadatatest.AssertEqualProcessorGpumodelDatapointsEnriched(t, tp.tel,
		[]metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}
