package fileexporter

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"

	"github.com/nerc-project/ai-telemetry-collector/exporter/fileexporter/internal/metadata"
)

func startMetrics(t *testing.T, cfg *Config) error {
	t.Helper()
	me, err := NewFactory().CreateMetrics(context.Background(), exportertest.NewNopSettings(metadata.Type), cfg)
	require.NoError(t, err)
	err = me.Start(context.Background(), componenttest.NewNopHost())
	if err == nil {
		require.NoError(t, me.ConsumeMetrics(context.Background(), sampleMetrics(1)))
		require.NoError(t, me.Shutdown(context.Background()))
	}
	return err
}

// A symbolic link planted at the output path (by anyone who can write its
// directory) would have the collector append to, or create, the file it
// points to with the collector's rights. The exporter refuses it and leaves
// the target as it was.
func TestSymlinkAtPathIsRefused(t *testing.T) {
	tests := []struct {
		name   string
		target func(dir string) string
	}{
		{"to an existing file", func(dir string) string {
			p := filepath.Join(dir, "elsewhere", "precious")
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
			require.NoError(t, os.WriteFile(p, []byte("precious\n"), 0o644))
			return p
		}},
		{"dangling", func(dir string) string { return filepath.Join(dir, "elsewhere", "created-by-the-collector") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			target := tt.target(dir)
			before, beforeErr := os.ReadFile(target)
			path := filepath.Join(dir, "out.jsonl")
			require.NoError(t, os.Symlink(target, path))

			cfg := createDefaultConfig().(*Config)
			cfg.Path = path
			err := startMetrics(t, cfg)
			require.ErrorIs(t, err, errSymlink)
			assert.ErrorContains(t, err, path, "the error names the path")

			after, afterErr := os.ReadFile(target)
			assert.Equal(t, before, after, "nothing written through the link")
			assert.Equal(t, beforeErr != nil, afterErr != nil, "nothing created through the link")
		})
	}
}

// The configured mode (or the default 0600) is what the file has after start,
// whatever mode it had before: telemetry carries project and pod names.
func TestExistingFileGetsConfiguredMode(t *testing.T) {
	tests := []struct {
		name      string
		configure uint32 // 0: the default
		want      os.FileMode
	}{
		{"default", 0, 0o600},
		{"configured", 0o640, 0o640},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out.jsonl")
			require.NoError(t, os.WriteFile(path, []byte("{}\n"), 0o666))
			require.NoError(t, os.Chmod(path, 0o666)) // past the umask
			cfg := createDefaultConfig().(*Config)
			cfg.Path = path
			if tt.configure != 0 {
				cfg.FileMode = tt.configure
			}
			require.NoError(t, startMetrics(t, cfg))
			info, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, tt.want, info.Mode().Perm())
			assert.Len(t, readLines(t, path), 2, "the existing content is kept and appended to")
		})
	}
}

// A new file gets the configured mode exactly, not the mode less the umask.
func TestNewFileGetsConfiguredModeDespiteUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	cfg := createDefaultConfig().(*Config)
	cfg.Path = filepath.Join(t.TempDir(), "out.jsonl")
	cfg.FileMode = 0o640
	require.NoError(t, startMetrics(t, cfg))
	info, err := os.Stat(cfg.Path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), info.Mode().Perm())
}

// A FIFO (or device) at the path is refused at once: opening a FIFO for
// writing would otherwise wait for a reader forever.
func TestNonRegularFileIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	require.NoError(t, syscall.Mkfifo(path, 0o600))
	cfg := createDefaultConfig().(*Config)
	cfg.Path = path
	err := startMetrics(t, cfg)
	require.ErrorIs(t, err, errNotRegular)
	assert.ErrorContains(t, err, path)
}
