package gpumodelprocessor

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/nerc-project/ai-telemetry-collector/processor/gpumodelprocessor/internal/metadata"
)

// benchWorkload is testdata/bench/dcgm-workload.json as pipeline batches: one
// batch per scrape, as the prometheus receiver delivers them. The upstream
// comparison in internal/bench/upstream reads the same file.
func benchWorkload(b testing.TB) (scrapes []pmetric.Metrics, points int) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "bench", "dcgm-workload.json"))
	require.NoError(b, err)
	var w struct {
		Metrics []string            `json:"metrics"`
		Scrapes int                 `json:"scrapes"`
		Series  []map[string]string `json:"series"`
	}
	require.NoError(b, json.Unmarshal(raw, &w))
	start := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	for s := range w.Scrapes {
		md := pmetric.NewMetrics()
		sm := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
		ts := pcommon.NewTimestampFromTime(start.Add(time.Duration(s) * 30 * time.Second))
		for _, name := range w.Metrics {
			m := sm.Metrics().AppendEmpty()
			m.SetName(name)
			dps := m.SetEmptyGauge().DataPoints()
			for i, labels := range w.Series {
				dp := dps.AppendEmpty()
				dp.SetTimestamp(ts)
				dp.SetDoubleValue(float64(i % 100))
				// As the prometheus receiver delivers them: sorted by
				// name, each series with its own strings.
				for _, k := range slices.Sorted(maps.Keys(labels)) {
					dp.Attributes().PutStr(strings.Clone(k), strings.Clone(labels[k]))
				}
			}
		}
		scrapes = append(scrapes, md)
		points += md.DataPointCount()
	}
	return scrapes, points
}

func runScrapes(b *testing.B, scrapes []pmetric.Metrics, points int, consume func(pmetric.Metrics)) {
	b.ReportAllocs()
	var busy time.Duration
	var cpu int64
	for b.Loop() {
		// Fresh batches each time, not measured: ns/op, B/op and allocs/op
		// are those of processing alone.
		b.StopTimer()
		batch := make([]pmetric.Metrics, len(scrapes))
		for i, md := range scrapes {
			batch[i] = pmetric.NewMetrics()
			md.CopyTo(batch[i])
		}
		b.StartTimer()
		start := time.Now()
		c0 := cpuNow()
		for _, md := range batch {
			consume(md)
		}
		cpu += cpuNow() - c0
		busy += time.Since(start)
	}
	b.ReportMetric(float64(busy.Nanoseconds())/float64(b.N*points), "ns/point")
	b.ReportMetric(float64(cpu)/float64(b.N*points), "cpu-ns/point")
}

// BenchmarkGPUModelProcessor enriches about 100,000 DCGM data points (281 GPUs
// and slices, 21 fields, 17 scrapes) with this processor, topology and
// Keycloak resource on every point, metadata from kube-state-metrics off.
func BenchmarkGPUModelProcessor(b *testing.B) {
	scrapes, points := benchWorkload(b)
	cfg := createDefaultConfig().(*Config)
	cfg.Hub = "moc"
	sink := consumertest.NewNop()
	p, err := NewFactory().CreateMetrics(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, sink)
	require.NoError(b, err)
	require.NoError(b, p.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(b, p.Shutdown(context.Background())) }()
	runScrapes(b, scrapes, points, func(md pmetric.Metrics) {
		if err := p.ConsumeMetrics(context.Background(), md); err != nil {
			b.Fatal(err)
		}
	})
}

// floorAttributes is a precomputed attribute set of the processor's output
// size (11 on a whole GPU).
func floorAttributes(b *testing.B) pcommon.Map {
	enriched := pcommon.NewMap()
	require.NoError(b, enriched.FromRaw(map[string]any{
		"hw.type": "gpu", "hw.vendor": "NVIDIA", "hw.id": "GPU-3f1c9a2e-7b4d-4e1a-9c55-0d2b8e6f1a70", "hw.name": "nvidia0",
		"hw.model": "NVIDIA A100-SXM4-80GB", "hw.driver_version": "550.90.07", "nvidia.gpu.index": "0",
		"nvidia.gpu.pci_bus_id": "00000000:17:00.0", "aitelemetry.gpu.allocated": true, "aitelemetry.gpu.slice.fraction": 1.0,
		"aitelemetry.ngsi_ld.id": "urn:ngsi-ld:GpuDevice:nerc-ocp-prod:wrk-001:0",
	}))
	return enriched
}

// BenchmarkFloorCopyPrecomputedAttributes is the floor the issue sets: copying
// a precomputed attribute set of the processor's output size onto each point.
func BenchmarkFloorCopyPrecomputedAttributes(b *testing.B) {
	scrapes, points := benchWorkload(b)
	enriched := floorAttributes(b)
	runScrapes(b, scrapes, points, func(md pmetric.Metrics) {
		for _, rm := range md.ResourceMetrics().All() {
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					for _, dp := range m.Gauge().DataPoints().All() {
						enriched.CopyTo(dp.Attributes())
					}
				}
			}
		}
	})
}

// cpuNow is the CPU time of the whole process (every thread, the garbage
// collector's included): on a shared machine it is steadier than wall time.
func cpuNow() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkFloorRewritePrecomputedAttributes is the same floor written the
// way the processor writes attributes (enrichment.rewrite: the point's label
// values are reused instead of allocated), so that the floor stays the least
// work that yields the enriched attributes.
func BenchmarkFloorRewritePrecomputedAttributes(b *testing.B) {
	scrapes, points := benchWorkload(b)
	en := &enrichment{attrs: floorAttributes(b)}
	en.shape = newShape(en.attrs, nil)
	require.NotNil(b, en.shape)
	cells := newCells()
	runScrapes(b, scrapes, points, func(md pmetric.Metrics) {
		for _, rm := range md.ResourceMetrics().All() {
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					for _, dp := range m.Gauge().DataPoints().All() {
						en.rewrite(dp.Attributes(), cells)
					}
				}
			}
		}
	})
}
