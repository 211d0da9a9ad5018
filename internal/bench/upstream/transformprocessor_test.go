package upstream

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

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/transformprocessor"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processortest"
)

// dcgmWorkload builds the batches of processor/gpumodelprocessor's
// benchmark from the same file (the two modules cannot share code: they pin
// different collector releases).
func dcgmWorkload(b *testing.B) (scrapes []pmetric.Metrics, points int) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "bench", "dcgm-workload.json"))
	if err != nil {
		b.Fatal(err)
	}
	var w struct {
		Metrics []string            `json:"metrics"`
		Scrapes int                 `json:"scrapes"`
		Series  []map[string]string `json:"series"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		b.Fatal(err)
	}
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

// ottlMapping is the nearest OTTL equivalent of the gpumodel processor's data
// point mapping (without regrouping, metadata or MIG fractions, which OTTL
// cannot express): 15 statements.
var ottlMapping = []any{
	`set(datapoint.attributes["hw.id"], datapoint.attributes["UUID"])`,
	`set(datapoint.attributes["hw.id"], Concat([datapoint.attributes["UUID"], datapoint.attributes["GPU_I_ID"]], "/")) where datapoint.attributes["GPU_I_ID"] != nil`,
	`set(datapoint.attributes["hw.parent"], datapoint.attributes["UUID"]) where datapoint.attributes["GPU_I_ID"] != nil`,
	`set(datapoint.attributes["hw.type"], "gpu")`,
	`set(datapoint.attributes["hw.vendor"], "NVIDIA")`,
	`set(datapoint.attributes["hw.model"], datapoint.attributes["modelName"])`,
	`set(datapoint.attributes["hw.name"], datapoint.attributes["device"])`,
	`set(datapoint.attributes["hw.driver_version"], datapoint.attributes["DCGM_FI_DRIVER_VERSION"])`,
	`set(datapoint.attributes["nvidia.gpu.index"], datapoint.attributes["gpu"])`,
	`set(datapoint.attributes["nvidia.mig.profile"], datapoint.attributes["GPU_I_PROFILE"]) where datapoint.attributes["GPU_I_PROFILE"] != nil`,
	`set(datapoint.attributes["k8s.node.name"], datapoint.attributes["Hostname"])`,
	`set(datapoint.attributes["k8s.namespace.name"], datapoint.attributes["exported_namespace"]) where datapoint.attributes["exported_namespace"] != nil`,
	`set(datapoint.attributes["k8s.pod.name"], datapoint.attributes["exported_pod"]) where datapoint.attributes["exported_pod"] != nil`,
	`set(datapoint.attributes["aitelemetry.keycloak.resource"], Concat(["HUB-moc-CLUSTER", datapoint.attributes["cluster"], "PROJECT", datapoint.attributes["exported_namespace"]], "-")) where datapoint.attributes["exported_namespace"] != nil`,
	`delete_matching_keys(datapoint.attributes, "^(UUID|GPU_I_ID|GPU_I_PROFILE|modelName|device|DCGM_FI_DRIVER_VERSION|gpu|Hostname|exported_.*|namespace|pod|container|pci_bus_id)$")`,
}

// BenchmarkUpstreamTransformOTTL runs the same ~100,000 DCGM points as
// BenchmarkGPUModelProcessor through upstream's transform processor (v0.161.0,
// the newest that builds here).
func BenchmarkUpstreamTransformOTTL(b *testing.B) {
	scrapes, points := dcgmWorkload(b)
	f := transformprocessor.NewFactory()
	cfg := f.CreateDefaultConfig()
	if err := confmap.NewFromStringMap(map[string]any{
		"error_mode":        "ignore",
		"metric_statements": []any{map[string]any{"context": "datapoint", "statements": ottlMapping}},
	}).Unmarshal(cfg); err != nil {
		b.Fatal(err)
	}
	p, err := f.CreateMetrics(context.Background(), processortest.NewNopSettings(f.Type()), cfg, consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = p.Shutdown(context.Background()) }()

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
			if err := p.ConsumeMetrics(context.Background(), md); err != nil {
				b.Fatal(err)
			}
		}
		cpu += cpuNow() - c0
		busy += time.Since(start)
	}
	b.ReportMetric(float64(busy.Nanoseconds())/float64(b.N*points), "ns/point")
	b.ReportMetric(float64(cpu)/float64(b.N*points), "cpu-ns/point")
}

// cpuNow is the CPU time of the whole process (every thread, the garbage
// collector's included): on a shared machine it is steadier than wall time.
func cpuNow() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
