package fileexporter

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/nerc-project/ai-telemetry-collector/exporter/fileexporter/internal/metadata"
)

// BenchmarkExportDCGMScrape appends one recorded DCGM scrape (81 data points, as
// the prometheus receiver produced it) per operation, synchronously (no queue),
// the same workload as internal/bench/upstream's benchmark of upstream's exporter.
func BenchmarkExportDCGMScrape(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "otlp", "dcgm-scrape-metrics.json"))
	require.NoError(b, err)
	md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(raw)
	require.NoError(b, err)

	cfg := createDefaultConfig().(*Config)
	cfg.Path = filepath.Join(b.TempDir(), "out.jsonl")
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	ctx := context.Background()
	exp, err := NewFactory().CreateMetrics(ctx, exportertest.NewNopSettings(metadata.Type), cfg)
	require.NoError(b, err)
	require.NoError(b, exp.Start(ctx, componenttest.NewNopHost()))
	defer func() { require.NoError(b, exp.Shutdown(ctx)) }()

	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if err := exp.ConsumeMetrics(ctx, md); err != nil {
			b.Fatal(err)
		}
	}
}
