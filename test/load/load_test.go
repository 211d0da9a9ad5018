//go:build load

// Package load is `make load`: an open-loop load of Alertmanager webhooks
// through the built collector's alertmanager receiver, with TLS and
// keycloakauth validating tokens of a real Keycloak, and a count that every
// accepted alert reached the output exactly once. The generator is
// internal/loadgen; the results go to LOAD_REPORT (docs/load.md).
package load

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/nerc-project/ai-telemetry-collector/internal/loadgen"
	"github.com/nerc-project/ai-telemetry-collector/internal/testpeers"
)

// settings are make load's variables.
type settings struct {
	rate     int
	duration time.Duration
	alerts   int
}

func loadSettings(t *testing.T) settings {
	t.Helper()
	s := settings{rate: 1000, duration: 60 * time.Second, alerts: 10}
	var err error
	if v := os.Getenv("LOAD_RATE"); v != "" {
		s.rate, err = strconv.Atoi(v)
		require.NoError(t, err, "LOAD_RATE must be requests per second")
	}
	if v := os.Getenv("LOAD_DURATION"); v != "" {
		s.duration, err = time.ParseDuration(v)
		require.NoError(t, err, "LOAD_DURATION must be a Go duration such as 60s")
	}
	if v := os.Getenv("LOAD_ALERTS"); v != "" {
		s.alerts, err = strconv.Atoi(v)
		require.NoError(t, err, "LOAD_ALERTS must be alerts per request")
	}
	return s
}

// countingTransport counts the token requests the sender makes to Keycloak.
type countingTransport struct {
	n    atomic.Int64
	base http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

// sender is Alertmanager's webhook client: HTTP/2 over TLS trusting the
// gateway's CA, and an oauth2 client-credentials token from Keycloak, reused
// until shortly before it expires (prometheus/common's oauth2 config is this
// same x/oauth2 token source).
func sender(t *testing.T, kc *testpeers.Keycloak, roots *x509.CertPool, s settings) (*http.Client, *countingTransport) {
	t.Helper()
	tokenHTTP := &countingTransport{base: http.DefaultTransport}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: tokenHTTP, Timeout: 10 * time.Second})
	cc := clientcredentials.Config{
		ClientID: "hub-writer", ClientSecret: kc.Secret("hub-writer"),
		TokenURL: kc.TokenURL(),
	}
	source := cc.TokenSource(ctx)
	_, err := source.Token() // Alertmanager holds a token before its first notification
	require.NoError(t, err, "client credentials token from Keycloak")
	base := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: s.rate,
		IdleConnTimeout:     90 * time.Second,
	}
	t.Cleanup(base.CloseIdleConnections)
	return &http.Client{Transport: &oauth2.Transport{Source: source, Base: base}, Timeout: 10 * time.Second}, tokenHTTP
}

// usage is CPU time per party during the load.
type usage struct {
	wall                                   time.Duration
	collector, generator, keycloak, others time.Duration
	machineBusy, machineTotal              time.Duration
}

type cpuSnapshot struct {
	at                             time.Time
	collector, generator, keycloak time.Duration
	machineBusy, machineTotal      time.Duration
}

func snapshot(t *testing.T, collectorPID, keycloakPGID int) cpuSnapshot {
	t.Helper()
	s := cpuSnapshot{at: time.Now()}
	var err error
	s.collector, err = loadgen.CPUTime(collectorPID)
	require.NoError(t, err)
	s.keycloak, err = loadgen.GroupCPUTime(keycloakPGID)
	require.NoError(t, err)
	var ru syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	s.generator = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	s.machineBusy, s.machineTotal, err = loadgen.MachineCPU()
	require.NoError(t, err)
	return s
}

func (a cpuSnapshot) until(b cpuSnapshot) usage {
	u := usage{
		wall:         b.at.Sub(a.at),
		collector:    b.collector - a.collector,
		generator:    b.generator - a.generator,
		keycloak:     b.keycloak - a.keycloak,
		machineBusy:  b.machineBusy - a.machineBusy,
		machineTotal: b.machineTotal - a.machineTotal,
	}
	u.others = max(0, u.machineBusy-u.collector-u.generator-u.keycloak)
	return u
}

func TestLoad(t *testing.T) {
	s := loadSettings(t)
	kc := startKeycloak(t)
	pki := testpeers.WritePKI(t, t.TempDir())
	certFile, keyFile, roots := pki.CertFile, pki.KeyFile, pki.Roots
	col := startCollector(t, kc.URL(), certFile, keyFile)
	client, tokens := sender(t, kc, roots, s)
	load1, _ := os.ReadFile("/proc/loadavg")

	cfg := loadgen.Config{
		URL:      "https://" + col.endpoint + "/alerts",
		Rate:     s.rate,
		Duration: s.duration,
		Payload: loadgen.Payload{
			RunID: rand.Uint32(), AlertsPerRequest: s.alerts,
			StartsAt: time.Now().Add(-time.Hour).Truncate(time.Second).UTC(),
		},
		Client: client,
		// Requests time out after 10 s, so this is only reached by a stalled
		// collector; skipped requests are reported.
		MaxInFlight: 15 * s.rate,
	}
	tokensBefore := tokens.n.Load()
	before := snapshot(t, col.pid(), kc.PGID())
	profiled := make(chan struct{})
	if path := os.Getenv("LOAD_CPU_PROFILE"); path != "" {
		// The middle of the run, away from start-up and the tail.
		go func() {
			defer close(profiled)
			time.Sleep(s.duration / 4)
			col.profileCPU(t, path, s.duration/2)
		}()
	} else {
		close(profiled)
	}
	res, err := loadgen.Run(context.Background(), cfg)
	require.NoError(t, err)
	<-profiled
	after := snapshot(t, col.pid(), kc.PGID())
	peak, err := loadgen.PeakRSS(col.pid())
	require.NoError(t, err)
	tokenRequests := tokens.n.Load() - tokensBefore

	stopErr := col.stop(t)
	out, err := os.Open(col.output)
	require.NoError(t, err, "the collector wrote no output")
	defer func() { _ = out.Close() }()
	tally, err := res.Count(out)
	require.NoError(t, err)

	r := report{
		settings: s, summary: res.Summarize(), tally: tally, usage: before.until(after),
		peakRSS: peak, tokenRequests: tokenRequests, loadavg: string(load1),
		goVersion: runtime.Version(), stopErr: stopErr,
	}
	if path := os.Getenv("LOAD_CPU_PROFILE"); path != "" {
		r.profile, err = cpuBreakdown(path)
		if err != nil {
			t.Logf("CPU profile %s unreadable: %v", path, err)
		}
	}
	t.Log("\n" + r.markdown())
	if path := os.Getenv("LOAD_REPORT"); path != "" {
		require.NoError(t, os.WriteFile(path, []byte(r.markdown()), 0o644))
		t.Logf("wrote %s", path)
	}

	require.NoError(t, stopErr, "the collector must exit cleanly on SIGTERM")
	assert.Positive(t, r.summary.Accepted, "no request was accepted")
	assert.False(t, tally.Lost(), "every accepted alert must yield exactly one span, and no refused alert any: %+v", tally)
	assert.Equal(t, r.summary.AcceptedAlerts, tally.Found)
}
