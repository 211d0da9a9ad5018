package testpeers

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Environment variables naming the Keycloak installation and the Java it runs
// on; the Makefile sets them from scripts/keycloak.sh.
const (
	EnvKeycloakHome     = "KEYCLOAK_HOME"
	EnvKeycloakJavaHome = "KEYCLOAK_JAVA_HOME"
)

// startupTimeout bounds a start; a cold start on two busy cores takes about a minute.
const startupTimeout = 4 * time.Minute

var placeholder = regexp.MustCompile(`SECRET_OF_[A-Za-z0-9_-]+`)

// KeycloakOptions configure a Keycloak.
type KeycloakOptions struct {
	// RealmFile is the realm to import, with SECRET_OF_{client} placeholders
	// and KEYCLOAK_URL_OF_THIS_RUN for this Keycloak's base URL.
	RealmFile string
	// MoreRealmFiles are imported too (a realm standing in for an external
	// identity provider); their placeholders share RealmFile's secrets.
	MoreRealmFiles []string
	// AccessTokenLifespan overrides the realm's token lifespan when not zero.
	AccessTokenLifespan time.Duration
}

// Keycloak is Keycloak in dev mode (in-memory database, so every start
// imports the realm afresh, with new signing keys) on a loopback port.
type Keycloak struct {
	t              testing.TB
	home, javaHome string
	realm          string            // the realm's name
	realmJSON      []byte            // with this run's secrets
	moreJSON       [][]byte          // MoreRealmFiles, likewise
	secrets        map[string]string // client id -> secret
	port           string
	proc           *Process
}

// StartKeycloak imports the realm into a new Keycloak and waits until it serves the
// realm. Keycloak stops when the test ends.
func StartKeycloak(t testing.TB, opts KeycloakOptions) *Keycloak {
	t.Helper()
	home, javaHome := keycloakInstallation(t)
	kc := &Keycloak{
		t: t, home: home, javaHome: javaHome, secrets: map[string]string{},
		port: FreePort(t),
	}
	realm := kc.readRealm(opts.RealmFile)
	kc.realm, _ = realm["realm"].(string)
	require.NotEmpty(t, kc.realm, "realm %s has no name", opts.RealmFile)
	if opts.AccessTokenLifespan > 0 {
		realm["accessTokenLifespan"] = int(opts.AccessTokenLifespan.Seconds())
	}
	var err error
	kc.realmJSON, err = json.Marshal(realm)
	require.NoError(t, err)
	for _, f := range opts.MoreRealmFiles {
		b, err := json.Marshal(kc.readRealm(f))
		require.NoError(t, err)
		kc.moreJSON = append(kc.moreJSON, b)
	}
	kc.proc = NewProcess(t, t.TempDir(), "keycloak", filepath.Join(home, "bin", "kc.sh"), []string{"JAVA_HOME=" + javaHome},
		"start-dev", "--http-host=127.0.0.1", "--http-port="+kc.port, "--http-management-port="+FreePort(t),
		"--db=dev-mem", "--import-realm")
	kc.Start()
	return kc
}

// readRealm reads a realm file with this run's secrets and URL.
func (kc *Keycloak) readRealm(path string) map[string]any {
	t := kc.t
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	raw = placeholder.ReplaceAllFunc(raw, func(p []byte) []byte {
		client := strings.TrimPrefix(string(p), "SECRET_OF_")
		if kc.secrets[client] == "" {
			kc.secrets[client] = randomSecret(t)
		}
		return []byte(kc.secrets[client])
	})
	raw = []byte(strings.ReplaceAll(string(raw), urlPlaceholder, kc.URL()))
	var realm map[string]any
	require.NoError(t, json.Unmarshal(raw, &realm), "realm %s", path)
	return realm
}

// urlPlaceholder stands for this Keycloak's base URL in a realm file (a
// broker's endpoints in another realm of the same Keycloak).
const urlPlaceholder = "KEYCLOAK_URL_OF_THIS_RUN"

func keycloakInstallation(t testing.TB) (home, javaHome string) {
	t.Helper()
	home, javaHome = os.Getenv(EnvKeycloakHome), os.Getenv(EnvKeycloakJavaHome)
	if home == "" || javaHome == "" {
		t.Fatalf("%s and %s must be set: run the tests through make "+
			"(scripts/keycloak.sh fetch downloads Keycloak; it needs Java 17+, 21+ preferred)", EnvKeycloakHome, EnvKeycloakJavaHome)
	}
	if _, err := os.Stat(filepath.Join(home, "bin", "kc.sh")); err != nil {
		t.Fatalf("Keycloak not found in %s=%s: run `scripts/keycloak.sh fetch` (%v)", EnvKeycloakHome, home, err)
	}
	if _, err := os.Stat(filepath.Join(javaHome, "bin", "java")); err != nil {
		t.Fatalf("no java in %s=%s (%v)", EnvKeycloakJavaHome, javaHome, err)
	}
	return home, javaHome
}

// URL is Keycloak's base URL.
func (kc *Keycloak) URL() string { return "http://127.0.0.1:" + kc.port }

// Realm is the imported realm's name.
func (kc *Keycloak) Realm() string { return kc.realm }

// TokenURL is the realm's token endpoint.
func (kc *Keycloak) TokenURL() string {
	return kc.URL() + "/realms/" + kc.realm + "/protocol/openid-connect/token"
}

// Secret is this run's secret of a client (its SECRET_OF_{client} placeholder).
func (kc *Keycloak) Secret(client string) string {
	s, ok := kc.secrets[client]
	if !ok {
		kc.t.Fatalf("the realm has no SECRET_OF_%s placeholder", client)
	}
	return s
}

// Start starts a stopped Keycloak again on the same port, with a fresh realm:
// new signing keys, as after a key rotation.
func (kc *Keycloak) Start() {
	t := kc.t
	t.Helper()
	// Keycloak imports from {home}/data/import only; several test processes
	// may share one installation, so the import file is held under a lock
	// until this Keycloak has read it (it serves the realm).
	unlock := lockImportDir(t, kc.home)
	defer unlock()
	importDir := filepath.Join(kc.home, "data", "import")
	stale, _ := filepath.Glob(filepath.Join(importDir, "*.json")) // Keycloak would import every file there
	for _, f := range stale {
		require.NoError(t, os.Remove(f))
	}
	files := map[string][]byte{"realm.json": kc.realmJSON}
	for i, b := range kc.moreJSON {
		files[fmt.Sprintf("realm-%d.json", i+1)] = b
	}
	for name, b := range files {
		require.NoError(t, os.WriteFile(filepath.Join(importDir, name), b, 0o600))
		defer func() { _ = os.Remove(filepath.Join(importDir, name)) }()
	}

	kc.proc.Start()
	kc.proc.WaitReady(kc.URL()+"/realms/"+kc.realm+"/.well-known/openid-configuration", startupTimeout)
}

// Stop ends Keycloak (TERM, then KILL after 30 s) and waits until it is gone.
func (kc *Keycloak) Stop() { kc.proc.Stop(syscall.SIGTERM) }

// PGID is the process group of the running Keycloak (kc.sh and its java).
func (kc *Keycloak) PGID() int { return kc.proc.PGID() }

// LogTail is the end of Keycloak's log, for failure messages.
func (kc *Keycloak) LogTail() string { return kc.proc.LogTail(40) }

// lockImportDir takes an exclusive lock on the installation's import
// directory, across processes.
func lockImportDir(t testing.TB, home string) (unlock func()) {
	t.Helper()
	dir := filepath.Join(home, "data", "import")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	require.NoError(t, err)
	require.NoError(t, syscall.Flock(int(f.Fd()), syscall.LOCK_EX))
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}
}
