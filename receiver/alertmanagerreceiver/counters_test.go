package alertmanagerreceiver

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver/internal/metadatatest"
)

// TestFailedBatchIsCountedOnce: notifications that shared a failed batch
// are each refused, but the failure is one storage error, counted once.
func TestFailedBatchIsCountedOnce(t *testing.T) {
	client := &gatedClient{Client: fileStorageClient(t)}
	h := startReceiver(t, nil, nil)
	require.NoError(t, h.rcv.record.attach(context.Background(), client))
	client.gate, client.entered = make(chan struct{}), make(chan struct{}, 16)

	body := func(fp string) []byte {
		return notificationJSON(t, 0, testAlert{status: "firing", labels: gpuLabels("team-a", fp, ""), startsAt: t0, fingerprint: fp})
	}
	codes := make([]int, 3)
	var wg sync.WaitGroup
	wg.Go(func() { codes[0], _ = h.post(body("c0")) })
	<-client.entered // the first batch is being written
	for i := 1; i < len(codes); i++ {
		wg.Go(func() { codes[i], _ = h.post(body([]string{"", "c1", "c2"}[i])) })
	}
	queued(t, h.rcv.committer, 2)
	broken := errors.New("no space left on device")
	client.failFrom.Store(2)
	client.failErr.Store(&broken)
	close(client.gate)
	wg.Wait()

	assert.Equal(t, []int{http.StatusOK, http.StatusServiceUnavailable, http.StatusServiceUnavailable}, codes)
	assert.Equal(t, int32(2), client.calls.Load(), "the two later notifications shared one batch")
	metadatatest.AssertEqualReceiverAlertmanagerSessionRecordErrors(t, h.tel, []metricdata.DataPoint[int64]{{Value: 1}},
		metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// cancellingClient hides Walk (so the record reads storage on a miss) and
// ends a request's context during that read: the sender gives up after its
// sessions were claimed.
type cancellingClient struct {
	storage.Client
	cancel context.CancelFunc
}

func (c *cancellingClient) Get(ctx context.Context, key string) ([]byte, error) {
	if c.cancel != nil {
		c.cancel()
	}
	return c.Client.Get(ctx, key)
}

// TestRepeatsOfAnAbandonedNotificationAreNotCounted: a notification whose
// sender gave up is not processed, so its repeats are counted only when its
// retry is.
func TestRepeatsOfAnAbandonedNotificationAreNotCounted(t *testing.T) {
	client := &cancellingClient{Client: fileStorageClient(t)}
	h := startReceiver(t, nil, nil)
	require.NoError(t, h.rcv.record.attach(context.Background(), client))
	seen := testAlert{status: "firing", labels: gpuLabels("team-a", "p", ""), startsAt: t0, fingerprint: "r1"}
	code, _ := h.post(notificationJSON(t, 0, seen))
	require.Equal(t, http.StatusOK, code)

	body := notificationJSON(t, 0, seen, testAlert{status: "firing", labels: gpuLabels("team-a", "q", ""), startsAt: t0, fingerprint: "r2"})
	n, err := decodeNotification(body)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	client.cancel = cancel
	result := h.rcv.process(ctx, n, body)
	client.cancel = nil
	require.True(t, result.abandoned)

	n, err = decodeNotification(body)
	require.NoError(t, err)
	result = h.rcv.process(context.Background(), n, body)
	require.False(t, result.abandoned)
	assert.Equal(t, 2, h.sink.SpanCount())
	metadatatest.AssertEqualReceiverAlertmanagerRepeatsSuppressed(t, h.tel, []metricdata.DataPoint[int64]{{Value: 1}},
		metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}
