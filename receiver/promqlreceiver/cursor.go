package promqlreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/promqlreceiver"

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/prometheus/common/model"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

var errBadCursor = errors.New("stored cursor is not a millisecond timestamp")

const cursorKeyPrefix = "cursor/"

// cursors remembers, per query, the timestamp up to which samples were
// emitted: samples at or before it are never emitted again. With a storage
// client each update is written through, so a restart resumes there.
type cursors struct {
	mu     sync.Mutex
	mem    map[string]model.Time
	client storage.Client // nil: memory only
}

func newCursors(client storage.Client) *cursors {
	return &cursors{mem: map[string]model.Time{}, client: client}
}

// get returns the query's cursor, 0 when there is none. A stored value that
// cannot be read is an error (and counts as no cursor).
func (c *cursors) get(ctx context.Context, id string) (model.Time, error) {
	c.mu.Lock()
	t, ok := c.mem[id]
	c.mu.Unlock()
	if ok || c.client == nil {
		return t, nil
	}
	b, err := c.client.Get(ctx, cursorKeyPrefix+id)
	if err != nil || b == nil {
		return 0, err
	}
	ms, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || ms <= 0 {
		return 0, fmt.Errorf("%w: %q", errBadCursor, b)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.mem[id]; ok { // set meanwhile: the newer wins
		return cur, nil
	}
	c.mem[id] = model.Time(ms)
	return model.Time(ms), nil
}

// set moves the query's cursor. The in-memory cursor moves even when the
// write to storage fails, so this process still emits nothing twice.
func (c *cursors) set(ctx context.Context, id string, t model.Time) error {
	c.mu.Lock()
	c.mem[id] = t
	c.mu.Unlock()
	if c.client == nil {
		return nil
	}
	return c.client.Set(ctx, cursorKeyPrefix+id, []byte(strconv.FormatInt(int64(t), 10)))
}
