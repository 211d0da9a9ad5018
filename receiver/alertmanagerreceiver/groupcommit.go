package alertmanagerreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver"

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// claim is one notification's pending change to the session record: the
// sessions whose spans it is emitting. While a claim is held, notifications
// about the same sessions (HA peers' duplicates) wait for its outcome rather
// than decide on a state that may still change; so two deliveries never both
// emit, and none is acknowledged before the sessions are durably recorded.
type claim struct {
	updates []recordUpdate
	index   map[string]int // key to position in updates, for large claims
	done    chan struct{}  // closed once committed or given up; err says which
	lead    chan struct{}  // closed when this claim's request is to lead the next group commit
	err     error
	// released is set once done is closed; guarded by the record's mu.
	released bool
}

func newClaim() *claim {
	return &claim{done: make(chan struct{}), lead: make(chan struct{})}
}

// claimIndexFrom is the size from which a claim indexes its sessions in a
// map; smaller claims (most notifications) scan, which allocates nothing.
const claimIndexFrom = 16

// find is the position of key in c.updates, or -1.
func (c *claim) find(key string) int {
	if c.index != nil {
		if i, ok := c.index[key]; ok {
			return i
		}
		return -1
	}
	for i := range c.updates {
		if c.updates[i].key == key {
			return i
		}
	}
	return -1
}

// pending is what this claim is already emitting for a session.
func (c *claim) pending(key string) sessionState {
	if i := c.find(key); i >= 0 {
		return c.updates[i].state
	}
	return 0
}

func (c *claim) add(key string, state sessionState) {
	if i := c.find(key); i >= 0 {
		c.updates[i].state |= state
		return
	}
	c.updates = append(c.updates, recordUpdate{key: key, state: state})
	switch {
	case c.index != nil:
		c.index[key] = len(c.updates) - 1
	case len(c.updates) == claimIndexFrom:
		c.index = make(map[string]int, 2*claimIndexFrom)
		for i, u := range c.updates {
			c.index[u.key] = i
		}
	}
}

// holder returns the claim that holds key, or nil. The caller holds r.mu.
func (r *sessionRecord) holder(key string) *claim { return r.claims[key] }

// hold makes c the holder of its sessions. The caller holds r.mu and checked
// that no other claim holds them.
func (r *sessionRecord) hold(c *claim) {
	for _, u := range c.updates {
		r.claims[u.key] = c
	}
}

// release ends c with err (nil: committed) and wakes the notifications waiting
// for its sessions; a claim already ended stays as it ended. The caller holds r.mu.
func (r *sessionRecord) release(c *claim, err error) {
	if c.released {
		return
	}
	for _, u := range c.updates {
		if r.claims[u.key] == c {
			delete(r.claims, u.key)
		}
	}
	c.released = true
	c.err = err
	close(c.done)
}

// releaseAll ends every claim in batch with err.
func (r *sessionRecord) releaseAll(batch []*claim, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range batch {
		r.release(c, err)
	}
}

// applyBatch puts every claim of batch into memory; w holds what was done so
// far even when apply panics midway, so it can be undone.
func (r *sessionRecord) applyBatch(batch []*claim, w *pendingWrite) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range batch {
		r.apply(c.updates, w)
	}
}

// settle ends a batch: on err, memory is reverted first, then every claim is
// released with err. Claims are released even if the revert panics.
func (r *sessionRecord) settle(batch []*claim, w *pendingWrite, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer func() {
		for _, c := range batch {
			r.release(c, err)
		}
	}()
	if err != nil {
		r.revert(w.undo)
	}
}

// errRecordPanic: writing the session record panicked (bbolt does on a
// corrupt file); the batch is failed, not the collector.
var errRecordPanic = errors.New("session record write panicked")

// groupCommitter writes the claims of concurrent notifications to storage in
// one Batch (one bbolt transaction) instead of one each: claims queue while a
// batch is being written, and the first of them then writes them all. Every
// request waits for the batch that holds its claim, and a failed batch fails
// every claim in it, with memory reverted.
type groupCommitter struct {
	rec     *sessionRecord
	mu      sync.Mutex
	queue   []*claim
	leading bool
	// onBatch, when set, sees the size of every batch written (telemetry, tests).
	onBatch func(claims, ops int)
	// onError, when set, sees every failed batch once (telemetry, log).
	onError func(err error, claims int)
}

// commit records c durably and returns nil, or the storage's error with
// nothing of c recorded. ctx should not be cancellable: the spans of c were
// already accepted by the pipeline, so the record must follow.
func (g *groupCommitter) commit(ctx context.Context, c *claim) error {
	g.mu.Lock()
	g.queue = append(g.queue, c)
	if g.leading {
		g.mu.Unlock()
		select {
		case <-c.done:
			return c.err
		case <-c.lead:
		}
		g.mu.Lock()
	} else {
		g.leading = true
	}
	// This request leads: it writes everything queued (c included), then
	// passes the lead on, so no request keeps writing others' batches forever.
	batch := g.queue
	g.queue = nil
	g.mu.Unlock()

	// flush ends every claim of batch and does not panic; passing the lead on
	// is deferred all the same, since a request left leading wedges all others.
	func() {
		defer g.passLead()
		g.flush(ctx, batch)
	}()
	<-c.done
	return c.err
}

// passLead hands the lead to the first queued claim's request, or ends it.
func (g *groupCommitter) passLead() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.queue) > 0 {
		close(g.queue[0].lead)
	} else {
		g.leading = false
	}
}

// flush writes batch in one storage Batch and ends its claims: committed, or
// failed with memory reverted. A panic (storage, apply) fails the batch the
// same way and is reported as an error.
func (g *groupCommitter) flush(ctx context.Context, batch []*claim) {
	rec := g.rec
	var w pendingWrite
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		err := fmt.Errorf("%w: %v", errRecordPanic, p)
		defer func() {
			// A panic while reverting leaves memory possibly ahead of
			// storage; the claims are released by settle all the same.
			if p := recover(); p != nil {
				g.failed(fmt.Errorf("%w: reverting: %v", errRecordPanic, p), len(batch))
			}
		}()
		defer rec.releaseAll(batch, err) // if settle itself panics
		g.failed(err, len(batch))
		rec.settle(batch, &w, err)
	}()

	rec.applyBatch(batch, &w)
	var err error
	if rec.client != nil && len(w.ops) > 0 {
		if batchErr := rec.client.Batch(ctx, w.ops...); batchErr != nil {
			err = fmt.Errorf("writing session record: %w", batchErr)
		}
	}
	if g.onBatch != nil {
		g.onBatch(len(batch), len(w.ops))
	}
	if err != nil {
		g.failed(err, len(batch))
	}
	rec.settle(batch, &w, err)
}

func (g *groupCommitter) failed(err error, claims int) {
	if g.onError != nil {
		g.onError(err, claims)
	}
}
