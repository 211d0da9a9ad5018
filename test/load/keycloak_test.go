//go:build load

package load

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// realm is the realm the keycloakauth integration test imports; the load
// test only logs in as its hub-writer client.
const realm = "../../extension/keycloakauth/testdata/realm-nerc.json"

// tokenLifespan is the realm's access token lifespan during the load test,
// short so that the sender refreshes its token several times in one run, as
// Alertmanager does (x/oauth2 asks for a new token 10 s before expiry).
const tokenLifespan = 30 * time.Second

var placeholder = regexp.MustCompile(`SECRET_OF_[a-z-]+`)

func randomSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 24)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// keycloak is Keycloak in dev mode (in-memory database) on loopback, from
// `make keycloak`, with the realm's client secrets drawn for this run.
type keycloak struct {
	url          string
	clientSecret string // hub-writer's
	pgid         int
}

func startKeycloak(t *testing.T) *keycloak {
	t.Helper()
	home, javaHome := os.Getenv("KEYCLOAK_HOME"), os.Getenv("KEYCLOAK_JAVA_HOME")
	if home == "" || javaHome == "" {
		t.Fatal("KEYCLOAK_HOME and KEYCLOAK_JAVA_HOME must be set: run `make load`")
	}
	raw, err := os.ReadFile(realm)
	require.NoError(t, err)
	secrets := map[string]string{}
	raw = placeholder.ReplaceAllFunc(raw, func(p []byte) []byte {
		if secrets[string(p)] == "" {
			secrets[string(p)] = randomSecret(t)
		}
		return []byte(secrets[string(p)])
	})
	var r map[string]any
	require.NoError(t, json.Unmarshal(raw, &r))
	r["accessTokenLifespan"] = int(tokenLifespan.Seconds())
	raw, err = json.Marshal(r)
	require.NoError(t, err)
	importDir := filepath.Join(home, "data", "import")
	require.NoError(t, os.MkdirAll(importDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(importDir, "realm-nerc.json"), raw, 0o600))

	port := freePort(t)
	logPath := filepath.Join(t.TempDir(), "keycloak.log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	defer func() { _ = logFile.Close() }()
	cmd := exec.Command(filepath.Join(home, "bin", "kc.sh"), "start-dev",
		"--http-host=127.0.0.1", "--http-port="+port, "--http-management-port="+freePort(t),
		"--db=dev-mem", "--import-realm")
	cmd.Env = append(os.Environ(), "JAVA_HOME="+javaHome)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // kc.sh forks java: stop the whole group
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	kc := &keycloak{url: "http://127.0.0.1:" + port, clientSecret: secrets["SECRET_OF_hub-writer"], pgid: cmd.Process.Pid}
	t.Cleanup(func() {
		_ = syscall.Kill(-kc.pgid, syscall.SIGTERM)
		select {
		case err := <-exited:
			t.Logf("Keycloak stopped (%v)", err)
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-kc.pgid, syscall.SIGKILL)
			t.Logf("Keycloak killed after 30 s (%v)", <-exited)
		}
	})

	ready := kc.url + "/realms/NERC/.well-known/openid-configuration"
	for deadline := time.Now().Add(4 * time.Minute); ; {
		select {
		case err := <-exited:
			t.Fatalf("Keycloak exited during startup (%v); log:\n%s", err, tail(logPath))
		default:
		}
		if resp, err := http.Get(ready); err == nil { //nolint:noctx // loopback
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return kc
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Keycloak not ready at %s within 4 minutes; log:\n%s", ready, tail(logPath))
		}
		time.Sleep(time.Second)
	}
}

// tail is the end of a log file.
func tail(path string) string {
	f, err := os.Open(path)
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
