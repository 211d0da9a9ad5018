// Package testpeers runs the real peers that integration, load and
// end-to-end tests talk to, and the small process helpers they share.
//
// Keycloak is the keycloak-quarkus-dist that scripts/keycloak.sh fetches from
// Maven Central. Its realm is imported from a JSON file whose client secrets
// are SECRET_OF_{client} placeholders; each start draws them at random, so no
// secret is ever committed or reused between runs.
package testpeers

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	mrand "math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// Tail is the last n lines of a log file.
func Tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer func() { _ = f.Close() }()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Ports handed out by FreePort come from below Linux's ephemeral range
// (32768-60999 by default): a port picked there with :0 and closed again can
// be taken by any outgoing connection (Keycloak's, a test client's) before
// the peer binds it, and the peer then exits at startup.
const (
	freePortLow  = 20000
	freePortHigh = 32767
)

var (
	freePortMu    sync.Mutex
	freePortGiven = map[int]bool{}
)

// FreePort is a loopback TCP port free at the time of the call, outside the
// ephemeral range and never handed out twice in one test binary.
func FreePort(t testing.TB) string {
	t.Helper()
	freePortMu.Lock()
	defer freePortMu.Unlock()
	for range 1000 {
		port := freePortLow + mrand.IntN(freePortHigh-freePortLow+1)
		if freePortGiven[port] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		_ = l.Close()
		freePortGiven[port] = true
		return strconv.Itoa(port)
	}
	require.FailNow(t, "no free loopback port", "between %d and %d", freePortLow, freePortHigh)
	return ""
}

func randomSecret(t testing.TB) string {
	t.Helper()
	b := make([]byte, 24)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}
