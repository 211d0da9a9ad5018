package alertmanagerreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver"

import (
	"container/list"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// sessionState says which spans of a session were emitted.
type sessionState uint8

const (
	startEmitted sessionState = 1 << iota
	sessionEmitted
)

const (
	storageKeyPrefix = "session/"
	storageValueLen  = 9 // state byte, then the big-endian sequence number
)

var errCorruptRecord = errors.New("corrupt session record entry")

// sessionRecord remembers, for a bounded number of sessions, which spans were
// emitted. The least recently touched session is forgotten first. With a
// storage client every change is mirrored there in one batch per notification,
// and the record is reloaded from it at start. It is not safe for concurrent
// use: the receiver serializes notifications.
type sessionRecord struct {
	capacity int
	entries  map[string]*list.Element
	order    *list.List // front: most recently touched
	seq      uint64
	client   storage.Client
	// loaded is true when the whole stored record is in memory, so a miss in
	// memory needs no storage read.
	loaded bool
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
	}
}

// attach loads the record persisted by an earlier run and mirrors every later
// change to client. Entries beyond the capacity (the oldest) are deleted.
func (r *sessionRecord) attach(ctx context.Context, client storage.Client) error {
	r.client = client
	walker, ok := client.(storage.Walker)
	if !ok {
		r.loaded = false
		return nil
	}
	var stored []recordEntry
	var corrupt []*storage.Operation
	err := walker.Walk(ctx, func(key string, value []byte) ([]*storage.Operation, error) {
		if !strings.HasPrefix(key, storageKeyPrefix) {
			return nil, nil
		}
		if len(value) != storageValueLen {
			corrupt = append(corrupt, storage.DeleteOperation(key))
			return nil, nil
		}
		stored = append(stored, recordEntry{
			key:   strings.TrimPrefix(key, storageKeyPrefix),
			state: sessionState(value[0]),
			seq:   binary.BigEndian.Uint64(value[1:]),
		})
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("loading session record: %w", err)
	}
	slices.SortFunc(stored, func(a, b recordEntry) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	ops := corrupt
	if over := len(stored) - r.capacity; over > 0 {
		for _, e := range stored[:over] {
			ops = append(ops, storage.DeleteOperation(storageKeyPrefix+e.key))
		}
		stored = stored[over:]
	}
	for _, e := range stored {
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

// get returns what was emitted for a session. Without a full in-memory copy
// of the stored record, a miss is looked up in storage.
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

// commit applies updates in memory and mirrors them, with the deletions of the
// sessions they push out, to storage in one batch.
func (r *sessionRecord) commit(ctx context.Context, updates []recordUpdate) error {
	var ops []*storage.Operation
	for _, u := range updates {
		r.seq++
		if el, ok := r.entries[u.key]; ok {
			e := el.Value.(*recordEntry)
			e.state |= u.state
			e.seq = r.seq
			r.order.MoveToFront(el)
			ops = r.appendSet(ops, e)
			continue
		}
		e := &recordEntry{key: u.key, state: u.state, seq: r.seq}
		r.entries[u.key] = r.order.PushFront(e)
		ops = r.appendSet(ops, e)
		for r.order.Len() > r.capacity {
			oldest := r.order.Remove(r.order.Back()).(*recordEntry)
			delete(r.entries, oldest.key)
			if r.client != nil {
				ops = append(ops, storage.DeleteOperation(storageKeyPrefix+oldest.key))
			}
		}
	}
	if r.client == nil || len(ops) == 0 {
		return nil
	}
	if err := r.client.Batch(ctx, ops...); err != nil {
		return fmt.Errorf("writing session record: %w", err)
	}
	return nil
}

func (r *sessionRecord) appendSet(ops []*storage.Operation, e *recordEntry) []*storage.Operation {
	if r.client == nil {
		return ops
	}
	value := make([]byte, storageValueLen)
	value[0] = byte(e.state)
	binary.BigEndian.PutUint64(value[1:], e.seq)
	return append(ops, storage.SetOperation(storageKeyPrefix+e.key, value))
}

func (r *sessionRecord) len() int { return r.order.Len() }
