package alertmanagerreceiver

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver/internal/metadata"
)

// storageHost offers a real file_storage extension to the receiver.
type storageHost struct {
	component.Host
	id  component.ID
	ext extension.Extension
}

func (h storageHost) GetExtensions() map[component.ID]component.Component {
	return map[component.ID]component.Component{h.id: h.ext}
}

func newFileStorage(t testing.TB, dir string) storageHost {
	t.Helper()
	return newFileStorageFsync(t, dir, false)
}

// newFileStorageFsync is newFileStorage with file_storage's fsync option.
func newFileStorageFsync(t testing.TB, dir string, fsync bool) storageHost {
	t.Helper()
	f := filestorage.NewFactory()
	cfg := f.CreateDefaultConfig().(*filestorage.Config)
	cfg.Directory = dir
	cfg.FSync = fsync
	id := component.MustNewIDWithName("file_storage", "alerts")
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	return storageHost{Host: componenttest.NewNopHost(), id: id, ext: ext}
}

// runOnce starts a receiver on the storage, posts the bodies and shuts down,
// like one life of a collector process.
func runOnce(t *testing.T, host storageHost, bodies ...[]byte) *consumertest.TracesSink {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Storage = &host.id
	sink := new(consumertest.TracesSink)
	set := receivertest.NewNopSettings(metadata.Type)
	// The collector gives a receiver the same ID in every run; the storage file is named after it.
	set.ID = component.NewIDWithName(metadata.Type, "gpu")
	r, err := NewFactory().CreateTraces(context.Background(), set, cfg, sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), host))
	h := &harness{t: t, rcv: r.(*alertmanagerReceiver), client: http.DefaultClient}
	h.url = "http://" + h.rcv.addr + cfg.Path
	for _, b := range bodies {
		code, msg := h.post(b)
		require.Equal(t, http.StatusOK, code, msg)
	}
	require.NoError(t, r.Shutdown(context.Background()))
	return sink
}

func TestRestartBetweenFiringAndResolvedWithFileStorage(t *testing.T) {
	dir := t.TempDir()
	firing := testAlert{status: "firing", labels: gpuLabels("team-a", "p", ""), startsAt: t0, fingerprint: "5e55"}
	resolved := firing
	resolved.status, resolved.endsAt = "resolved", t1

	host := newFileStorage(t, dir)
	first := runOnce(t, host, notificationJSON(t, 0, firing))
	require.NoError(t, host.ext.Shutdown(context.Background()))
	assert.Equal(t, 1, first.SpanCount())

	// A new process: the repeat of the firing adds nothing, the resolution
	// yields the session span, and its duplicate nothing.
	host = newFileStorage(t, dir)
	second := runOnce(t, host, notificationJSON(t, 0, firing), notificationJSON(t, 0, resolved), notificationJSON(t, 0, resolved))
	require.NoError(t, host.ext.Shutdown(context.Background()))
	require.Equal(t, 1, second.SpanCount())
	assert.Equal(t, "alertmanager", second.AllTraces()[0].ResourceSpans().At(0).Resource().Attributes().AsRaw()["service.name"])
	assert.Equal(t, "GPUInUse", second.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Name())

	// A third life: the resolved duplicate from an HA peer still adds nothing.
	host = newFileStorage(t, dir)
	third := runOnce(t, host, notificationJSON(t, 0, resolved))
	require.NoError(t, host.ext.Shutdown(context.Background()))
	assert.Equal(t, 0, third.SpanCount())
}

func TestRecordIsBounded(t *testing.T) {
	ctx := context.Background()
	host := newFileStorage(t, t.TempDir())
	defer func() { require.NoError(t, host.ext.Shutdown(ctx)) }()
	client, err := host.ext.(storage.Extension).GetClient(ctx, component.KindReceiver, component.MustNewID("alertmanager"), "sessions")
	require.NoError(t, err)

	rec := newSessionRecord(3)
	require.NoError(t, rec.attach(ctx, client))
	for i := range 5 {
		require.NoError(t, rec.commit(ctx, []recordUpdate{{key: fmt.Sprint("s", i), state: startEmitted}}))
	}
	assert.Equal(t, 3, rec.len())
	// Touching s2 makes s3 the oldest.
	require.NoError(t, rec.commit(ctx, []recordUpdate{{key: "s2", state: sessionEmitted}}))
	require.NoError(t, client.Close(ctx))

	client, err = host.ext.(storage.Extension).GetClient(ctx, component.KindReceiver, component.MustNewID("alertmanager"), "sessions")
	require.NoError(t, err)
	defer func() { require.NoError(t, client.Close(ctx)) }()
	smaller := newSessionRecord(2)
	require.NoError(t, smaller.attach(ctx, client))
	assert.Equal(t, 2, smaller.len())
	for key, want := range map[string]sessionState{"s0": 0, "s1": 0, "s3": 0, "s4": startEmitted, "s2": startEmitted | sessionEmitted} {
		got, err := smaller.get(ctx, key)
		require.NoError(t, err)
		assert.Equal(t, want, got, key)
	}
	// The trimmed entries are gone from storage too.
	assert.Equal(t, map[string]sessionState{"s4": startEmitted, "s2": startEmitted | sessionEmitted}, storedSessions(t, client))
}

// storedSessions reads the record's entries from storage, checking that
// every one is in the sequence-ordered format and no session is stored twice.
func storedSessions(t *testing.T, client storage.Client) map[string]sessionState {
	t.Helper()
	got := map[string]sessionState{}
	require.NoError(t, client.(storage.Walker).Walk(context.Background(), func(key string, value []byte) ([]*storage.Operation, error) {
		require.True(t, strings.HasPrefix(key, storageSeqPrefix), "key %q", key)
		require.GreaterOrEqual(t, len(value), 2, key)
		_, dup := got[string(value[1:])]
		require.False(t, dup, "session %q stored twice", value[1:])
		got[string(value[1:])] = sessionState(value[0])
		return nil, nil
	}))
	return got
}

// TestRecordDropsUnreadableEntries: entries that cannot be read are deleted at
// start, and a session stored twice is loaded once, at its later place.
func TestRecordDropsUnreadableEntries(t *testing.T) {
	ctx := context.Background()
	client := fileStorageClient(t)
	require.NoError(t, client.Set(ctx, "seq/zz", []byte{1, 'x'}))
	require.NoError(t, client.Set(ctx, seqKey(3), []byte{1}))
	require.NoError(t, client.Set(ctx, seqKey(5), append([]byte{byte(startEmitted)}, "a"...)))
	require.NoError(t, client.Set(ctx, seqKey(7), append([]byte{byte(sessionEmitted)}, "b"...)))
	require.NoError(t, client.Set(ctx, seqKey(9), append([]byte{byte(sessionEmitted)}, "a"...)))

	rec := newSessionRecord(10)
	require.NoError(t, rec.attach(ctx, client))
	assert.Equal(t, map[string]sessionState{"a": startEmitted | sessionEmitted, "b": sessionEmitted}, storedSessions(t, client))
	assert.Equal(t, 2, rec.len())
	assert.Equal(t, "a", rec.order.Front().Value.(*recordEntry).key, "a was touched last")
}

// getOnlyClient hides Walk, as a storage extension without it would.
type getOnlyClient struct{ storage.Client }

func TestRecordWithoutWalkerReadsOnMiss(t *testing.T) {
	ctx := context.Background()
	host := newFileStorage(t, t.TempDir())
	defer func() { require.NoError(t, host.ext.Shutdown(ctx)) }()
	client, err := host.ext.(storage.Extension).GetClient(ctx, component.KindReceiver, component.MustNewID("alertmanager"), "")
	require.NoError(t, err)
	defer func() { require.NoError(t, client.Close(ctx)) }()
	require.NoError(t, client.Set(ctx, storageKeyPrefix+"old", []byte{byte(sessionEmitted), 0, 0, 0, 0, 0, 0, 0, 1}))
	require.NoError(t, client.Set(ctx, storageKeyPrefix+"bad", []byte{1}))

	rec := newSessionRecord(10)
	require.NoError(t, rec.attach(ctx, getOnlyClient{client}))
	got, err := rec.get(ctx, "old")
	require.NoError(t, err)
	assert.Equal(t, sessionEmitted, got)
	_, err = rec.get(ctx, "bad")
	require.ErrorIs(t, err, errCorruptRecord)
	got, err = rec.get(ctx, "never")
	require.NoError(t, err)
	assert.Equal(t, sessionState(0), got)
}

// TestRecordReattachKeepsTheStoredRecord: Start after Shutdown attaches the
// same record again; what was stored stays stored and known.
func TestRecordReattachKeepsTheStoredRecord(t *testing.T) {
	ctx := context.Background()
	client := fileStorageClient(t)
	rec := newSessionRecord(10)
	require.NoError(t, rec.attach(ctx, client))
	require.NoError(t, rec.commit(ctx, []recordUpdate{{key: "a", state: startEmitted}, {key: "b", state: sessionEmitted}}))

	require.NoError(t, rec.attach(ctx, client))
	want := map[string]sessionState{"a": startEmitted, "b": sessionEmitted}
	assert.Equal(t, want, storedSessions(t, client))
	assert.Equal(t, 2, rec.len())
	for key, state := range want {
		got, err := rec.get(ctx, key)
		require.NoError(t, err)
		assert.Equal(t, state, got, key)
	}
	require.NoError(t, rec.commit(ctx, []recordUpdate{{key: "c", state: startEmitted}}))
	want["c"] = startEmitted
	assert.Equal(t, want, storedSessions(t, client))
}
