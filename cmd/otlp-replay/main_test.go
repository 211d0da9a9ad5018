package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/nerc-project/ai-telemetry-collector/internal/dashboardfixture"
)

const recording = "../../tests/dashboards/testdata"

// TestReplayEndsAtEnd posts the recording to a receiver and checks what
// arrives: every request, every sample moved by the same amount, the last
// sample at -end, and the spans moved with them.
func TestReplayEndsAtEnd(t *testing.T) {
	var (
		mu      sync.Mutex
		metrics []pmetric.Metrics
		traces  []ptrace.Traces
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		assert.Equal(t, "application/x-protobuf", r.Header.Get("Content-Type"))
		mu.Lock()
		defer mu.Unlock()
		switch r.URL.Path {
		case "/v1/metrics":
			md, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(body)
			require.NoError(t, err)
			metrics = append(metrics, md)
		case "/v1/traces":
			td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(body)
			require.NoError(t, err)
			traces = append(traces, td)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	end := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	require.NoError(t, run(srv.URL, recording, end.Format(time.RFC3339)))

	origMetrics, err := dashboardfixture.RecordedMetrics(recording)
	require.NoError(t, err)
	origTraces, err := dashboardfixture.RecordedTraces(recording)
	require.NoError(t, err)
	require.Len(t, metrics, len(origMetrics))
	require.Len(t, traces, len(origTraces))

	by := end.Sub(lastMetricTime(origMetrics))
	assert.Equal(t, end, lastMetricTime(metrics).UTC())
	for i := range metrics {
		var want, got []pcommon.Timestamp
		eachPoint(origMetrics[i], func(p timestamped) { want = append(want, p.Timestamp()) })
		eachPoint(metrics[i], func(p timestamped) { got = append(got, p.Timestamp()) })
		require.Len(t, got, len(want), "request %d", i)
		for j := range want {
			assert.Equal(t, want[j].AsTime().Add(by), got[j].AsTime(), "request %d point %d", i, j)
		}
	}
	for i := range traces {
		o, g := origTraces[i].ResourceSpans(), traces[i].ResourceSpans()
		for r := range o.Len() {
			os, gs := o.At(r).ScopeSpans().At(0).Spans(), g.At(r).ScopeSpans().At(0).Spans()
			for s := range os.Len() {
				assert.Equal(t, os.At(s).StartTimestamp().AsTime().Add(by), gs.At(s).StartTimestamp().AsTime())
				assert.Equal(t, os.At(s).EndTimestamp().AsTime().Add(by), gs.At(s).EndTimestamp().AsTime())
			}
		}
	}
}

func TestReplayReportsRefusal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "queue is full", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	err := run(srv.URL, recording, "")
	require.ErrorIs(t, err, errStatus)
	assert.Contains(t, err.Error(), "HTTP 503")
}

func TestShiftKeepsUnsetTimestamps(t *testing.T) {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	dp := m.SetEmptySum().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Unix(100, 0)))
	shiftMetrics(md, time.Hour)
	assert.Equal(t, time.Unix(3700, 0).UTC(), dp.Timestamp().AsTime())
	assert.Zero(t, dp.StartTimestamp(), "an unset start time is not invented")
}
