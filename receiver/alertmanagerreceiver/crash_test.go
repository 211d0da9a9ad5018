package alertmanagerreceiver

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver/internal/metadata"
)

// crashDirEnv names, for the child process, the storage directory to use.
const crashDirEnv = "ALERTMANAGERRECEIVER_CRASH_DIR"

// crashBody is notification i of the crash test: 10 new firing sessions.
func crashBody(t testing.TB, i int) []byte {
	alerts := make([]testAlert, 10)
	for j := range alerts {
		alerts[j] = testAlert{status: "firing", labels: gpuLabels("team-a", fmt.Sprint("p", i), ""), startsAt: t0, fingerprint: fmt.Sprintf("k%05d-%d", i, j)}
	}
	return notificationJSON(t, 0, alerts...)
}

// TestAcknowledgedSessionsSurviveSIGKILL: a collector killed (SIGKILL) while
// many notifications are in flight, and started again on the same
// file_storage, still knows every session it acknowledged: their repeats add
// nothing.
func TestAcknowledgedSessionsSurviveSIGKILL(t *testing.T) {
	dir := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^TestCrashChildProcess$", "-test.count=1")
	child.Env = append(os.Environ(), crashDirEnv+"="+dir)
	out, err := child.StdoutPipe()
	require.NoError(t, err)
	child.Stderr = os.Stderr
	require.NoError(t, child.Start())
	// Killed below; this is for a test that stops before that (a failed require).
	t.Cleanup(func() {
		_ = child.Process.Kill()
		_ = child.Wait()
	})

	const wantAcks = 300
	var acked []int
	lines := bufio.NewScanner(out)
	for len(acked) < wantAcks && lines.Scan() {
		if i, ok := strings.CutPrefix(lines.Text(), "acked "); ok {
			n, err := strconv.Atoi(i)
			require.NoError(t, err)
			acked = append(acked, n)
		}
	}
	require.NoError(t, child.Process.Kill()) // SIGKILL, with notifications in flight
	_ = child.Wait()
	require.Len(t, acked, wantAcks, "the child acknowledged notifications before it was killed")

	host := newFileStorage(t, dir)
	var bodies [][]byte
	for _, i := range acked {
		bodies = append(bodies, crashBody(t, i))
	}
	sink := runOnce(t, host, bodies...)
	assert.Equal(t, 0, sink.SpanCount(), "every acknowledged session is remembered after SIGKILL")
	// The receiver on this storage does emit what it never saw.
	sink = runOnce(t, host, crashBody(t, 1_000_000))
	require.NoError(t, host.ext.Shutdown(context.Background()))
	assert.Equal(t, 10, sink.SpanCount())
}

// TestCrashChildProcess is the collector TestAcknowledgedSessionsSurviveSIGKILL
// kills: it posts notifications from 8 senders at once, prints each one
// acknowledged, and runs until killed. Alone it has nothing to do.
func TestCrashChildProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("only runs as the child process of TestAcknowledgedSessionsSurviveSIGKILL")
	}
	host := newFileStorage(t, dir)
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Storage = &host.id
	set := receivertest.NewNopSettings(metadata.Type)
	set.ID = component.NewIDWithName(metadata.Type, "gpu") // as runOnce: the same storage file
	r, err := NewFactory().CreateTraces(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), host))
	url := "http://" + r.(*alertmanagerReceiver).addr + cfg.Path

	var stdout sync.Mutex
	const senders = 8
	for s := range senders {
		go func() {
			for i := s; ; i += senders {
				resp, err := http.Post(url, "application/json", bytes.NewReader(crashBody(t, i)))
				if err != nil {
					continue
				}
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					stdout.Lock()
					fmt.Printf("acked %d\n", i)
					stdout.Unlock()
				}
			}
		}()
	}
	select {}
}
