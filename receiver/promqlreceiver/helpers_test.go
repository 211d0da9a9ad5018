package promqlreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/nerc-project/ai-telemetry-collector/internal/telemetrytest"
	"github.com/nerc-project/ai-telemetry-collector/receiver/promqlreceiver/internal/metadata"
	"github.com/nerc-project/ai-telemetry-collector/receiver/promqlreceiver/internal/metadatatest"
)

// extensionsHost offers the named extensions.
type extensionsHost struct {
	component.Host
	exts map[component.ID]component.Component
}

func (h extensionsHost) GetExtensions() map[component.ID]component.Component { return h.exts }

// harness is a receiver whose runs the test drives one by one, on a clock it sets.
type harness struct {
	t    *testing.T
	rcv  *promqlReceiver
	tel  *componenttest.Telemetry
	logs *observer.ObservedLogs
	now  time.Time
	// states are the queries' failure states, kept across runs as loop does.
	states map[string]*queryState
}

// newHarness creates and sets up (without starting the schedules) a receiver.
// The component ID is fixed, as the collector gives a receiver the same ID in
// every run: the storage is keyed by it.
func newHarness(t *testing.T, cfg *Config, next consumer.Metrics, host component.Host) *harness {
	t.Helper()
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	set := metadatatest.NewSettings(tel)
	set.ID = component.NewIDWithName(metadata.Type, "gpu")
	core, logs := observer.New(zap.DebugLevel)
	set.Logger = zap.New(core)
	r, err := newReceiver(set, cfg, next)
	require.NoError(t, err)
	h := &harness{t: t, rcv: r, tel: tel, logs: logs, states: map[string]*queryState{}}
	r.now = func() time.Time { return h.now }
	require.NoError(t, r.setup(context.Background(), host))
	return h
}

// runAll runs every generated query once at the given time.
func (h *harness) runAll(at time.Time) {
	h.now = at
	for _, q := range h.rcv.queries {
		st := h.state(q.id)
		h.rcv.run(context.Background(), q, st)
	}
}

func (h *harness) state(id string) *queryState {
	if h.states[id] == nil {
		h.states[id] = &queryState{}
	}
	return h.states[id]
}

func (h *harness) shutdown() {
	h.t.Helper()
	require.NoError(h.t, h.rcv.Shutdown(context.Background()))
}

// count sums the receiver's counter over the points carrying all attrs.
func (h *harness) count(name string, attrs ...attribute.KeyValue) int64 {
	return countMetric(h.tel, name, attrs...)
}

func countMetric(tel *componenttest.Telemetry, name string, attrs ...attribute.KeyValue) int64 {
	return telemetrytest.SumCounter(tel, "otelcol_receiver_promql_"+name, attrs...)
}

// point is one emitted data point, flattened for comparisons.
type point struct {
	metric string
	ts     time.Time
	value  float64
	attrs  map[string]any
}

func pointsOf(mds []pmetric.Metrics) []point {
	var out []point
	for _, md := range mds {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			sms := md.ResourceMetrics().At(i).ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				ms := sms.At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					dps := ms.At(k).Gauge().DataPoints()
					for l := 0; l < dps.Len(); l++ {
						dp := dps.At(l)
						out = append(out, point{ms.At(k).Name(), dp.Timestamp().AsTime().UTC(), dp.DoubleValue(), dp.Attributes().AsRaw()})
					}
				}
			}
		}
	}
	return out
}

func newHarnessSettings(t *testing.T) receiver.Settings {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return metadatatest.NewSettings(tel)
}
