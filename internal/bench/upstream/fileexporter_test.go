package upstream

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// BenchmarkUpstreamFileExporterDCGMScrape is the workload of
// exporter/fileexporter's BenchmarkExportDCGMScrape on upstream's file exporter
// (v0.161.0, format json, default settings).
func BenchmarkUpstreamFileExporterDCGMScrape(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "otlp", "dcgm-scrape-metrics.json"))
	if err != nil {
		b.Fatal(err)
	}
	md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(raw)
	if err != nil {
		b.Fatal(err)
	}

	f := fileexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*fileexporter.Config)
	cfg.Path = filepath.Join(b.TempDir(), "out.jsonl")
	ctx := context.Background()
	exp, err := f.CreateMetrics(ctx, exportertest.NewNopSettings(f.Type()), cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := exp.Start(ctx, componenttest.NewNopHost()); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := exp.Shutdown(ctx); err != nil {
			b.Fatal(err)
		}
	}()

	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if err := exp.ConsumeMetrics(ctx, md); err != nil {
			b.Fatal(err)
		}
	}
}
