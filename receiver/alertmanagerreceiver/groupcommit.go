package alertmanagerreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver"

import (
	"context"
	"fmt"
	"sync"

	"go.opentelemetry.io/collector/extension/xextension/storage"
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
// for its sessions. The caller holds r.mu.
func (r *sessionRecord) release(c *claim, err error) {
	for _, u := range c.updates {
		if r.claims[u.key] == c {
			delete(r.claims, u.key)
		}
	}
	c.err = err
	close(c.done)
}

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

	g.flush(ctx, batch)

	g.mu.Lock()
	if len(g.queue) > 0 {
		close(g.queue[0].lead)
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	<-c.done
	return c.err
}

func (g *groupCommitter) flush(ctx context.Context, batch []*claim) {
	rec := g.rec
	rec.mu.Lock()
	var ops []*storage.Operation
	var undo []undoStep
	for _, c := range batch {
		ops, undo = rec.apply(c.updates, ops, undo)
	}
	rec.mu.Unlock()

	var err error
	if rec.client != nil && len(ops) > 0 {
		if batchErr := rec.client.Batch(ctx, ops...); batchErr != nil {
			err = fmt.Errorf("writing session record: %w", batchErr)
		}
	}
	if g.onBatch != nil {
		g.onBatch(len(batch), len(ops))
	}

	rec.mu.Lock()
	if err != nil {
		rec.revert(undo)
	}
	for _, c := range batch {
		rec.release(c, err)
	}
	rec.mu.Unlock()
}
