package gpustorageexporter

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/nerc-project/ai-telemetry-collector/exporter/gpustorageexporter/internal/metadata"
	"github.com/nerc-project/ai-telemetry-collector/exporter/gpustorageexporter/internal/metadatatest"
	"github.com/nerc-project/ai-telemetry-collector/extension/gpustorageextension"
	"github.com/nerc-project/ai-telemetry-collector/internal/dashboardfixture"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore/embedded"
)

const fixtures = "../../tests/dashboards/testdata"

var (
	storageID = component.MustNewID("gpu_storage")
	all       = gpustore.Scope{All: true}
)

type host struct {
	exts map[component.ID]component.Component
}

func (h host) GetExtensions() map[component.ID]component.Component { return h.exts }

// withStorage starts a real gpu_storage extension on an embedded file.
func withStorage(t *testing.T) (host, gpustore.Store) {
	t.Helper()
	cfg := &gpustorageextension.Config{Embedded: &embedded.Config{Path: filepath.Join(t.TempDir(), "gpu.db")}}
	f := gpustorageextension.NewFactory()
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	h := host{exts: map[component.ID]component.Component{storageID: ext}}
	store, err := gpustore.Lookup(h, storageID)
	require.NoError(t, err)
	return h, store
}

func syncConfig() *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Storage = storageID
	// Synchronous, so the test reads what the push wrote.
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	return cfg
}

// TestPipelineDataReachesTheStore runs the exporters (as the collector
// builds them) on the dashboards' recorded pipeline output and reads the
// model back.
func TestPipelineDataReachesTheStore(t *testing.T) {
	ctx := context.Background()
	h, store := withStorage(t)
	cfg := syncConfig()
	f := NewFactory()
	me, err := f.CreateMetrics(ctx, exportertest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	te, err := f.CreateTraces(ctx, exportertest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	require.NoError(t, me.Start(ctx, h))
	require.NoError(t, te.Start(ctx, h))
	defer func() { require.NoError(t, me.Shutdown(ctx)); require.NoError(t, te.Shutdown(ctx)) }()

	for _, md := range readMetrics(t) {
		require.NoError(t, me.ConsumeMetrics(ctx, md))
	}
	for _, td := range readTraces(t) {
		require.NoError(t, te.ConsumeTraces(ctx, td))
	}

	devices, err := store.Devices(ctx, gpustore.Filter{Scope: all})
	require.NoError(t, err)
	assert.Len(t, devices, 4, "the schedule's four GPUs, one of them in MIG mode")
	slices, err := store.Slices(ctx, gpustore.Filter{Scope: all})
	require.NoError(t, err)
	assert.Len(t, slices, 2)
	sessions, err := store.Sessions(ctx, gpustore.Filter{Scope: all, Limit: gpustore.MaxLimit})
	require.NoError(t, err)
	assert.Len(t, sessions, 3, "two gpu.usage sessions and one gpu.idle")
}

// fakeStore fails every write with err: the store's own failures (a full
// disk) are tested with the real one in internal/gpustore/embedded.
type fakeStore struct {
	gpustore.Store
	err error
}

func (s fakeStore) WriteMetrics(context.Context, pmetric.Metrics) error { return s.err }
func (s fakeStore) WriteTraces(context.Context, ptrace.Traces) error    { return s.err }

type fakeProvider struct {
	component.StartFunc
	component.ShutdownFunc
	store gpustore.Store
}

func (p fakeProvider) GPUStore() (gpustore.Store, error) { return p.store, nil }

func TestReadOnlyStoreIsRefusedAtStart(t *testing.T) {
	h := host{exts: map[component.ID]component.Component{storageID: fakeProvider{store: fakeStore{err: fmt.Errorf("clickhouse: %w", gpustore.ErrReadOnly)}}}}
	me, err := NewFactory().CreateMetrics(context.Background(), exportertest.NewNopSettings(metadata.Type), syncConfig())
	require.NoError(t, err)
	err = me.Start(context.Background(), h)
	require.ErrorIs(t, err, gpustore.ErrReadOnly)
	assert.ErrorContains(t, err, "clickhouse exporter")
}

func TestStartFailsWithoutTheExtension(t *testing.T) {
	me, err := NewFactory().CreateMetrics(context.Background(), exportertest.NewNopSettings(metadata.Type), syncConfig())
	require.NoError(t, err)
	require.ErrorContains(t, me.Start(context.Background(), host{}), "extension not found")
}

// TestWriteErrorsAreCountedByReason: a write error goes back to the
// exporter helper (which retries, then drops) and is counted, a full store
// apart from the rest.
func TestWriteErrorsAreCountedByReason(t *testing.T) {
	ctx := context.Background()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(ctx)) })
	e, err := newStorageExporter(metadatatest.NewSettings(tel), syncConfig())
	require.NoError(t, err)

	full := fmt.Errorf("write metrics: %w: database or disk is full", gpustore.ErrFull)
	e.writer = fakeStore{err: full}
	require.ErrorIs(t, e.pushMetrics(ctx, pmetric.NewMetrics()), gpustore.ErrFull)
	require.ErrorIs(t, e.pushTraces(ctx, ptrace.NewTraces()), gpustore.ErrFull)
	other := errors.New("disk I/O error")
	e.writer = fakeStore{err: other}
	require.ErrorIs(t, e.pushMetrics(ctx, pmetric.NewMetrics()), other)

	metadatatest.AssertEqualGpuStorageExporterWriteErrors(t, tel, []metricdata.DataPoint[int64]{
		{Value: 2, Attributes: attribute.NewSet(attribute.String("reason", "full"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("reason", "other"))},
	}, metricdatatest.IgnoreTimestamp())
}

func readMetrics(t *testing.T) []pmetric.Metrics {
	t.Helper()
	out, err := dashboardfixture.RecordedMetrics(fixtures)
	require.NoError(t, err)
	return out
}

func readTraces(t *testing.T) []ptrace.Traces {
	t.Helper()
	out, err := dashboardfixture.RecordedTraces(fixtures)
	require.NoError(t, err)
	return out
}
