package alertmanagerreceiver

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver/internal/metadatatest"
)

// panickingTraces panics on its first ConsumeTraces, then takes the spans.
type panickingTraces struct {
	consumertest.TracesSink
	calls int
}

func (p *panickingTraces) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (p *panickingTraces) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	p.calls++
	if p.calls == 1 {
		panic("exporter bug")
	}
	return p.TracesSink.ConsumeTraces(ctx, td)
}

// TestConsumerPanicAnswers500AndReleasesTheClaim: a panic of the next consumer
// is answered 500 (Alertmanager retries it) and counted, and the claim of the
// notification is dropped, so the retry emits at once instead of waiting for
// a claim nobody will end.
func TestConsumerPanicAnswers500AndReleasesTheClaim(t *testing.T) {
	next := &panickingTraces{}
	h := startReceiver(t, nil, next)
	body := notificationJSON(t, 0, testAlert{status: "firing", labels: gpuLabels("team-a", "p", ""), startsAt: t0, fingerprint: "pa"})

	code, msg := h.post(body)
	assert.Equal(t, http.StatusInternalServerError, code)
	assert.NotContains(t, msg, "exporter bug", "internal errors are not echoed")
	h.rcv.record.mu.Lock()
	assert.Empty(t, h.rcv.record.claims, "the panicked notification's claim is dropped")
	h.rcv.record.mu.Unlock()

	code, _ = h.post(body)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, 1, next.SpanCount())
	metadatatest.AssertEqualReceiverAlertmanagerRequestsRejected(t, h.tel, []metricdata.DataPoint[int64]{{
		Attributes: attribute.NewSet(attribute.String("reason", "consumer_panic")), Value: 1,
	}}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// TestRecordWritePanicFailsTheBatchNotTheCollector: storage panicking in
// Batch fails that batch's notifications (503, counted once, memory
// reverted) and leaves the committer working for the next ones.
func TestRecordWritePanicFailsTheBatchNotTheCollector(t *testing.T) {
	client := &gatedClient{Client: fileStorageClient(t)}
	h := startReceiver(t, nil, nil)
	require.NoError(t, h.rcv.record.attach(context.Background(), client))
	corrupt := errors.New("invalid page type")
	client.panics.Store(true)
	client.failErr.Store(&corrupt)

	first := notificationJSON(t, 0, testAlert{status: "firing", labels: gpuLabels("team-a", "p", ""), startsAt: t0, fingerprint: "x1"})
	code, _ := h.post(first)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	client.failErr.Store(nil)

	// Were the committer left leading, this would wait forever.
	done := make(chan int, 1)
	go func() {
		code, _ := h.post(notificationJSON(t, 0, testAlert{status: "firing", labels: gpuLabels("team-a", "q", ""), startsAt: t0, fingerprint: "x2"}))
		done <- code
	}()
	select {
	case code := <-done:
		assert.Equal(t, http.StatusOK, code)
	case <-time.After(30 * time.Second):
		t.Fatal("a later notification hangs in the committer after a panicked batch")
	}

	code, _ = h.post(first)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, 3, h.sink.SpanCount(), "the panicked batch was not recorded, so its retry emits again")
	metadatatest.AssertEqualReceiverAlertmanagerSessionRecordErrors(t, h.tel, []metricdata.DataPoint[int64]{{Value: 1}},
		metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// TestGroupCommitPanicFailsEveryClaimInIt: like a failed write, a panicking
// one fails every claim of its batch with memory reverted, and passes the
// lead on.
func TestGroupCommitPanicFailsEveryClaimInIt(t *testing.T) {
	ctx := context.Background()
	client := &gatedClient{Client: fileStorageClient(t)}
	rec := newSessionRecord(3)
	require.NoError(t, rec.attach(ctx, client))
	require.NoError(t, rec.commit(ctx, []recordUpdate{{key: "old1", state: startEmitted}, {key: "old2", state: startEmitted}}))
	var failures []error
	g := &groupCommitter{rec: rec, onError: func(err error, _ int) { failures = append(failures, err) }}

	client.panics.Store(true)
	errs := commitWhileBlocked(t, client, g, claimOf("a1"), []*claim{claimOf("b1", "old1"), claimOf("c1")}, errors.New("invalid page type"))
	require.NoError(t, errs[0])
	for i, err := range errs[1:] {
		require.ErrorIs(t, err, errRecordPanic, "claim %d", i+1)
	}
	require.Len(t, failures, 1, "one failed batch is reported once")

	for key, want := range map[string]sessionState{"a1": startEmitted, "old1": startEmitted, "old2": startEmitted, "b1": 0, "c1": 0} {
		got, err := rec.get(ctx, key)
		require.NoError(t, err)
		assert.Equal(t, want, got, key)
	}
	rec.mu.Lock()
	assert.Empty(t, rec.claims)
	rec.mu.Unlock()
	g.mu.Lock()
	assert.False(t, g.leading, "the lead was given up")
	g.mu.Unlock()

	client.failErr.Store(nil)
	require.NoError(t, g.commit(ctx, claimOf("d1")), "the committer still works")
}
