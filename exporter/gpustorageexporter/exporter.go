package gpustorageexporter // import "github.com/nerc-project/ai-telemetry-collector/exporter/gpustorageexporter"

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/nerc-project/ai-telemetry-collector/exporter/gpustorageexporter/internal/metadata"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

var (
	withFull  = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "full")))
	withOther = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "other")))
)

type storageExporter struct {
	cfg       *Config
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
	writer    gpustore.Writer
}

func newStorageExporter(set exporter.Settings, cfg *Config) (*storageExporter, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return &storageExporter{cfg: cfg, logger: set.Logger, telemetry: tb}, nil
}

// start finds the store and refuses one this distribution does not write
// (ClickHouse is written by the contrib clickhouse exporter).
func (e *storageExporter) start(ctx context.Context, host component.Host) error {
	store, err := gpustore.Lookup(host, e.cfg.Storage)
	if err != nil {
		return err
	}
	if err := store.WriteMetrics(ctx, pmetric.NewMetrics()); errors.Is(err, gpustore.ErrReadOnly) {
		return fmt.Errorf("storage %q: %w: write it with the clickhouse exporter", e.cfg.Storage, err)
	}
	e.writer = store
	return nil
}

func (e *storageExporter) pushMetrics(ctx context.Context, md pmetric.Metrics) error {
	return e.counted(ctx, e.writer.WriteMetrics(ctx, md))
}

func (e *storageExporter) pushTraces(ctx context.Context, td ptrace.Traces) error {
	return e.counted(ctx, e.writer.WriteTraces(ctx, td))
}

func (e *storageExporter) counted(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	reason := withOther
	if errors.Is(err, gpustore.ErrFull) {
		reason = withFull
	}
	e.telemetry.GpuStorageExporterWriteErrors.Add(ctx, 1, reason)
	e.logger.Warn("GPU store write failed", zap.Error(err))
	return err
}
