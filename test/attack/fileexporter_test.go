//go:build attack

package attack

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nerc-project/ai-telemetry-collector/internal/testpeers"
)

// TestFileExporterPath (class 12): whoever can write the output directory
// plants a symbolic link at the exporter's path to have the collector append
// to (or widen the mode of) another file. The collector refuses to start on
// it and leaves the victim untouched; a regular file left with mode 0666 is
// narrowed to the configured 0600.
func TestFileExporterPath(t *testing.T) {
	bin := os.Getenv("OTELCOL_BINARY")
	require.NotEmpty(t, bin, "OTELCOL_BINARY must name the built collector (make attack sets it)")
	dir := t.TempDir()
	config, err := filepath.Abs("testdata/file-exporter.yaml")
	require.NoError(t, err)
	run := func(output string) (*exec.Cmd, string, <-chan error) {
		health := "127.0.0.1:" + testpeers.FreePort(t)
		cmd := exec.Command(bin, "--config", config)
		cmd.Env = append(os.Environ(), "OTLP_HTTP_ENDPOINT=127.0.0.1:"+testpeers.FreePort(t),
			"OUTPUT_FILE="+output, "HEALTH_CHECK_ENDPOINT="+health)
		log, err := os.Create(filepath.Join(dir, filepath.Base(output)+".log"))
		require.NoError(t, err)
		t.Cleanup(func() { _ = log.Close() })
		cmd.Stdout, cmd.Stderr = log, log
		require.NoError(t, cmd.Start())
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				t.Logf("collector on %s stopped (%v)", output, <-exited)
			}
		})
		return cmd, health, exited
	}

	victim := filepath.Join(dir, "victim")
	require.NoError(t, os.WriteFile(victim, []byte("precious\n"), 0o644))
	link := filepath.Join(dir, "metrics.jsonl")
	require.NoError(t, os.Symlink(victim, link))
	_, _, exited := run(link)
	select {
	case err := <-exited:
		assert.Error(t, err, "the collector exits with an error")
	case <-time.After(time.Minute):
		t.Fatal("the collector started on a symbolic link")
	}
	logText, err := os.ReadFile(filepath.Join(dir, "metrics.jsonl.log"))
	require.NoError(t, err)
	assert.Contains(t, string(logText), "is a symbolic link", "the error names the problem")
	got, err := os.ReadFile(victim)
	require.NoError(t, err)
	assert.Equal(t, "precious\n", string(got), "the victim is untouched")
	info, err := os.Stat(victim)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), info.Mode().Perm(), "the victim's mode is unchanged")

	// Control: the same config on a regular file starts, and narrows a mode
	// another process left wide open.
	wide := filepath.Join(dir, "wide.jsonl")
	require.NoError(t, os.WriteFile(wide, nil, 0o666))
	require.NoError(t, os.Chmod(wide, 0o666))
	_, health, exited := run(wide)
	require.Eventually(t, func() bool {
		select {
		case err := <-exited:
			t.Fatalf("the collector exited on a regular file: %v", err)
		default:
		}
		resp, err := http.Get("http://" + health + "/") //nolint:noctx // loopback
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, time.Minute, 200*time.Millisecond, "the collector starts on a regular file")
	info, err = os.Stat(wide)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "an existing file gets the configured mode")
}
