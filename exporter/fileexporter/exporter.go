package fileexporter // import "github.com/nerc-project/ai-telemetry-collector/exporter/fileexporter"

import (
	"context"
	"errors"
	"fmt"
	"os"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/nerc-project/ai-telemetry-collector/exporter/fileexporter/internal/metadata"
)

var errNotStarted = errors.New("file exporter is not started")

type fileExporter struct {
	cfg       *Config
	telemetry *metadata.TelemetryBuilder

	tracesMarshaler  ptrace.JSONMarshaler
	metricsMarshaler pmetric.JSONMarshaler
	logsMarshaler    plog.JSONMarshaler

	writer *lineWriter
}

func newFileExporter(set exporter.Settings, cfg *Config) (*fileExporter, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return &fileExporter{cfg: cfg, telemetry: tb}, nil
}

func (e *fileExporter) start(context.Context, component.Host) error {
	w, err := writers.acquire(e.cfg.Path, os.FileMode(e.cfg.FileMode))
	if err != nil {
		return err
	}
	e.writer = w
	return nil
}

func (e *fileExporter) shutdown(context.Context) error {
	defer e.telemetry.Shutdown()
	if e.writer == nil {
		return nil
	}
	err := writers.release(e.writer)
	e.writer = nil
	return err
}

func (e *fileExporter) pushTraces(ctx context.Context, td ptrace.Traces) error {
	buf, err := e.tracesMarshaler.MarshalTraces(td)
	return e.write(ctx, buf, err)
}

func (e *fileExporter) pushMetrics(ctx context.Context, md pmetric.Metrics) error {
	buf, err := e.metricsMarshaler.MarshalMetrics(md)
	return e.write(ctx, buf, err)
}

func (e *fileExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	buf, err := e.logsMarshaler.MarshalLogs(ld)
	return e.write(ctx, buf, err)
}

// write appends one encoded request as one line. Encoding failures can never
// succeed on retry, so they are permanent; write failures (a full disk, say)
// are left retryable.
func (e *fileExporter) write(ctx context.Context, buf []byte, encodeErr error) error {
	if encodeErr != nil {
		e.telemetry.ExporterFileWriteErrors.Add(ctx, 1)
		return consumererror.NewPermanent(fmt.Errorf("encoding OTLP JSON: %w", encodeErr))
	}
	if e.writer == nil {
		e.telemetry.ExporterFileWriteErrors.Add(ctx, 1)
		return errNotStarted
	}
	buf = append(buf, '\n')
	if err := e.writer.writeLine(buf); err != nil {
		e.telemetry.ExporterFileWriteErrors.Add(ctx, 1)
		return fmt.Errorf("appending to %s: %w", e.cfg.Path, err)
	}
	e.telemetry.ExporterFileBytesWritten.Add(ctx, int64(len(buf)))
	return nil
}
