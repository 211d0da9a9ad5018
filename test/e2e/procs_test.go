//go:build e2e

package e2e

import (
	"fmt"
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

// proc is one process of the chain, its output kept in a log file under the
// test's directory and printed when the test fails.
type proc struct {
	t       *testing.T
	name    string
	bin     string
	args    []string
	env     []string
	logPath string
	pgid    int
	exited  chan error // nil while stopped
}

func binary(t *testing.T, env string) string {
	t.Helper()
	bin := os.Getenv(env)
	require.NotEmpty(t, bin, "%s must name the binary (make e2e sets it)", env)
	_, err := os.Stat(bin)
	require.NoError(t, err, "%s=%s", env, bin)
	return bin
}

func newProc(t *testing.T, dir, name, bin string, env []string, args ...string) *proc {
	p := &proc{t: t, name: name, bin: bin, args: args, env: env, logPath: filepath.Join(dir, name+".log")}
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("---- %s log (last 60 lines, %s) ----\n%s", name, p.logPath, p.logTail(60))
		}
	})
	return p
}

func (p *proc) start() {
	t := p.t
	t.Helper()
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	require.NoError(t, err)
	defer func() { _ = logFile.Close() }()
	_, _ = fmt.Fprintf(logFile, "==== %s start %s\n", p.name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // kc.sh forks java: signal the whole group
	require.NoError(t, cmd.Start(), p.name)
	p.pgid = cmd.Process.Pid
	p.exited = make(chan error, 1)
	go func(done chan<- error) { done <- cmd.Wait() }(p.exited)
}

// stop signals the process group and waits (SIGKILL after 30 s).
func (p *proc) stop(sig syscall.Signal) {
	if p.exited == nil {
		return
	}
	_ = syscall.Kill(-p.pgid, sig)
	select {
	case err := <-p.exited:
		p.t.Logf("%s stopped by %s (%v)", p.name, sig, err)
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
		p.t.Logf("%s killed after 30 s (%v)", p.name, <-p.exited)
	}
	p.exited = nil
}

// waitReady polls url until it answers 200, failing when the process exits.
func (p *proc) waitReady(url string, timeout time.Duration) {
	t := p.t
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case err := <-p.exited:
			p.exited = nil
			t.Fatalf("%s exited during startup (%v); log:\n%s", p.name, err, p.logTail(60))
		default:
		}
		if resp, err := http.Get(url); err == nil { //nolint:noctx // loopback test URL
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready at %s within %s; log:\n%s", p.name, url, timeout, p.logTail(60))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func (p *proc) logTail(n int) string { return testpeers.Tail(p.logPath, n) }
