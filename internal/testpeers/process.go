package testpeers

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
)

// Process is a peer's process, restartable, its output appended to a log
// file under dir and printed when the test fails. It runs in its own process
// group, so signals reach what it forks (kc.sh forks java).
type Process struct {
	t       testing.TB
	name    string
	bin     string
	args    []string
	env     []string
	logPath string
	pgid    int
	exited  chan error // nil while stopped
}

// NewProcess prepares a process; Start starts it. It is stopped (SIGTERM)
// when the test ends.
func NewProcess(t testing.TB, dir, name, bin string, env []string, args ...string) *Process {
	p := &Process{t: t, name: name, bin: bin, args: args, env: env, logPath: filepath.Join(dir, name+".log")}
	t.Cleanup(func() {
		p.Stop(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("---- %s log (last 60 lines, %s) ----\n%s", name, p.logPath, p.LogTail(60))
		}
	})
	return p
}

// Start starts the process (again, after Stop).
func (p *Process) Start() {
	t := p.t
	t.Helper()
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	require.NoError(t, err)
	defer func() { _ = logFile.Close() }()
	_, _ = fmt.Fprintf(logFile, "==== %s start %s\n", p.name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start(), p.name)
	p.pgid = cmd.Process.Pid
	p.exited = make(chan error, 1)
	go func(done chan<- error) { done <- cmd.Wait() }(p.exited)
}

// Stop signals the process group and waits (SIGKILL after 30 s).
func (p *Process) Stop(sig syscall.Signal) {
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

// WaitReady polls url until it answers 200, failing the test when the
// process exits first or timeout passes.
func (p *Process) WaitReady(url string, timeout time.Duration) {
	t := p.t
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case err := <-p.exited:
			p.exited = nil
			t.Fatalf("%s exited during startup (%v); log:\n%s", p.name, err, p.LogTail(60))
		default:
		}
		if resp, err := http.Get(url); err == nil { //nolint:noctx // loopback test URL
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			p.Stop(syscall.SIGTERM)
			t.Fatalf("%s not ready at %s within %s; log:\n%s", p.name, url, timeout, p.LogTail(60))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// PGID is the process group of the running process.
func (p *Process) PGID() int { return p.pgid }

// LogTail is the last n lines of the process's log.
func (p *Process) LogTail(n int) string { return Tail(p.logPath, n) }
