package fileexporter

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/nerc-project/ai-telemetry-collector/exporter/fileexporter/internal/metadata"
	"github.com/nerc-project/ai-telemetry-collector/exporter/fileexporter/internal/metadatatest"
)

func sampleTraces(name string) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("k8s.namespace.name", "team-a")
	span := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	span.SetName(name)
	span.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	span.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	span.SetStartTimestamp(1_700_000_000_000_000_000)
	span.SetEndTimestamp(1_700_000_360_000_000_000)
	return td
}

func sampleMetrics(value float64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("k8s.node.name", "gpu-node-1")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("DCGM_FI_DEV_GPU_UTIL")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetDoubleValue(value)
	dp.Attributes().PutStr("UUID", "GPU-585834da-79ca-0599-5140-4ffdb131ae93")
	dp.SetTimestamp(1_700_000_000_000_000_000)
	return md
}

func sampleLogs(body string) plog.Logs {
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Body().SetStr(body)
	return ld
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	var lines [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	require.NoError(t, sc.Err())
	return lines
}

// TestAllSignalsRoundTrip runs the exporters the way the collector does (through
// exporterhelper's queue) and reads every line back with pdata's own OTLP JSON
// decoders, so the file is exactly what upstream tooling reads.
func TestAllSignalsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "dir", "out.jsonl")
	cfg := createDefaultConfig().(*Config)
	cfg.Path = path
	f := NewFactory()
	set := exportertest.NewNopSettings(metadata.Type)
	ctx := context.Background()

	te, err := f.CreateTraces(ctx, set, cfg)
	require.NoError(t, err)
	me, err := f.CreateMetrics(ctx, set, cfg)
	require.NoError(t, err)
	le, err := f.CreateLogs(ctx, set, cfg)
	require.NoError(t, err)
	host := componenttest.NewNopHost()
	require.NoError(t, te.Start(ctx, host))
	require.NoError(t, me.Start(ctx, host))
	require.NoError(t, le.Start(ctx, host))

	require.NoError(t, te.ConsumeTraces(ctx, sampleTraces("gpu.usage")))
	require.NoError(t, me.ConsumeMetrics(ctx, sampleMetrics(42.5)))
	require.NoError(t, le.ConsumeLogs(ctx, sampleLogs("notification")))

	// Shutdown drains the queue before the file is closed.
	require.NoError(t, te.Shutdown(ctx))
	require.NoError(t, me.Shutdown(ctx))
	require.NoError(t, le.Shutdown(ctx))

	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	lines := readLines(t, path)
	require.Len(t, lines, 3)
	var traces, metrics, logs int
	for _, line := range lines {
		if td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(line); err == nil && td.SpanCount() > 0 {
			assert.Equal(t, "gpu.usage", td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Name())
			traces++
			continue
		}
		if md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(line); err == nil && md.DataPointCount() > 0 {
			dp := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0)
			assert.InDelta(t, 42.5, dp.DoubleValue(), 0)
			metrics++
			continue
		}
		if ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(line); err == nil && ld.LogRecordCount() > 0 {
			assert.Equal(t, "notification", ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body().Str())
			logs++
			continue
		}
		t.Errorf("line is not an OTLP JSON export request: %s", line)
	}
	assert.Equal(t, []int{1, 1, 1}, []int{traces, metrics, logs})
}

// TestAppendsAcrossRestarts checks that a restarted collector adds to the file
// instead of truncating it.
func TestAppendsAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	for i := range 2 {
		cfg := createDefaultConfig().(*Config)
		cfg.Path = path
		me, err := NewFactory().CreateMetrics(context.Background(), exportertest.NewNopSettings(metadata.Type), cfg)
		require.NoError(t, err)
		require.NoError(t, me.Start(context.Background(), componenttest.NewNopHost()))
		require.NoError(t, me.ConsumeMetrics(context.Background(), sampleMetrics(float64(i))))
		require.NoError(t, me.Shutdown(context.Background()))
	}
	lines := readLines(t, path)
	require.Len(t, lines, 2)
	for i, line := range lines {
		md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(line)
		require.NoError(t, err)
		got := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0).DoubleValue()
		assert.InDelta(t, float64(i), got, 0)
	}
}

// TestConcurrentWritersNeverInterleave sends from many goroutines through two
// components that name the same file; every line must still decode whole.
func TestConcurrentWritersNeverInterleave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	ctx := context.Background()
	newExporter := func() *fileExporter {
		cfg := createDefaultConfig().(*Config)
		cfg.Path = path
		fe, err := newFileExporter(exportertest.NewNopSettings(metadata.Type), cfg)
		require.NoError(t, err)
		require.NoError(t, fe.start(ctx, componenttest.NewNopHost()))
		return fe
	}
	a, b := newExporter(), newExporter()
	require.Same(t, a.writer, b.writer, "two components naming one path must share its writer")

	const perWriter = 200
	var wg sync.WaitGroup
	for _, fe := range []*fileExporter{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				assert.NoError(t, fe.pushMetrics(ctx, sampleMetrics(float64(i))))
			}
		}()
	}
	wg.Wait()
	require.NoError(t, a.shutdown(ctx))
	// The file stays open for the remaining user.
	require.NoError(t, b.pushMetrics(ctx, sampleMetrics(-1)))
	require.NoError(t, b.shutdown(ctx))

	lines := readLines(t, path)
	require.Len(t, lines, 2*perWriter+1)
	for _, line := range lines {
		_, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(line)
		require.NoError(t, err, "line %q", line)
	}
}

func TestStartFailsWhenDirectoryCannotBeCreated(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "not-a-dir")
	require.NoError(t, os.WriteFile(blocker, []byte("x"), 0o600))

	cfg := createDefaultConfig().(*Config)
	cfg.Path = filepath.Join(blocker, "out.jsonl")
	me, err := NewFactory().CreateMetrics(context.Background(), exportertest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	err = me.Start(context.Background(), componenttest.NewNopHost())
	require.ErrorContains(t, err, "not-a-dir")
}

func TestWriteAfterShutdownIsRetryableAndCounted(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := metadatatest.NewSettings(tel)

	cfg := createDefaultConfig().(*Config)
	cfg.Path = filepath.Join(t.TempDir(), "out.jsonl")
	fe, err := newFileExporter(set, cfg)
	require.NoError(t, err)
	require.NoError(t, fe.start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, fe.pushLogs(context.Background(), sampleLogs("kept")))
	require.NoError(t, fe.shutdown(context.Background()))

	err = fe.pushLogs(context.Background(), sampleLogs("late"))
	require.ErrorIs(t, err, errNotStarted)
	assert.False(t, consumererror.IsPermanent(err), "a write failure must stay retryable")

	line := readLines(t, cfg.Path)[0]
	metadatatest.AssertEqualExporterFileBytesWritten(t, tel, []metricdata.DataPoint[int64]{{Value: int64(len(line) + 1)}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualExporterFileWriteErrors(t, tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
}

// TestSynchronousWhenQueueDisabled checks that with the queue off, a write
// error reaches the caller (so a receiver can tell its client to retry).
func TestSynchronousWhenQueueDisabled(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Path = filepath.Join(t.TempDir(), "out.jsonl")
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.BackOffConfig.Enabled = false
	te, err := NewFactory().CreateTraces(context.Background(), exportertest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	require.NoError(t, te.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, te.ConsumeTraces(context.Background(), sampleTraces("first")))
	require.Len(t, readLines(t, cfg.Path), 1, "without a queue the line is written before ConsumeTraces returns")
	require.NoError(t, te.Shutdown(context.Background()))
}
