package gpumodelprocessor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/nerc-project/ai-telemetry-collector/processor/gpumodelprocessor/internal/metadata"
)

// referenceEnrichBatch is the straightforward statement of what enrichBatch
// does, without its caches and shortcuts: every point's labels are parsed
// afresh, groups and their metrics are found through maps. The optimized path
// must produce exactly the same output and counts.
func referenceEnrichBatch(p *gpuModelProcessor, rms pmetric.ResourceMetricsSlice) batchCounts {
	counts := batchCounts{incomplete: map[string]int64{}}
	gen := p.meta.generation()
	original := rms.Len()
	for i := range original {
		rm := rms.At(i)
		cluster := resourceCluster(rm.Resource())
		type refGroup struct {
			entity  groupKey
			rm      pmetric.ResourceMetrics
			scopes  map[int]pmetric.ScopeMetrics
			metrics map[[2]int]pmetric.Metric
			count   int64
		}
		groups := map[groupKey]*refGroup{}
		var order []*refGroup
		for si, sm := range rm.ScopeMetrics().All() {
			mi := -1
			sm.Metrics().RemoveIf(func(m pmetric.Metric) bool {
				mi++
				if !isDCGMSeries(m.Name()) {
					return false
				}
				dps, ok := numberPoints(m)
				if !ok {
					counts.incomplete[reasonUnsupportedType]++
					return false
				}
				for _, dp := range dps.All() {
					en := p.enricher.compute(dp.Attributes(), cluster, gen)
					e := en.entity
					key := groupKey{e.Cluster, e.Node, e.Namespace, e.Pod, e.Container, e.PodUID}
					g, ok := groups[key]
					if !ok {
						g = &refGroup{entity: key, rm: pmetric.NewResourceMetrics(), scopes: map[int]pmetric.ScopeMetrics{}, metrics: map[[2]int]pmetric.Metric{}}
						rm.Resource().CopyTo(g.rm.Resource())
						g.rm.SetSchemaUrl(rm.SchemaUrl())
						p.setResource(g.rm.Resource().Attributes(), e, en.nodeUnresolved)
						groups[key] = g
						order = append(order, g)
					}
					target, ok := g.metrics[[2]int{si, mi}]
					if !ok {
						gsm, ok := g.scopes[si]
						if !ok {
							gsm = g.rm.ScopeMetrics().AppendEmpty()
							sm.Scope().CopyTo(gsm.Scope())
							gsm.SetSchemaUrl(sm.SchemaUrl())
							g.scopes[si] = gsm
						}
						target = gsm.Metrics().AppendEmpty()
						target.SetName(m.Name())
						target.SetDescription(m.Description())
						target.SetUnit(m.Unit())
						m.Metadata().CopyTo(target.Metadata())
						if m.Type() == pmetric.MetricTypeGauge {
							target.SetEmptyGauge()
						} else {
							sum := target.SetEmptySum()
							sum.SetAggregationTemporality(m.Sum().AggregationTemporality())
							sum.SetIsMonotonic(m.Sum().IsMonotonic())
						}
						g.metrics[[2]int{si, mi}] = target
					}
					tdps, _ := numberPoints(target)
					dst := tdps.AppendEmpty()
					dp.CopyTo(dst)
					en.attrs.CopyTo(dst.Attributes())
					g.count++
					for _, r := range en.incomplete {
						counts.incomplete[r]++
					}
				}
				counts.enriched += int64(dps.Len())
				return true
			})
		}
		for _, g := range order {
			if g.entity.namespace != "" {
				if _, ok := p.meta.project(projectKey{cluster: g.entity.cluster, namespace: g.entity.namespace}); !ok {
					counts.incomplete[reasonNoProjectMetadata] += g.count
				}
			}
			if p.cfg.SemconvMetrics {
				for _, sm := range g.rm.ScopeMetrics().All() {
					addSemconvMetrics(sm)
				}
			}
			g.rm.MoveTo(rms.AppendEmpty())
		}
	}
	rms.RemoveIf(func(rm pmetric.ResourceMetrics) bool {
		for _, sm := range rm.ScopeMetrics().All() {
			if sm.Metrics().Len() > 0 {
				return false
			}
		}
		return true
	})
	return counts
}

// mixedBatch has what the bench workload lacks: several input resources (one
// with its own cluster, two with the same label sets), several scopes, other series between DCGM ones, sums,
// a DCGM histogram, a pod holding two GPUs, unallocated GPUs, non-string and
// unknown labels, an exporter pod in Hostname and an unknown MIG profile.
func mixedBatch(t testing.TB) pmetric.Metrics {
	t.Helper()
	md := pmetric.NewMetrics()
	gpu := func(uuid, idx string, extra map[string]any) map[string]any {
		l := map[string]any{"UUID": uuid, "gpu": idx, "modelName": "NVIDIA A100-SXM4-80GB", "Hostname": "wrk-1", "DCGM_FI_DRIVER_VERSION": "550.90.07"}
		for k, v := range extra {
			l[k] = v
		}
		return l
	}
	sets := []map[string]any{
		gpu("GPU-a", "0", map[string]any{"namespace": "team-a", "pod": "job-1", "container": "main"}),
		gpu("GPU-b", "1", map[string]any{"namespace": "team-a", "pod": "job-1", "container": "main"}),
		gpu("GPU-c", "2", nil),
		gpu("GPU-d", "3", map[string]any{"GPU_I_PROFILE": "3g.40gb", "GPU_I_ID": "1", "exported_namespace": "team-b", "exported_pod": "job-2", "namespace": "nvidia-gpu-operator", "pod": "nvidia-dcgm-exporter-x7k2p"}),
		gpu("GPU-d", "3", map[string]any{"GPU_I_PROFILE": "9g.99gb", "GPU_I_ID": "2", "pod_uid": "u-1", "exported_namespace": "team-b", "exported_pod": "job-3"}),
		{"UUID": "GPU-e", "gpu": "0", "Hostname": "nvidia-dcgm-exporter-abcde", "namespace": "team-c", "pod": "job-4", "weird": true, "tags": []any{"a", 1}, "pci_bus_id": 17},
		{"Hostname": 42},
	}
	for r, cluster := range []string{"", "nerc-ocp-test", ""} {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
		rm.Resource().Attributes().PutStr("service.name", "dcgm-exporter")
		if cluster != "" {
			rm.Resource().Attributes().PutStr("k8s.cluster.name", cluster)
		}
		for s := range 2 {
			sm := rm.ScopeMetrics().AppendEmpty()
			sm.Scope().SetName("prometheusreceiver")
			sm.Scope().SetVersion(string(rune('0' + s)))
			gauge(t, sm, "DCGM_FI_DEV_GPU_UTIL", float64(10*r+s), sets...)
			gauge(t, sm, "node_cpu_seconds_total", 1, map[string]any{"cpu": "0"})
			gauge(t, sm, "DCGM_FI_PROF_GR_ENGINE_ACTIVE", 0.5, sets[3:]...)
			gauge(t, sm, "DCGM_FI_DEV_FB_USED", 1000, sets[:2]...)
			gauge(t, sm, "DCGM_FI_DEV_FB_FREE", 80000, sets[:2]...)
			energy := sm.Metrics().AppendEmpty()
			energy.SetName("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION")
			energy.SetDescription("Total energy consumption since boot (in mJ).")
			energy.SetUnit("mJ")
			energy.Metadata().PutStr("prometheus.type", "counter")
			sum := energy.SetEmptySum()
			sum.SetIsMonotonic(true)
			sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
			for i, l := range sets {
				dp := sum.DataPoints().AppendEmpty()
				dp.SetIntValue(int64(1000 * (i + 1)))
				dp.SetStartTimestamp(1_700_000_000_000_000_000)
				dp.SetTimestamp(1_800_000_000_000_000_000)
				dp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(i == 2))
				dp.Exemplars().AppendEmpty().SetDoubleValue(1)
				require.NoError(t, dp.Attributes().FromRaw(l))
			}
			hist := sm.Metrics().AppendEmpty()
			hist.SetName("DCGM_FI_CUSTOM_HISTOGRAM")
			hist.SetEmptyHistogram().DataPoints().AppendEmpty().SetCount(3)
			gauge(t, sm, "dcgm_fi_dev_gpu_temp", 40, sets[1], sets[0])
		}
	}
	// A resource with no DCGM series passes untouched.
	other := md.ResourceMetrics().AppendEmpty()
	other.Resource().Attributes().PutStr("service.name", "node-exporter")
	gauge(t, other.ScopeMetrics().AppendEmpty(), "node_load1", 0.3, map[string]any{"instance": "wrk-1"})
	// An empty scope list and an empty scope do not confuse regrouping.
	md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	return md
}

func newRawProcessor(t *testing.T, mutate func(*Config)) *gpuModelProcessor {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.Hub = "moc"
	cfg.Cluster.Name = "nerc-ocp-prod"
	cfg.Metadata.File.Path = "testdata/projects.yaml"
	if mutate != nil {
		mutate(cfg)
	}
	p, err := newGPUModelProcessor(processortest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	require.NoError(t, p.start(context.Background(), nil))
	t.Cleanup(func() { require.NoError(t, p.shutdown(context.Background())) })
	return p
}

// TestEnrichBatchMatchesReference runs batches through enrichBatch (with its
// caches warm from earlier batches) and through referenceEnrichBatch, and
// requires byte-identical output and the same counts.
func TestEnrichBatchMatchesReference(t *testing.T) {
	workload, _ := benchWorkload(t)
	batches := []pmetric.Metrics{mixedBatch(t), workload[0], mixedBatch(t), workload[1], workload[2], mixedBatch(t)}
	for _, semconv := range []bool{false, true} {
		optimized := newRawProcessor(t, func(c *Config) { c.SemconvMetrics = semconv })
		reference := newRawProcessor(t, func(c *Config) { c.SemconvMetrics = semconv })
		for i, in := range batches {
			got, want := pmetric.NewMetrics(), pmetric.NewMetrics()
			in.CopyTo(got)
			in.CopyTo(want)
			gotCounts := optimized.enrichBatch(got.ResourceMetrics())
			wantCounts := referenceEnrichBatch(reference, want.ResourceMetrics())
			assert.Equal(t, wantCounts, gotCounts, "batch %d, semconv %v: counts", i, semconv)
			require.Equal(t, want.DataPointCount(), got.DataPointCount(), "batch %d: no point lost or added", i)
			var m pmetric.ProtoMarshaler
			gotBytes, err := m.MarshalMetrics(got)
			require.NoError(t, err)
			wantBytes, err := m.MarshalMetrics(want)
			require.NoError(t, err)
			if !assert.Equal(t, wantBytes, gotBytes, "batch %d, semconv %v: output differs from the reference", i, semconv) {
				var j pmetric.JSONMarshaler
				gj, _ := j.MarshalMetrics(got)
				wj, _ := j.MarshalMetrics(want)
				assert.JSONEq(t, string(wj), string(gj))
			}
		}
	}
}

// TestReferenceSeesTheWorkload guards the reference comparison itself: the
// bench workload and the mixed batch must actually be regrouped and enriched.
func TestReferenceSeesTheWorkload(t *testing.T) {
	workload, points := benchWorkload(t)
	p := newRawProcessor(t, nil)
	md := pmetric.NewMetrics()
	workload[0].CopyTo(md)
	counts := referenceEnrichBatch(p, md.ResourceMetrics())
	assert.Equal(t, int64(points/len(workload)), counts.enriched)
	assert.Greater(t, md.ResourceMetrics().Len(), 100, "one resource per pod")
	mixed := mixedBatch(t)
	counts = referenceEnrichBatch(p, mixed.ResourceMetrics())
	for _, r := range []string{reasonUnknownMIGProfile, reasonNoGPUIdentity, reasonNodeUnresolved, reasonUnsupportedType, reasonNoProjectMetadata} {
		assert.Positive(t, counts.incomplete[r], r)
	}
	enriched := 0
	for _, pt := range flatten(mixed) {
		if _, ok := pt.attrs["hw.id"]; ok && pt.resource["k8s.node.name"] != nil {
			enriched++
		}
	}
	assert.Positive(t, enriched)
}

// TestHashCollisionIsNotTrusted gives two label sets one cache key: the second
// must get its own enrichment, and the first must keep its own.
func TestHashCollisionIsNotTrusted(t *testing.T) {
	p := newRawProcessor(t, nil)
	a, b := pcommon.NewMap(), pcommon.NewMap()
	a.PutStr("UUID", "GPU-a")
	a.PutStr("Hostname", "n1")
	b.PutStr("UUID", "GPU-b")
	b.PutStr("Hostname", "n1")
	gen := p.meta.generation()
	const key = 42
	enA := p.enricher.shared(key, a, "", gen)
	enB := p.enricher.shared(key, b, "", gen)
	enC := p.enricher.shared(key, a, "other-cluster", gen)
	assert.Equal(t, "GPU-a", enA.entity.GPUUUID)
	assert.Equal(t, "GPU-b", enB.entity.GPUUUID)
	assert.Equal(t, "other-cluster", enC.entity.Cluster)
	assert.Same(t, enA, p.enricher.shared(key, a, "", gen))

	bc := p.enricher.newBatchCache()
	bc.byHash[p.enricher.hash(b, "")] = &seen{en: enA}
	assert.Equal(t, "GPU-b", p.enricher.enrich(bc, b, "").en.entity.GPUUUID)
}
