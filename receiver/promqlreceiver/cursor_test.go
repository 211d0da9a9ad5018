package promqlreceiver

import (
	"context"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

var storageID = component.MustNewIDWithName("file_storage", "promql")

// storageHost offers one real file_storage extension.
type storageHost struct {
	component.Host
	ext extension.Extension
}

func (h storageHost) GetExtensions() map[component.ID]component.Component {
	return map[component.ID]component.Component{storageID: h.ext}
}

func newFileStorage(t *testing.T, dir string) storageHost {
	t.Helper()
	f := filestorage.NewFactory()
	cfg := f.CreateDefaultConfig().(*filestorage.Config)
	cfg.Directory = dir
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	return storageHost{Host: componenttest.NewNopHost(), ext: ext}
}

func storageClient(t *testing.T, h storageHost) storage.Client {
	t.Helper()
	c, err := h.ext.(storage.Extension).GetClient(context.Background(), component.KindReceiver, component.MustNewID("promql"), "cursors")
	require.NoError(t, err)
	return c
}

func TestCursorsPersist(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	h := newFileStorage(t, dir)
	client := storageClient(t, h)
	c := newCursors(client)
	got, err := c.get(ctx, "dcgm/nerc-ocp-prod")
	require.NoError(t, err)
	assert.Equal(t, model.Time(0), got, "no cursor yet")
	require.NoError(t, c.set(ctx, "dcgm/nerc-ocp-prod", 1764320400123))
	require.NoError(t, c.set(ctx, "dcgm/nerc-ocp-test", 1764320100000))
	require.NoError(t, client.Close(ctx))
	require.NoError(t, h.ext.Shutdown(ctx))

	// A new process on the same directory.
	h = newFileStorage(t, dir)
	defer func() { require.NoError(t, h.ext.Shutdown(ctx)) }()
	client = storageClient(t, h)
	defer func() { require.NoError(t, client.Close(ctx)) }()
	c = newCursors(client)
	for id, want := range map[string]model.Time{"dcgm/nerc-ocp-prod": 1764320400123, "dcgm/nerc-ocp-test": 1764320100000, "other": 0} {
		got, err := c.get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, want, got, id)
	}

	require.NoError(t, client.Set(ctx, cursorKeyPrefix+"corrupt", []byte("yesterday")))
	_, err = c.get(ctx, "corrupt")
	require.ErrorIs(t, err, errBadCursor)
}

func TestCursorsInMemory(t *testing.T) {
	ctx := context.Background()
	c := newCursors(nil)
	// Steps run in order on the one store; each checks every wanted cursor
	// twice, since reading one must not change it.
	steps := []struct {
		name string
		set  map[string]model.Time
		want map[string]model.Time
	}{
		{"no cursor yet", nil, map[string]model.Time{"q": 0, "other": 0}},
		{"each query has its own", map[string]model.Time{"q": 5, "other": 7}, map[string]model.Time{"q": 5, "other": 7, "unknown": 0}},
		{"a set moves only its query", map[string]model.Time{"q": 9}, map[string]model.Time{"q": 9, "other": 7, "unknown": 0}},
	}
	for _, step := range steps {
		for id, ts := range step.set {
			require.NoError(t, c.set(ctx, id, ts), step.name)
		}
		for range 2 {
			for id, want := range step.want {
				got, err := c.get(ctx, id)
				require.NoError(t, err, step.name)
				assert.Equal(t, want, got, "%s: %s", step.name, id)
			}
		}
	}

	// Memory only: another store (a restart without storage) starts over.
	got, err := newCursors(nil).get(ctx, "q")
	require.NoError(t, err)
	assert.Equal(t, model.Time(0), got, "a new store has no cursor")
}
