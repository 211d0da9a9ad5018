//go:build load

package load

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nerc-project/ai-telemetry-collector/internal/testpeers"
)

// collector is the built distribution running testdata/collector.yaml.
type collector struct {
	cmd      *exec.Cmd
	exited   chan error
	endpoint string // the alertmanager receiver, host:port
	pprof    string // the pprof extension, host:port
	output   string // traces.jsonl
	logPath  string
}

func startCollector(t *testing.T, keycloakURL, certFile, keyFile string) *collector {
	t.Helper()
	bin := os.Getenv("OTELCOL_BINARY")
	require.NotEmpty(t, bin, "OTELCOL_BINARY must name the built collector (make load sets it)")
	dir := t.TempDir()
	c := &collector{
		endpoint: "127.0.0.1:" + testpeers.FreePort(t),
		output:   filepath.Join(dir, "traces.jsonl"),
		logPath:  filepath.Join(dir, "collector.log"),
		exited:   make(chan error, 1),
		pprof:    "127.0.0.1:" + testpeers.FreePort(t),
	}
	health := "127.0.0.1:" + testpeers.FreePort(t)
	logFile, err := os.Create(c.logPath)
	require.NoError(t, err)
	defer func() { _ = logFile.Close() }()
	c.cmd = exec.Command(bin, "--config", "testdata/collector.yaml")
	c.cmd.Env = append(os.Environ(),
		"ALERTMANAGER_ENDPOINT="+c.endpoint,
		"TLS_CERT_FILE="+certFile,
		"TLS_KEY_FILE="+keyFile,
		"KEYCLOAK_URL="+keycloakURL,
		"OUTPUT_DIR="+dir,
		"STORAGE_DIR="+filepath.Join(dir, "storage"),
		"HEALTH_CHECK_ENDPOINT="+health,
		"SELF_METRICS_PORT="+testpeers.FreePort(t),
		"PPROF_ENDPOINT="+c.pprof,
	)
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	require.NoError(t, c.cmd.Start())
	go func() { c.exited <- c.cmd.Wait() }()
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			t.Logf("collector killed (%v)", <-c.exited)
		}
		if t.Failed() {
			t.Logf("collector log (end):\n%s", testpeers.Tail(c.logPath, 40))
		}
	})

	for deadline := time.Now().Add(time.Minute); ; {
		select {
		case err := <-c.exited:
			t.Fatalf("the collector exited before becoming healthy (%v); log:\n%s", err, testpeers.Tail(c.logPath, 40))
		default:
		}
		if resp, err := http.Get("http://" + health + "/"); err == nil { //nolint:noctx // loopback
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the collector was not healthy within a minute; log:\n%s", testpeers.Tail(c.logPath, 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *collector) pid() int { return c.cmd.Process.Pid }

// stop sends SIGTERM, which drains the exporter's queue into the file, and
// returns the exit error.
func (c *collector) stop(t *testing.T) error {
	t.Helper()
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-c.exited:
		return err
	case <-time.After(2 * time.Minute):
		t.Fatal("the collector did not stop within 2 minutes of SIGTERM")
		return nil
	}
}

// profileCPU writes a CPU profile of the collector over d to path (pprof
// extension); errors are logged, since a profile is only a diagnosis.
func (c *collector) profileCPU(t *testing.T, path string, d time.Duration) {
	t.Helper()
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", c.pprof, int(d.Seconds()))
	resp, err := (&http.Client{Timeout: d + time.Minute}).Get(url) //nolint:noctx // loopback
	if err != nil {
		t.Logf("CPU profile: %v", err)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	f, err := os.Create(path)
	if err != nil {
		t.Logf("CPU profile: %v", err)
		return
	}
	defer func() { _ = f.Close() }()
	if _, err := io.Copy(f, resp.Body); err != nil {
		t.Logf("CPU profile: %v", err)
	}
}
