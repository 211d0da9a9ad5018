package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/nerc-project/ai-telemetry-collector/internal/testpeers"
	"github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver"
)

func testPayload() Payload {
	return Payload{RunID: 0xfeed, AlertsPerRequest: 10, StartsAt: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
}

// startReceiver runs the project's alertmanager receiver (no auth) into sink.
func startReceiver(t *testing.T, sink *consumertest.TracesSink) string {
	t.Helper()
	endpoint := "127.0.0.1:" + testpeers.FreePort(t)
	factory := alertmanagerreceiver.NewFactory()
	cfg := factory.CreateDefaultConfig()
	require.NoError(t, confmap.NewFromStringMap(map[string]any{
		"endpoint": endpoint, "hub": "moc", "span_names": map[string]any{"GPUInUse": "gpu.usage"},
	}).Unmarshal(cfg))
	rcv, err := factory.CreateTraces(context.Background(), receivertest.NewNopSettings(factory.Type()), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, rcv.Shutdown(context.Background())) })
	return "http://" + endpoint + "/alerts"
}

// jsonLines writes the sink's traces as the file exporter does, one line per request.
func jsonLines(t *testing.T, batches []ptrace.Traces) [][]byte {
	t.Helper()
	var lines [][]byte
	for _, td := range batches {
		line, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
		require.NoError(t, err)
		lines = append(lines, line)
	}
	return lines
}

func TestRunThroughTheReceiverAndCount(t *testing.T) {
	sink := new(consumertest.TracesSink)
	url := startReceiver(t, sink)
	res, err := Run(context.Background(), Config{
		URL: url, Rate: 400, Duration: 100 * time.Millisecond, Payload: testPayload(),
		Client: &http.Client{Timeout: 10 * time.Second}, MaxInFlight: 100,
	})
	require.NoError(t, err)
	s := res.Summarize()
	require.Equal(t, 40, s.Scheduled)
	require.Equal(t, map[int]int{http.StatusOK: 40}, s.ByStatus)
	assert.Equal(t, 400, s.AcceptedAlerts)
	assert.Equal(t, 400, sink.SpanCount(), "every alert is a new session: one span each")
	assert.LessOrEqual(t, s.P50, s.P99)
	assert.LessOrEqual(t, s.P99, s.Max)

	lines := jsonLines(t, sink.AllTraces())
	require.Len(t, lines, 40, "one consume per notification")
	tests := []struct {
		name   string
		lines  [][]byte
		status map[int]int // request index to the status it is reported with
		want   Tally
		lost   bool
	}{
		{name: "everything once", lines: lines, want: Tally{Spans: 400, Found: 400}},
		{
			name: "a notification's spans written twice", lines: append(append([][]byte{}, lines...), lines[3]),
			want: Tally{Spans: 410, Found: 390, Duplicated: 10}, lost: true,
		},
		{name: "a notification lost", lines: lines[1:], want: Tally{Spans: 390, Found: 390, Missing: 10}, lost: true},
		{
			name: "spans of a refused and of an unanswered request", lines: lines,
			status: map[int]int{5: http.StatusServiceUnavailable, 6: StatusError},
			want:   Tally{Spans: 400, Found: 380, Unexpected: 10, OfUnanswered: 10}, lost: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := *res
			r.Requests = append([]Request{}, res.Requests...)
			for i, st := range tt.status {
				r.Requests[i].Status = st
			}
			got, err := r.Count(bytes.NewReader(bytes.Join(tt.lines, []byte("\n"))))
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.lost, got.Lost())
		})
	}
}

func TestCountRejectsWhatIsNotOTLP(t *testing.T) {
	res := &Result{Config: Config{Payload: testPayload()}, Requests: make([]Request, 1)}
	_, err := res.Count(bytes.NewReader([]byte("{\"resourceSpans\":[]}\nnot json\n")))
	require.ErrorContains(t, err, "output line 2 is not OTLP JSON traces")
}

func TestCountForeignAndWrongName(t *testing.T) {
	p := testPayload()
	res := &Result{Config: Config{Payload: p}, Requests: []Request{{Status: http.StatusOK}}}
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	add := func(name, fp string) {
		sp := spans.AppendEmpty()
		sp.SetName(name)
		if fp != "" {
			sp.Attributes().PutStr("alertmanager.alert.fingerprint", fp)
		}
	}
	add(SpanStart, "")                 // no fingerprint
	add(SpanStart, "0123456789abcdef") // another run
	add(SpanStart, p.Fingerprint(10))  // beyond the run's alerts
	add(SpanSession, p.Fingerprint(0)) // alert 0 is firing: wrong name
	add(SpanSession, p.Fingerprint(1)) // right
	line, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	got, err := res.Count(bytes.NewReader(line))
	require.NoError(t, err)
	assert.Equal(t, Tally{Spans: 2, Found: 2, Missing: 8, WrongName: 1, Foreign: 3}, got)
	assert.True(t, got.Lost())
}

func TestRunRecordsEveryStatus(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1)%3 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Config{
		URL: srv.URL, Rate: 300, Duration: 100 * time.Millisecond, Payload: testPayload(),
		Client: srv.Client(), MaxInFlight: 100,
	})
	require.NoError(t, err)
	s := res.Summarize()
	assert.Equal(t, map[int]int{http.StatusOK: 20, http.StatusServiceUnavailable: 10}, s.ByStatus)
	assert.Equal(t, 200, s.AcceptedAlerts)

	srv.Close()
	res, err = Run(context.Background(), Config{
		URL: srv.URL, Rate: 100, Duration: 50 * time.Millisecond, Payload: testPayload(),
		Client: srv.Client(), MaxInFlight: 100,
	})
	require.NoError(t, err)
	assert.Equal(t, map[int]int{StatusError: 5}, res.Summarize().ByStatus, "a closed server answers nothing")
}

func TestRunConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Rate: 0, Duration: time.Second, Payload: testPayload(), Client: http.DefaultClient, MaxInFlight: 1},
		{Rate: 1, Duration: 0, Payload: testPayload(), Client: http.DefaultClient, MaxInFlight: 1},
		{Rate: 1, Duration: time.Second, Client: http.DefaultClient, MaxInFlight: 1},
		{Rate: 1, Duration: time.Second, Payload: testPayload(), MaxInFlight: 1},
		{Rate: 1, Duration: time.Second, Payload: testPayload(), Client: http.DefaultClient},
	} {
		_, err := Run(context.Background(), cfg)
		require.ErrorIs(t, err, errBadConfig, fmt.Sprintf("%+v", cfg))
	}
}

func TestSummarizePercentiles(t *testing.T) {
	res := &Result{Config: Config{Payload: testPayload()}}
	for i := 1; i <= 1000; i++ {
		res.Requests = append(res.Requests, Request{Status: http.StatusOK, Latency: time.Duration(i) * time.Millisecond})
	}
	res.Requests = append(res.Requests, Request{Status: StatusSkipped})
	s := res.Summarize()
	assert.Equal(t, 500*time.Millisecond, s.P50)
	assert.Equal(t, 990*time.Millisecond, s.P99)
	assert.Equal(t, 999*time.Millisecond, s.P999)
	assert.Equal(t, time.Second, s.Max)
	assert.Equal(t, 1, s.Skipped)
	assert.Equal(t, 1000, s.Sent)
}

func TestFingerprintRoundTrip(t *testing.T) {
	p := testPayload()
	for _, seq := range []uint64{0, 1, 599_999, 1<<32 - 1} {
		got, ok := p.ParseFingerprint(p.Fingerprint(seq))
		assert.True(t, ok)
		assert.Equal(t, seq, got)
	}
	other := p
	other.RunID++
	_, ok := p.ParseFingerprint(other.Fingerprint(1))
	assert.False(t, ok, "another run's fingerprint")
	_, ok = p.ParseFingerprint("0000feedzzzzzzzz")
	assert.False(t, ok)
}

func TestProcStats(t *testing.T) {
	pid := os.Getpid()
	rss, err := statusKiB(pid, "VmRSS:")
	require.NoError(t, err)
	hwm, err := PeakRSS(pid) // read second: the peak is at least any earlier size
	require.NoError(t, err)
	assert.Positive(t, rss)
	assert.GreaterOrEqual(t, hwm, rss, "the peak is at least the size read before it")

	// Burn CPU until /proc shows it (at most 5 s of wall time).
	before, err := CPUTime(pid)
	require.NoError(t, err)
	after := before
	for end := time.Now().Add(5 * time.Second); after == before && time.Now().Before(end); {
		x := 0
		for i := range 10_000_000 {
			x ^= i
		}
		_ = x
		after, err = CPUTime(pid)
		require.NoError(t, err)
	}
	assert.Greater(t, after, before)
	group, err := GroupCPUTime(syscall.Getpgrp())
	require.NoError(t, err)
	assert.GreaterOrEqual(t, group, after, "the group includes this process")
	busy, total, err := MachineCPU()
	require.NoError(t, err)
	assert.Positive(t, busy)
	assert.Greater(t, total, busy)

	_, err = PeakRSS(-1)
	require.Error(t, err)
}
