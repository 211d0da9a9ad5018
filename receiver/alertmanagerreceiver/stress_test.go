package alertmanagerreceiver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver/internal/metadata"
)

// lockedRand is a seeded source shared by goroutines.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (l *lockedRand) float64() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float64()
}

// chaosClient is a real storage whose Batch fails, or panics, at random.
type chaosClient struct {
	storage.Client
	rnd           *lockedRand
	pFail, pPanic float64
}

var errChaos = errors.New("random batch failure")

func (c *chaosClient) Batch(ctx context.Context, ops ...*storage.Operation) error {
	switch x := c.rnd.float64(); {
	case x < c.pPanic:
		panic("bbolt: random panic")
	case x < c.pPanic+c.pFail:
		return errChaos
	}
	return c.Client.Batch(ctx, ops...)
}

func (c *chaosClient) Walk(ctx context.Context, fn storage.WalkFunc) error {
	return c.Client.(storage.Walker).Walk(ctx, fn)
}

// chaosTraces is a consumer that fails, or panics, at random.
type chaosTraces struct {
	consumertest.TracesSink
	rnd           *lockedRand
	pFail, pPanic float64
}

func (c *chaosTraces) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (c *chaosTraces) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	switch x := c.rnd.float64(); {
	case x < c.pPanic:
		panic("exporter: random panic")
	case x < c.pPanic+c.pFail:
		return errors.New("random consumer failure")
	}
	return c.TracesSink.ConsumeTraces(ctx, td)
}

// storedRecord reads the stored record: sessions and the sequence of each.
func storedRecord(t *testing.T, client storage.Client) (map[string]sessionState, map[uint64]string) {
	t.Helper()
	got := map[string]sessionState{}
	seqs := map[uint64]string{}
	require.NoError(t, client.(storage.Walker).Walk(context.Background(), func(key string, value []byte) ([]*storage.Operation, error) {
		hex, ok := strings.CutPrefix(key, storageSeqPrefix)
		if !ok || len(value) < 2 {
			return nil, fmt.Errorf("unexpected entry %q", key)
		}
		var seq uint64
		if _, err := fmt.Sscanf(hex, "%x", &seq); err != nil {
			return nil, err
		}
		k := string(value[1:])
		if _, dup := got[k]; dup {
			return nil, fmt.Errorf("session %q stored twice", k)
		}
		got[k] = sessionState(value[0])
		seqs[seq] = k
		return nil, nil
	}))
	return got, seqs
}

type stressCase struct {
	name                          string
	capacity                      int
	pStoreFail, pStorePanic       float64
	pConsumerFail, pConsumerPanic float64
	checkAcks                     bool // every acknowledged session is stored when acknowledged
}

// TestRandomConcurrentNotifications: senders post overlapping notifications
// at once, some giving up early, with storage and consumer failing or
// panicking at random. Afterwards nothing is held, memory matches storage,
// and (without failures) no span was emitted twice. Seeded: the inputs
// repeat, the interleaving does not.
func TestRandomConcurrentNotifications(t *testing.T) {
	for _, tc := range []stressCase{
		{name: "evicting", capacity: 15, pStoreFail: 0.25, pConsumerFail: 0.1},
		{name: "acknowledged means stored", capacity: 100_000, pStoreFail: 0.25, pConsumerFail: 0.1, checkAcks: true},
		{name: "capacity 1", capacity: 1, pStoreFail: 0.25, pConsumerFail: 0.1},
		{name: "capacity 3", capacity: 3, pStoreFail: 0.25, pConsumerFail: 0.1},
		{name: "panics", capacity: 15, pStoreFail: 0.1, pStorePanic: 0.1, pConsumerFail: 0.05, pConsumerPanic: 0.05, checkAcks: true},
		{name: "no failures, no duplicates", capacity: 100_000},
	} {
		t.Run(tc.name, func(t *testing.T) { runStress(t, tc) })
	}
}

func runStress(t *testing.T, tc stressCase) {
	const senders, perSender, fingerprints = 8, 150, 40
	rnd := &lockedRand{r: rand.New(rand.NewPCG(1, 2))}
	client := &chaosClient{Client: fileStorageClient(t), rnd: rnd, pFail: tc.pStoreFail, pPanic: tc.pStorePanic}
	cfg := createDefaultConfig().(*Config)
	cfg.SessionRecordSize = tc.capacity
	r, err := newAlertmanagerReceiver(receivertest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	sink := &chaosTraces{rnd: rnd, pFail: tc.pConsumerFail, pPanic: tc.pConsumerPanic}
	r.traces = sink
	require.NoError(t, r.record.attach(context.Background(), client))

	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for g := range senders {
		rng := rand.New(rand.NewPCG(3, uint64(g)))
		wg.Go(func() {
			for range perSender {
				var alerts []testAlert
				for range 1 + rng.IntN(5) {
					f := rng.IntN(fingerprints)
					a := testAlert{status: "firing", labels: gpuLabels("team-a", fmt.Sprint("p", f), ""), startsAt: t0, fingerprint: fmt.Sprintf("f%02d", f)}
					if rng.IntN(2) == 0 {
						a.status, a.endsAt = "resolved", t1
					}
					alerts = append(alerts, a)
				}
				body := notificationJSON(t, 0, alerts...)
				n, err := decodeNotification(body)
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					return
				}
				ctx, cancel := context.WithCancel(context.Background())
				switch rng.IntN(10) {
				case 0:
					cancel() // gone before processing
				case 1, 2:
					ctx, cancel = context.WithTimeout(context.Background(), time.Duration(rng.IntN(300))*time.Microsecond)
				}
				res := r.process(ctx, n, body)
				cancel()
				if !tc.checkAcks || res.abandoned || res.recordErr != nil || res.consumeErr != nil || len(res.invalid) > 0 {
					continue
				}
				stored, _ := storedRecord(t, client.Client)
				for _, a := range alerts {
					k := idsOf(r, a).recordKey()
					want := startEmitted | sessionEmitted
					if a.status == statusResolved {
						want = sessionEmitted
					}
					if tc.capacity >= fingerprints && stored[k]&want == 0 {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("acknowledged %s %s but stored %v", a.fingerprint, a.status, stored[k]))
						mu.Unlock()
					}
				}
			}
		})
	}
	wg.Wait()
	assert.Empty(t, failures)

	rec := r.record
	rec.mu.Lock()
	assert.Empty(t, rec.claims, "no claim is left held")
	assert.Len(t, rec.entries, rec.order.Len())
	assert.LessOrEqual(t, rec.order.Len(), tc.capacity)
	mem := map[string]sessionState{}
	memSeq := map[uint64]string{}
	for el := rec.order.Front(); el != nil; el = el.Next() {
		e := el.Value.(*recordEntry)
		mem[e.key] = e.state
		if other, dup := memSeq[e.seq]; dup {
			t.Errorf("sequence %d is both %s's and %s's", e.seq, other, e.key)
		}
		memSeq[e.seq] = e.key
	}
	rec.mu.Unlock()
	r.committer.mu.Lock()
	assert.False(t, r.committer.leading, "no request is left leading")
	assert.Empty(t, r.committer.queue)
	r.committer.mu.Unlock()

	stored, seqs := storedRecord(t, client.Client)
	assert.Equal(t, stored, mem, "memory says what storage does")
	assert.Equal(t, seqs, memSeq, "under the same sequence numbers")
	reloaded := newSessionRecord(tc.capacity)
	require.NoError(t, reloaded.attach(context.Background(), client.Client))
	assert.Equal(t, len(mem), reloaded.len(), "a restart loads it all")

	if tc.pStoreFail+tc.pStorePanic+tc.pConsumerFail+tc.pConsumerPanic == 0 {
		ids := map[string]int{}
		for _, td := range sink.AllTraces() {
			for _, rs := range td.ResourceSpans().All() {
				for _, ss := range rs.ScopeSpans().All() {
					for _, s := range ss.Spans().All() {
						ids[s.SpanID().String()]++
					}
				}
			}
		}
		require.NotEmpty(t, ids)
		for id, n := range ids {
			assert.Equal(t, 1, n, "span %s", id)
		}
	}
}
