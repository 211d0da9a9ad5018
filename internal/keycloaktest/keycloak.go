// Package keycloaktest runs the real Keycloak of the integration tests: dev
// mode on loopback (in-memory database, so each start imports the realm
// afresh, with new signing keys), from `make keycloak`, with the NERC test
// realm of extension/keycloakauth/testdata/realm-nerc.json. The realm's
// client secrets are drawn at random for each run: the committed realm holds
// SECRET_OF_{client} placeholders only.
package keycloaktest // import "github.com/nerc-project/ai-telemetry-collector/internal/keycloaktest"

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Clients are the realm's client-credentials clients (see the realm file).
var Clients = []string{"hub-writer", "team-a-writer", "no-access", "other-audience"}

// ResourceServer is the realm's client holding the authorization settings.
const ResourceServer = "ai-telemetry-gateway"

// Keycloak is one Keycloak process (restartable) for one test.
type Keycloak struct {
	t              *testing.T
	home, javaHome string
	port           string
	logPath        string
	secrets        map[string]string
	lock           *os.File
	pgid           int
	exited         chan error // nil while stopped
}

// Env returns KEYCLOAK_HOME and KEYCLOAK_JAVA_HOME, failing the test with
// what to run when they are not set.
func Env(t *testing.T) (home, javaHome string) {
	t.Helper()
	home, javaHome = os.Getenv("KEYCLOAK_HOME"), os.Getenv("KEYCLOAK_JAVA_HOME")
	if home == "" || javaHome == "" {
		t.Fatal("KEYCLOAK_HOME and KEYCLOAK_JAVA_HOME must be set: run `make integration` " +
			"(scripts/keycloak.sh fetch downloads Keycloak; it needs Java 17+, 21+ preferred)")
	}
	if _, err := os.Stat(filepath.Join(home, "bin", "kc.sh")); err != nil {
		t.Fatalf("Keycloak not found in KEYCLOAK_HOME=%s: run `scripts/keycloak.sh fetch` (%v)", home, err)
	}
	if _, err := os.Stat(filepath.Join(javaHome, "bin", "java")); err != nil {
		t.Fatalf("no java in KEYCLOAK_JAVA_HOME=%s (%v)", javaHome, err)
	}
	return home, javaHome
}

// FreePort returns a loopback port free at the time of the call.
func FreePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = l.Close() }()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

func randomSecret() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// realmPath is the test realm, found from this source file so any package's
// test can start Keycloak.
func realmPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "extension", "keycloakauth", "testdata", "realm-nerc.json")
}

// Start starts Keycloak with the test realm and stops it when the test ends.
// Keycloak imports the realm from its home's data/import and shares its
// transaction log directory there, so test processes (go test runs packages
// in parallel) take turns: an exclusive lock on the home is held until the
// Keycloak stops.
func Start(t *testing.T) *Keycloak {
	t.Helper()
	home, javaHome := Env(t)
	require.NoError(t, os.MkdirAll(filepath.Join(home, "data"), 0o755))
	lock, err := os.OpenFile(filepath.Join(home, "data", ".integration-test.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	require.NoError(t, err)
	require.NoError(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_EX))
	kc := &Keycloak{
		t: t, home: home, javaHome: javaHome, port: FreePort(t), lock: lock,
		logPath: filepath.Join(t.TempDir(), "keycloak.log"), secrets: map[string]string{ResourceServer: randomSecret()},
	}
	for _, c := range Clients {
		kc.secrets[c] = randomSecret()
	}
	t.Cleanup(func() {
		kc.Stop()
		_ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
		_ = lock.Close()
	})
	realm, err := os.ReadFile(realmPath())
	require.NoError(t, err)
	realm = bytes.ReplaceAll(realm, []byte("SECRET_OF_gateway"), []byte(kc.secrets[ResourceServer]))
	for _, c := range Clients {
		realm = bytes.ReplaceAll(realm, []byte("SECRET_OF_"+c), []byte(kc.secrets[c]))
	}
	importDir := filepath.Join(home, "data", "import")
	require.NoError(t, os.MkdirAll(importDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(importDir, "realm-nerc.json"), realm, 0o600))
	kc.Restart()
	return kc
}

// URL is Keycloak's base URL.
func (kc *Keycloak) URL() string { return "http://127.0.0.1:" + kc.port }

// TokenURL is the realm's token endpoint.
func (kc *Keycloak) TokenURL() string { return kc.URL() + "/realms/NERC/protocol/openid-connect/token" }

// Secret is a client's secret in this run's realm.
func (kc *Keycloak) Secret(clientID string) string { return kc.secrets[clientID] }

// Restart starts a stopped Keycloak (a fresh realm, new signing keys, as
// after a key rotation) and waits until the realm is served.
func (kc *Keycloak) Restart() {
	t := kc.t
	t.Helper()
	logFile, err := os.OpenFile(kc.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	require.NoError(t, err)
	defer func() { _ = logFile.Close() }()
	cmd := exec.Command(filepath.Join(kc.home, "bin", "kc.sh"), "start-dev",
		"--http-host=127.0.0.1", "--http-port="+kc.port, "--http-management-port="+FreePort(t),
		"--db=dev-mem", "--import-realm")
	cmd.Env = append(os.Environ(), "JAVA_HOME="+kc.javaHome)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // kc.sh forks java: stop the whole group
	require.NoError(t, cmd.Start())
	kc.pgid = cmd.Process.Pid
	kc.exited = make(chan error, 1)
	go func(done chan<- error) { done <- cmd.Wait() }(kc.exited)

	ready := kc.URL() + "/realms/NERC/.well-known/openid-configuration"
	deadline := time.Now().Add(4 * time.Minute)
	for {
		select {
		case err := <-kc.exited:
			kc.exited = nil
			t.Fatalf("Keycloak exited during startup (%v); log:\n%s", err, kc.logTail())
		default:
		}
		if resp, err := http.Get(ready); err == nil { //nolint:noctx // loopback test URL
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			kc.Stop()
			t.Fatalf("Keycloak not ready at %s within 4 minutes; log:\n%s", ready, kc.logTail())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Stop ends Keycloak (TERM, then KILL after 30 s) and waits until it is gone.
func (kc *Keycloak) Stop() {
	if kc.exited == nil {
		return
	}
	_ = syscall.Kill(-kc.pgid, syscall.SIGTERM)
	select {
	case err := <-kc.exited:
		kc.t.Logf("Keycloak stopped (%v)", err)
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-kc.pgid, syscall.SIGKILL)
		kc.t.Logf("Keycloak killed after 30 s (%v)", <-kc.exited)
	}
	kc.exited = nil
}

func (kc *Keycloak) logTail() string {
	f, err := os.Open(kc.logPath)
	if err != nil {
		return err.Error()
	}
	defer func() { _ = f.Close() }()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return strings.Join(lines[max(0, len(lines)-40):], "\n")
}
