package alertmanagerreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver"

import (
	"cmp"
	"container/list"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// sessionState says which spans of a session were emitted.
type sessionState uint8

const (
	startEmitted sessionState = 1 << iota
	sessionEmitted
)

// Two storage layouts, one per kind of storage. With a storage that can Walk
// (file_storage), the record is loaded whole at start and stored by sequence
// number: "seq/{16 hex digits}" = state byte, then the session key. Without
// Walk it is looked up by session: "session/{key}" = state byte, then the
// big-endian sequence number.
const (
	storageSeqPrefix = "seq/"
	storageKeyPrefix = "session/"
	storageValueLen  = 9
)

var errCorruptRecord = errors.New("corrupt session record entry")

// sessionRecord remembers, for a bounded number of sessions, which spans were
// emitted. The least recently touched session is forgotten first. With a
// storage client every change is mirrored there in one batch per notification,
// and the record is reloaded from it at start. mu guards it; memory never says
// more than storage holds: a change is undone when its batch fails.
type sessionRecord struct {
	mu       sync.Mutex
	capacity int
	entries  map[string]*list.Element
	order    *list.List // front: most recently touched
	seq      uint64
	client   storage.Client
	// loaded is true when the whole stored record is in memory, so a miss in
	// memory needs no storage read.
	loaded bool
	// claims are the sessions notifications are emitting right now.
	claims map[string]*claim
}

type recordEntry struct {
	key   string
	state sessionState
	seq   uint64
}

func newSessionRecord(capacity int) *sessionRecord {
	return &sessionRecord{
		capacity: capacity,
		entries:  make(map[string]*list.Element),
		order:    list.New(),
		loaded:   true,
		claims:   make(map[string]*claim),
	}
}

// attach loads the record persisted by an earlier run and mirrors every later
// change to client. Entries beyond the capacity (the oldest) and unreadable
// ones are deleted, in one batch.
func (r *sessionRecord) attach(ctx context.Context, client storage.Client) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	// A second attach (Start after Shutdown) starts afresh: what memory holds
	// is in storage too, and keeping it would make every stored entry look
	// like a duplicate of itself.
	r.entries = make(map[string]*list.Element)
	r.order.Init()
	r.seq = 0
	r.loaded = true
	r.client = client
	walker, ok := client.(storage.Walker)
	if !ok {
		r.loaded = false
		return nil
	}
	var stored []recordEntry
	var ops []*storage.Operation
	err := walker.Walk(ctx, func(key string, value []byte) ([]*storage.Operation, error) {
		if !strings.HasPrefix(key, storageSeqPrefix) {
			return nil, nil
		}
		seq, err := strconv.ParseUint(strings.TrimPrefix(key, storageSeqPrefix), 16, 64)
		if err != nil || len(value) < 2 {
			ops = append(ops, storage.DeleteOperation(key))
			return nil, nil
		}
		stored = append(stored, recordEntry{key: string(value[1:]), state: sessionState(value[0]), seq: seq})
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("loading session record: %w", err)
	}
	// The oldest first, whatever order Walk went in.
	slices.SortFunc(stored, func(a, b recordEntry) int { return cmp.Compare(a.seq, b.seq) })
	over := len(stored) - r.capacity
	for i, e := range stored {
		if i < over {
			ops = append(ops, storage.DeleteOperation(seqKey(e.seq)))
			continue
		}
		if el, dup := r.entries[e.key]; dup {
			// Never written so, but a session stored twice must not be in
			// memory twice: the later place counts, with what both said.
			old := r.order.Remove(el).(*recordEntry)
			entry := &recordEntry{key: e.key, state: e.state | old.state, seq: e.seq}
			ops = r.appendSet(append(ops, storage.DeleteOperation(seqKey(old.seq))), entry)
			r.entries[e.key] = r.order.PushFront(entry)
			continue
		}
		r.entries[e.key] = r.order.PushFront(&recordEntry{key: e.key, state: e.state, seq: e.seq})
		r.seq = max(r.seq, e.seq)
	}
	if len(ops) > 0 {
		if err := client.Batch(ctx, ops...); err != nil {
			return fmt.Errorf("trimming session record: %w", err)
		}
	}
	return nil
}

// seqKey is where a session touched at seq is stored: keys in the order of
// their sequence, so new entries go to the end of the storage's B+tree and
// evictions come from its start, and a batch dirties a few pages, not one per
// session.
func seqKey(seq uint64) string {
	var b [len(storageSeqPrefix) + 16]byte
	copy(b[:], storageSeqPrefix)
	const digits = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		b[len(storageSeqPrefix)+i] = digits[seq&0xf]
		seq >>= 4
	}
	return string(b[:])
}

// storageKey is where e is stored: by sequence when the whole record is
// loaded at start, else (a storage without Walk) by session, for Get.
func (r *sessionRecord) storageKey(e *recordEntry) string {
	if r.loaded {
		return seqKey(e.seq)
	}
	return storageKeyPrefix + e.key
}

// get returns what was emitted for a session. Without a full in-memory copy
// of the stored record, a miss is looked up in storage. The caller holds mu.
func (r *sessionRecord) get(ctx context.Context, key string) (sessionState, error) {
	if el, ok := r.entries[key]; ok {
		return el.Value.(*recordEntry).state, nil
	}
	if r.loaded || r.client == nil {
		return 0, nil
	}
	value, err := r.client.Get(ctx, storageKeyPrefix+key)
	switch {
	case err != nil:
		return 0, fmt.Errorf("reading session record: %w", err)
	case value == nil:
		return 0, nil
	case len(value) != storageValueLen:
		return 0, errCorruptRecord
	}
	return sessionState(value[0]), nil
}

// recordUpdate adds emitted spans to a session's state.
type recordUpdate struct {
	key   string
	state sessionState
}

// undoStep reverses one change of apply: a session set (prev is its state
// before, existed whether it was there) or an eviction (evicted).
type undoStep struct {
	key     string
	existed bool
	prev    sessionState
	prevSeq uint64
	evicted *recordEntry
}

// apply puts updates into memory, evicting the least recently touched
// sessions beyond the capacity, and adds to w the storage operations that
// mirror it and the steps that undo it. The caller holds the record's lock.
func (r *sessionRecord) apply(updates []recordUpdate, w *pendingWrite) {
	ops, undo := w.ops, w.undo
	// w follows every step, so a panic midway leaves what to undo in it.
	defer func() { w.ops, w.undo = ops, undo }()
	for _, u := range updates {
		r.seq++
		if el, ok := r.entries[u.key]; ok {
			e := el.Value.(*recordEntry)
			undo = append(undo, undoStep{key: u.key, existed: true, prev: e.state, prevSeq: e.seq})
			if r.client != nil && r.loaded {
				ops = append(ops, storage.DeleteOperation(seqKey(e.seq)))
			}
			e.state |= u.state
			e.seq = r.seq
			r.order.MoveToFront(el)
			ops = r.appendSet(ops, e)
			continue
		}
		undo = append(undo, undoStep{key: u.key})
		e := &recordEntry{key: u.key, state: u.state, seq: r.seq}
		r.entries[u.key] = r.order.PushFront(e)
		ops = r.appendSet(ops, e)
		for r.order.Len() > r.capacity {
			oldest := r.order.Remove(r.order.Back()).(*recordEntry)
			delete(r.entries, oldest.key)
			undo = append(undo, undoStep{key: oldest.key, evicted: oldest})
			if r.client != nil {
				ops = append(ops, storage.DeleteOperation(r.storageKey(oldest)))
			}
		}
	}
}

// pendingWrite is what apply did: the storage operations that mirror it and
// the steps that undo it.
type pendingWrite struct {
	ops  []*storage.Operation
	undo []undoStep
}

// revert undoes apply after the storage refused its batch, so memory says
// no more than storage does. Evicted sessions return at the back, where they
// were; a touched session keeps its new place in the order, which only
// decides when it is forgotten. The caller holds the record's lock.
func (r *sessionRecord) revert(undo []undoStep) {
	for i := len(undo) - 1; i >= 0; i-- {
		u := undo[i]
		switch {
		case u.evicted != nil:
			r.entries[u.key] = r.order.PushBack(u.evicted)
		case !u.existed:
			if el, ok := r.entries[u.key]; ok {
				r.order.Remove(el)
				delete(r.entries, u.key)
			}
		default:
			if el, ok := r.entries[u.key]; ok {
				e := el.Value.(*recordEntry)
				e.state, e.seq = u.prev, u.prevSeq
			}
		}
	}
}

// commit applies updates in memory and mirrors them, with the deletions of the
// sessions they push out, to storage in one batch; when storage fails, memory
// is reverted. Used alone (tests, tools); the receiver goes through
// groupCommitter, which also makes concurrent notifications share a batch.
func (r *sessionRecord) commit(ctx context.Context, updates []recordUpdate) error {
	var w pendingWrite
	r.applyBatch([]*claim{{updates: updates}}, &w)
	if r.client == nil || len(w.ops) == 0 {
		return nil
	}
	if err := r.client.Batch(ctx, w.ops...); err != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.revert(w.undo)
		return fmt.Errorf("writing session record: %w", err)
	}
	return nil
}

func (r *sessionRecord) appendSet(ops []*storage.Operation, e *recordEntry) []*storage.Operation {
	if r.client == nil {
		return ops
	}
	if r.loaded {
		value := make([]byte, 1+len(e.key))
		value[0] = byte(e.state)
		copy(value[1:], e.key)
		return append(ops, storage.SetOperation(seqKey(e.seq), value))
	}
	value := make([]byte, storageValueLen)
	value[0] = byte(e.state)
	binary.BigEndian.PutUint64(value[1:], e.seq)
	return append(ops, storage.SetOperation(storageKeyPrefix+e.key, value))
}

func (r *sessionRecord) len() int { return r.order.Len() }
