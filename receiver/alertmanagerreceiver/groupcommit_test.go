package alertmanagerreceiver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver/internal/metadata"
	"github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver/internal/metadatatest"
)

// gatedClient is a real storage client whose Batch calls are counted, can be
// held at a gate, and fail while failErr is set.
type gatedClient struct {
	storage.Client
	gate     chan struct{} // nil: no gate
	entered  chan struct{} // receives once per Batch call, before the gate
	calls    atomic.Int32
	failErr  atomic.Pointer[error]
	failFrom atomic.Int32 // the first call that fails while failErr is set
	panics   atomic.Bool  // a failing call panics with failErr instead (bbolt on a corrupt file)
}

func (c *gatedClient) Batch(ctx context.Context, ops ...*storage.Operation) error {
	n := c.calls.Add(1)
	if c.entered != nil {
		c.entered <- struct{}{}
	}
	if c.gate != nil {
		<-c.gate
	}
	if err := c.failErr.Load(); err != nil && n >= c.failFrom.Load() {
		if c.panics.Load() {
			panic(*err)
		}
		return *err
	}
	return c.Client.Batch(ctx, ops...)
}

func fileStorageClient(t *testing.T) storage.Client {
	t.Helper()
	ctx := context.Background()
	host := newFileStorage(t, t.TempDir())
	t.Cleanup(func() { require.NoError(t, host.ext.Shutdown(ctx)) })
	client, err := host.ext.(storage.Extension).GetClient(ctx, component.KindReceiver, component.MustNewID("alertmanager"), "sessions")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, client.Close(ctx)) })
	return client
}

func claimOf(keys ...string) *claim {
	c := newClaim()
	for _, k := range keys {
		c.add(k, startEmitted)
	}
	return c
}

// queued waits until n claims wait in the committer's queue.
func queued(t *testing.T, g *groupCommitter, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.queue) == n
	}, 30*time.Second, time.Millisecond)
}

// commitWhileBlocked commits "first" with the storage held at its gate, then
// queues the other claims behind it, releases the gate, and returns every
// commit's error, first's first.
func commitWhileBlocked(t *testing.T, client *gatedClient, g *groupCommitter, first *claim, others []*claim, failSecond error) []error {
	t.Helper()
	client.gate, client.entered = make(chan struct{}), make(chan struct{}, 16)
	defer func() { client.gate, client.entered = nil, nil }()
	firstCall := client.calls.Load() + 1
	g.rec.mu.Lock()
	g.rec.hold(first)
	for _, c := range others {
		g.rec.hold(c)
	}
	g.rec.mu.Unlock()
	errs := make([]error, 1+len(others))
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = g.commit(context.Background(), first) })
	<-client.entered // the first batch is being written
	for i, c := range others {
		wg.Go(func() { errs[1+i] = g.commit(context.Background(), c) })
	}
	queued(t, g, len(others))
	if failSecond != nil {
		client.failFrom.Store(firstCall + 1)
		client.failErr.Store(&failSecond)
	}
	close(client.gate)
	wg.Wait()
	return errs
}

func TestGroupCommitCoalescesConcurrentNotifications(t *testing.T) {
	ctx := context.Background()
	client := &gatedClient{Client: fileStorageClient(t)}
	rec := newSessionRecord(100)
	require.NoError(t, rec.attach(ctx, client))
	var sizes []int
	g := &groupCommitter{rec: rec, onBatch: func(claims, _ int) { sizes = append(sizes, claims) }}

	others := []*claim{claimOf("b1", "b2"), claimOf("c1"), claimOf("d1", "d2", "d3")}
	errs := commitWhileBlocked(t, client, g, claimOf("a1"), others, nil)
	for i, err := range errs {
		require.NoError(t, err, "claim %d", i)
	}
	assert.Equal(t, []int{1, 3}, sizes, "the three claims queued behind the first share one batch")
	assert.Equal(t, int32(2), client.calls.Load())

	// Durable: a new record loaded from the same storage knows every session.
	reloaded := newSessionRecord(100)
	require.NoError(t, reloaded.attach(ctx, getOnlyClient{client.Client})) // gatedClient has no Walk: the by-session layout
	for _, key := range []string{"a1", "b1", "b2", "c1", "d1", "d2", "d3"} {
		got, err := reloaded.get(ctx, key)
		require.NoError(t, err)
		assert.Equal(t, startEmitted, got, key)
	}
	rec.mu.Lock()
	assert.Empty(t, rec.claims, "every claim is released")
	rec.mu.Unlock()
}

func TestGroupCommitFailureFailsEveryClaimInIt(t *testing.T) {
	ctx := context.Background()
	client := &gatedClient{Client: fileStorageClient(t)}
	rec := newSessionRecord(3) // small: the failed batch also evicts
	require.NoError(t, rec.attach(ctx, client))
	require.NoError(t, rec.commit(ctx, []recordUpdate{{key: "old1", state: startEmitted}, {key: "old2", state: startEmitted}}))
	g := &groupCommitter{rec: rec}

	diskFull := errors.New("disk full")
	others := []*claim{claimOf("b1", "old1"), claimOf("c1")}
	errs := commitWhileBlocked(t, client, g, claimOf("a1"), others, diskFull)
	require.NoError(t, errs[0], "the first batch was written before the failure")
	for i, err := range errs[1:] {
		require.ErrorIs(t, err, diskFull, "claim %d", i+1)
	}

	// Memory says no more than storage: the failed claims' sessions are not
	// recorded, and what the batch evicted is back.
	reloaded := newSessionRecord(3)
	require.NoError(t, reloaded.attach(ctx, getOnlyClient{client.Client})) // gatedClient has no Walk: the by-session layout
	for _, r := range []*sessionRecord{rec, reloaded} {
		for key, want := range map[string]sessionState{"a1": startEmitted, "old1": startEmitted, "old2": startEmitted, "b1": 0, "c1": 0} {
			got, err := r.get(ctx, key)
			require.NoError(t, err)
			assert.Equal(t, want, got, key)
		}
	}
	assert.Equal(t, 3, rec.len())
	rec.mu.Lock()
	assert.Empty(t, rec.claims)
	rec.mu.Unlock()
}

// TestConcurrentHADuplicatesEmitOnce: the same notification delivered by
// several Alertmanager peers at once yields each span once, and every
// delivery is acknowledged only once the sessions are recorded.
func TestConcurrentHADuplicatesEmitOnce(t *testing.T) {
	h := startReceiver(t, nil, nil)
	require.NoError(t, h.rcv.record.attach(context.Background(), fileStorageClient(t)))

	var alerts []testAlert
	for i := range 20 {
		alerts = append(alerts, testAlert{status: "firing", labels: gpuLabels("team-a", fmt.Sprint("p", i), ""), startsAt: t0, fingerprint: fmt.Sprintf("ha%02d", i)})
	}
	body := notificationJSON(t, 0, alerts...)
	const peers = 8
	codes := make([]int, peers)
	var wg sync.WaitGroup
	for p := range peers {
		wg.Go(func() {
			resp, err := h.client.Post(h.url, "application/json", bytes.NewReader(body))
			if assert.NoError(t, err) {
				codes[p] = resp.StatusCode
				_ = resp.Body.Close()
			}
		})
	}
	wg.Wait()
	for p, code := range codes {
		assert.Equal(t, http.StatusOK, code, "peer %d", p)
	}
	assert.Equal(t, len(alerts), h.sink.SpanCount(), "one start span per session, whatever the peers' interleaving")
}

// cancellingTraces accepts the spans and then cancels the request's context,
// as a sender giving up just after the pipeline took the data.
type cancellingTraces struct {
	consumertest.TracesSink
	cancel context.CancelFunc
}

func (c *cancellingTraces) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (c *cancellingTraces) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	err := c.TracesSink.ConsumeTraces(ctx, td)
	c.cancel()
	return err
}

func TestAbandonedNotifications(t *testing.T) {
	a := testAlert{status: "resolved", labels: gpuLabels("team-a", "p", ""), startsAt: t0, endsAt: t1, fingerprint: "ab"}
	newReceiver := func(t *testing.T, next consumer.Traces) *alertmanagerReceiver {
		r, err := newAlertmanagerReceiver(receivertest.NewNopSettings(metadata.Type), createDefaultConfig().(*Config))
		require.NoError(t, err)
		r.traces = next
		return r
	}
	decode := func(t *testing.T) (*notification, []byte) {
		body := notificationJSON(t, 0, a)
		n, err := decodeNotification(body)
		require.NoError(t, err)
		return n, body
	}

	t.Run("gone before emitting: nothing emitted or recorded, the retry emits", func(t *testing.T) {
		sink := new(consumertest.TracesSink)
		r := newReceiver(t, sink)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		n, body := decode(t)
		res := r.process(ctx, n, body)
		assert.True(t, res.abandoned)
		assert.Equal(t, 0, sink.SpanCount())
		assert.Equal(t, 0, r.record.len())

		n, body = decode(t)
		res = r.process(context.Background(), n, body)
		assert.False(t, res.abandoned)
		assert.Equal(t, 1, sink.SpanCount())
	})

	t.Run("gone while waiting for another delivery of the same session", func(t *testing.T) {
		sink := new(consumertest.TracesSink)
		r := newReceiver(t, sink)
		other := claimOf(idsOf(r, a).recordKey())
		r.record.mu.Lock()
		r.record.hold(other)
		r.record.mu.Unlock()
		ctx, cancel := context.WithCancel(context.Background())
		r.onClaimWait = cancel // the sender gives up once the delivery waits
		n, body := decode(t)
		res := r.process(ctx, n, body)
		assert.True(t, res.abandoned)
		assert.Equal(t, 0, sink.SpanCount())
	})

	t.Run("gone after the pipeline accepted: recorded, so the retry adds nothing", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		next := &cancellingTraces{cancel: cancel}
		r := newReceiver(t, next)
		n, body := decode(t)
		res := r.process(ctx, n, body)
		assert.False(t, res.abandoned)
		require.NoError(t, res.recordErr)
		assert.Equal(t, 1, next.SpanCount())

		n, body = decode(t)
		r.process(context.Background(), n, body)
		assert.Equal(t, 1, next.SpanCount(), "the retry is a repeat")
	})
}

func TestRecordWriteFailureAnswers503AndTheRetryEmitsAgain(t *testing.T) {
	client := &gatedClient{Client: fileStorageClient(t)}
	h := startReceiver(t, nil, nil)
	require.NoError(t, h.rcv.record.attach(context.Background(), client))
	broken := errors.New("no space left on device")
	client.failErr.Store(&broken)

	body := notificationJSON(t, 0, testAlert{status: "firing", labels: gpuLabels("team-a", "p", ""), startsAt: t0, fingerprint: "fa"})
	code, msg := h.post(body)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.NotContains(t, msg, "no space", "internal errors are not echoed")
	assert.Equal(t, 1, h.sink.SpanCount(), "the pipeline had accepted the span")

	client.failErr.Store(nil)
	code, _ = h.post(body)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, 2, h.sink.SpanCount(), "not recorded, so the retry emits the same span again rather than lose it")
	code, _ = h.post(body)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, 2, h.sink.SpanCount(), "now recorded")
	metadatatest.AssertEqualReceiverAlertmanagerRequestsRejected(t, h.tel, []metricdata.DataPoint[int64]{{
		Attributes: attribute.NewSet(attribute.String("reason", "session_record_unavailable")), Value: 1,
	}}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// blockingTraces holds every ConsumeTraces until release is closed.
type blockingTraces struct {
	consumertest.TracesSink
	entered chan struct{}
	release chan struct{}
}

func (b *blockingTraces) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (b *blockingTraces) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	b.entered <- struct{}{}
	<-b.release
	return b.TracesSink.ConsumeTraces(ctx, td)
}

func TestMaxConcurrentRequests(t *testing.T) {
	next := &blockingTraces{entered: make(chan struct{}, 1), release: make(chan struct{})}
	h := startReceiver(t, func(c *Config) { c.MaxConcurrentRequests = 1 }, next)
	first := notificationJSON(t, 0, testAlert{status: "firing", labels: gpuLabels("team-a", "p", ""), startsAt: t0, fingerprint: "c1"})
	second := notificationJSON(t, 0, testAlert{status: "firing", labels: gpuLabels("team-a", "q", ""), startsAt: t0, fingerprint: "c2"})

	firstCode := make(chan int)
	go func() {
		resp, err := h.client.Post(h.url, "application/json", bytes.NewReader(first))
		if !assert.NoError(t, err) {
			firstCode <- 0
			return
		}
		_ = resp.Body.Close()
		firstCode <- resp.StatusCode
	}()
	<-next.entered // the first notification is in progress

	resp, err := h.client.Post(h.url, "application/json", bytes.NewReader(second))
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))

	close(next.release)
	assert.Equal(t, http.StatusOK, <-firstCode)
	code, _ := h.post(second)
	assert.Equal(t, http.StatusOK, code, "a slot is free again")
	assert.Equal(t, 2, next.SpanCount())
	metadatatest.AssertEqualReceiverAlertmanagerRequestsRejected(t, h.tel, []metricdata.DataPoint[int64]{{
		Attributes: attribute.NewSet(attribute.String("reason", "too_many_requests")), Value: 1,
	}}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// TestDuplicateWaitsForTheDeliveryInProgress: a delivery of a session another
// delivery is emitting right now takes that one's outcome: a repeat when it
// was recorded, an emission when it failed.
func TestDuplicateWaitsForTheDeliveryInProgress(t *testing.T) {
	a := testAlert{status: "firing", labels: gpuLabels("team-a", "p", ""), startsAt: t0, fingerprint: "dd"}
	for _, tt := range []struct {
		name      string
		committed bool
		wantSpans int
	}{
		{name: "in-progress delivery recorded: repeat", committed: true, wantSpans: 0},
		{name: "in-progress delivery failed: emitted", committed: false, wantSpans: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sink := new(consumertest.TracesSink)
			r, err := newAlertmanagerReceiver(receivertest.NewNopSettings(metadata.Type), createDefaultConfig().(*Config))
			require.NoError(t, err)
			r.traces = sink
			inProgress := claimOf(idsOf(r, a).recordKey())
			r.record.mu.Lock()
			r.record.hold(inProgress)
			r.record.mu.Unlock()

			body := notificationJSON(t, 0, a)
			n, err := decodeNotification(body)
			require.NoError(t, err)
			waiting := make(chan struct{})
			r.onClaimWait = func() { close(waiting) }
			done := make(chan processResult, 1)
			go func() { done <- r.process(context.Background(), n, body) }()
			select {
			case <-waiting:
			case res := <-done:
				t.Fatalf("the duplicate did not wait for the delivery in progress: %+v, %d spans", res, sink.SpanCount())
			}
			if tt.committed {
				require.NoError(t, r.committer.commit(context.Background(), inProgress))
			} else {
				r.dropClaim(inProgress)
			}
			res := <-done
			require.NoError(t, res.consumeErr)
			assert.Equal(t, tt.wantSpans, sink.SpanCount())
		})
	}
}
