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
	"fmt"
	"net"
	"os"
	"strings"
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

// FreePort is a loopback TCP port free at the time of the call.
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = l.Close() }()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

func randomSecret(t testing.TB) string {
	t.Helper()
	b := make([]byte, 24)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}
