package gpustorageextension

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/nerc-project/ai-telemetry-collector/extension/gpustorageextension/internal/metadata"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore/embedded"
)

type nopExtension struct {
	component.StartFunc
	component.ShutdownFunc
}

type host struct {
	exts map[component.ID]component.Component
}

func (h host) GetExtensions() map[component.ID]component.Component { return h.exts }

func start(t *testing.T, cfg *Config) (component.Component, error) {
	t.Helper()
	ext, err := NewFactory().Create(context.Background(), extensiontest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	return ext, ext.Start(context.Background(), componenttest.NewNopHost())
}

// TestStoreLivesFromStartToShutdown: components find the store through
// gpustore.Lookup once the extension started, and it survives a restart of
// the collector (the same file opened again).
func TestStoreLivesFromStartToShutdown(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gpu.db")
	cfg := &Config{Embedded: &embedded.Config{Path: path}}
	id := component.NewID(metadata.Type)

	ext, err := NewFactory().Create(ctx, extensiontest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	h := host{exts: map[component.ID]component.Component{id: ext}}
	_, err = gpustore.Lookup(h, id)
	require.ErrorIs(t, err, errNotStarted, "no store before Start")

	require.NoError(t, ext.Start(ctx, componenttest.NewNopHost()))
	store, err := gpustore.Lookup(h, id)
	require.NoError(t, err)
	hubs, err := store.Hubs(ctx, gpustore.Filter{Scope: gpustore.Scope{All: true}})
	require.NoError(t, err)
	assert.Empty(t, hubs)
	require.NoError(t, ext.Shutdown(ctx))
	_, err = gpustore.Lookup(h, id)
	require.ErrorIs(t, err, errNotStarted, "no store after Shutdown")
	require.NoError(t, ext.Shutdown(ctx), "a second Shutdown is harmless")
	_, err = os.Stat(path)
	require.NoError(t, err, "the file stays")

	// Restarted, the same file opens again.
	ext2, err := start(t, cfg)
	require.NoError(t, err)
	require.NoError(t, ext2.Shutdown(ctx))
}

func TestLookupRefusesOtherExtensions(t *testing.T) {
	id := component.MustNewID("health_check")
	h := host{exts: map[component.ID]component.Component{id: nopExtension{}}}
	_, err := gpustore.Lookup(h, id)
	require.ErrorIs(t, err, gpustore.ErrNotProvider)
	_, err = gpustore.Lookup(h, component.MustNewID("missing"))
	require.ErrorContains(t, err, "extension not found")
}

func TestStartFailsOnAnUnusableFile(t *testing.T) {
	dir := t.TempDir()
	notADB := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(notADB, []byte("these are not the droids you are looking for, nor a database\n"), 0o600))
	_, err := start(t, &Config{Embedded: &embedded.Config{Path: notADB}})
	require.Error(t, err)
	assert.ErrorContains(t, err, "gpu_storage")
}
