//go:build e2e

// Package e2e runs the whole chain on loopback with real peers and checks that
// GPU usage is accounted correctly and that nothing is lost when parts fail:
// a DCGM exposition replaying a scripted schedule (cmd/dcgm-replay), Prometheus
// evaluating the project's usage rules, Alertmanager delivering them with
// oauth2 client credentials (Keycloak) and TLS, the built collector, and
// Jaeger v2 as the trace store. `make e2e` builds everything and sets the
// binaries' paths; docs/e2e.md describes the topology and the assertions.
package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nerc-project/ai-telemetry-collector/internal/dcgmreplay"
	"github.com/nerc-project/ai-telemetry-collector/internal/testpeers"
)

const (
	cluster      = "nerc-ocp-prod"
	schedulePath = "testdata/schedule.yaml"
	// The rules' in-use threshold (aitelemetry:gpu_in_use_threshold:ratio).
	inUseThreshold = 0.05
	// How far a span's start or end may be from the schedule: the change is
	// seen at the next scrape, acted on at the next evaluation, and active_at
	// is rounded to the second.
	timeTolerance = scrapeInterval + evalInterval + time.Second
	// GPU-hours per project must equal the schedule's within this fraction.
	gpuHoursTolerance = 0.02
)

// The faults, as offsets from the schedule's start (see testdata/schedule.yaml).
const (
	jaegerDownAt       = 90 * time.Second
	collectorKillAt    = 105 * time.Second
	collectorRestartAt = 110 * time.Second
	jaegerUpAt         = 120 * time.Second
)

type chain struct {
	t            *testing.T
	dir          string
	t0           time.Time
	keycloak     *testpeers.Keycloak
	client       *http.Client // trusts the run's CA
	webhookURL   string
	otlpHTTPURL  string
	metricsURL   string
	jaegerQuery  string
	outputDir    string
	collector    *testpeers.Process
	collectorURL string             // health check
	jaeger       *testpeers.Process // ingest (Tempo's distributor): stopped by the fault
	jaegerReady  string
	jaegerStore  *testpeers.Process // storage and query, never stopped
	collectorEnv []string
}

func TestChain(t *testing.T) {
	sched, err := dcgmreplay.LoadSchedule(schedulePath)
	require.NoError(t, err)
	dir := t.TempDir()
	if keep := os.Getenv("E2E_KEEP_DIR"); keep != "" {
		dir = keep
		require.NoError(t, os.MkdirAll(dir, 0o755))
	}
	t.Logf("logs and data under %s", dir)
	c := &chain{t: t, dir: dir, outputDir: filepath.Join(dir, "out")}
	require.NoError(t, os.MkdirAll(c.outputDir, 0o755))

	began := time.Now()
	c.keycloak = startKeycloak(t)
	t.Logf("Keycloak ready in %s", time.Since(began).Round(time.Second))
	pki := testpeers.WritePKI(t, dir)
	caFile, certFile, keyFile := pki.CAFile, pki.CertFile, pki.KeyFile
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(caFile)
	require.NoError(t, err)
	require.True(t, pool.AppendCertsFromPEM(ca))
	c.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}

	replayAddr := "127.0.0.1:" + testpeers.FreePort(t)
	c.startJaeger()
	c.startCollector(certFile, keyFile, replayAddr)

	// Alertmanager, posting to the collector as hub-writer.
	secretFile := filepath.Join(dir, "alertmanager-client-secret")
	require.NoError(t, os.WriteFile(secretFile, []byte(c.keycloak.Secret("hub-writer")+"\n"), 0o600))
	amPort := testpeers.FreePort(t)
	amCfg := writeAlertmanagerConfig(t, dir, c.webhookURL, c.keycloak.TokenURL(), "hub-writer", secretFile, caFile)
	am := testpeers.NewProcess(t, dir, "alertmanager", binary(t, "ALERTMANAGER_BINARY"), nil,
		"--config.file="+amCfg, "--storage.path="+filepath.Join(dir, "alertmanager-data"),
		"--web.listen-address=127.0.0.1:"+amPort, "--cluster.listen-address=")
	am.Start()
	am.WaitReady("http://127.0.0.1:"+amPort+"/-/ready", time.Minute)

	// Prometheus, scraping the replay (not started yet) and evaluating the rules.
	promPort := testpeers.FreePort(t)
	promCfg := writePrometheusConfig(t, dir, replayAddr, "127.0.0.1:"+amPort)
	prom := testpeers.NewProcess(t, dir, "prometheus", binary(t, "PROMETHEUS_BINARY"), nil,
		"--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "prometheus-data"),
		"--web.listen-address=127.0.0.1:"+promPort)
	prom.Start()
	prom.WaitReady("http://127.0.0.1:"+promPort+"/-/ready", time.Minute)

	// The replay starts last, its schedule two seconds later.
	c.t0 = time.Now().Add(2 * time.Second)
	schedFile, err := filepath.Abs(schedulePath)
	require.NoError(t, err)
	replay := testpeers.NewProcess(t, dir, "dcgm-replay", binary(t, "DCGM_REPLAY_BINARY"), nil,
		"-listen", replayAddr, "-schedule", schedFile, "-start", c.t0.Format(time.RFC3339Nano))
	replay.Start()
	replay.WaitReady("http://"+replayAddr+"/metrics", 30*time.Second)
	t.Logf("chain up in %s; schedule starts %s", time.Since(began).Round(time.Second), c.t0.UTC().Format(time.RFC3339))

	// Faults while sessions run.
	c.sleepUntil(jaegerDownAt)
	t.Log("fault: Jaeger stopped")
	c.jaeger.Stop(syscall.SIGTERM)
	c.sleepUntil(collectorKillAt)
	// Sessions resolved while Jaeger is down wait in the exporter's queue: the
	// kill must find them there for the restart to prove the queue persisted.
	queued := c.counter("otelcol_exporter_queue_size", `exporter="otlp_grpc/jaeger"`)
	require.Positive(t, queued, "spans queued for Jaeger when the collector is killed")
	t.Logf("fault: collector killed (SIGKILL) with %.0f requests queued for Jaeger", queued)
	c.collector.Stop(syscall.SIGKILL)
	c.sleepUntil(collectorRestartAt)
	c.collector.Start()
	c.collector.WaitReady(c.collectorURL, time.Minute)
	t.Log("collector restarted")
	c.sleepUntil(jaegerUpAt)
	c.jaeger.Start()
	c.jaeger.WaitReady(c.jaegerReady, time.Minute)
	t.Log("Jaeger restarted")

	// Requests made directly, after the restart (counters start at zero there).
	c.checkWebhookRefusals()
	c.checkProjectAuthz()
	c.checkDuplicateNotification()

	end := time.Duration(0)
	for _, a := range sched.Allocations {
		end = max(end, a.To)
	}
	c.sleepUntil(end)
	spans := c.waitForSessions(sched)
	c.checkSessions(sched, spans)
	c.checkNoDuplicates(spans)
	c.checkTenantIsolation(sched, spans)
	c.checkEnrichedMetrics()
	t.Logf("whole run %s (schedule %s)", time.Since(began).Round(time.Second), end)
}

func (c *chain) sleepUntil(offset time.Duration) {
	if d := time.Until(c.t0.Add(offset)); d > 0 {
		time.Sleep(d)
	}
}

// startJaeger runs the multi-tenant trace store in two Jaeger v2 processes
// (testdata/jaeger-store.yaml, testdata/jaeger.yaml): the store with the
// query API, and the ingest endpoint the collector exports to, which the
// fault stops and restarts while the store keeps what it holds.
func (c *chain) startJaeger() {
	t := c.t
	query := "127.0.0.1:" + testpeers.FreePort(t)
	c.jaegerQuery = "http://" + query
	store := "127.0.0.1:" + testpeers.FreePort(t)
	storeHealth := "127.0.0.1:" + testpeers.FreePort(t)
	storeCfg, err := filepath.Abs("testdata/jaeger-store.yaml")
	require.NoError(t, err)
	c.jaegerStore = testpeers.NewProcess(t, c.dir, "jaeger-store", binary(t, "JAEGER_BINARY"), []string{
		"JAEGER_STORE_GRPC_ENDPOINT=" + store,
		"JAEGER_QUERY_ENDPOINT=" + query,
		"JAEGER_QUERY_GRPC_ENDPOINT=127.0.0.1:" + testpeers.FreePort(t),
		"JAEGER_STORE_HEALTH_ENDPOINT=" + storeHealth,
		"JAEGER_STORE_METRICS_PORT=" + testpeers.FreePort(t),
	}, "--config", storeCfg)
	c.jaegerStore.Start()
	c.jaegerStore.WaitReady("http://"+storeHealth+"/status", 2*time.Minute)

	otlp := "127.0.0.1:" + testpeers.FreePort(t)
	health := "127.0.0.1:" + testpeers.FreePort(t)
	c.jaegerReady = "http://" + health + "/status"
	c.collectorEnv = append(c.collectorEnv, "JAEGER_OTLP_ENDPOINT="+otlp)
	cfg, err := filepath.Abs("testdata/jaeger.yaml")
	require.NoError(t, err)
	c.jaeger = testpeers.NewProcess(t, c.dir, "jaeger", binary(t, "JAEGER_BINARY"), []string{
		"JAEGER_OTLP_GRPC_ENDPOINT=" + otlp,
		"JAEGER_STORE_GRPC_ENDPOINT=" + store,
		"JAEGER_HEALTH_ENDPOINT=" + health,
		"JAEGER_METRICS_PORT=" + testpeers.FreePort(t),
	}, "--config", cfg)
	c.jaeger.Start()
	c.jaeger.WaitReady(c.jaegerReady, 2*time.Minute)
}

func (c *chain) startCollector(certFile, keyFile, replayAddr string) {
	t := c.t
	am, otlpHTTP, health, metrics := "127.0.0.1:"+testpeers.FreePort(t), "127.0.0.1:"+testpeers.FreePort(t), "127.0.0.1:"+testpeers.FreePort(t), testpeers.FreePort(t)
	c.webhookURL = "https://" + am + "/alerts"
	c.otlpHTTPURL = "https://" + otlpHTTP
	c.collectorURL = "http://" + health
	c.metricsURL = "http://127.0.0.1:" + metrics + "/metrics"
	projects, err := filepath.Abs("testdata/projects.yaml")
	require.NoError(t, err)
	cfg, err := filepath.Abs("testdata/collector.yaml")
	require.NoError(t, err)
	c.collectorEnv = append(c.collectorEnv,
		"ALERTMANAGER_ENDPOINT="+am, "OTLP_HTTP_ENDPOINT="+otlpHTTP, "OTLP_GRPC_ENDPOINT=127.0.0.1:"+testpeers.FreePort(t),
		"HEALTH_CHECK_ENDPOINT="+health, "METRICS_PORT="+metrics,
		"TLS_CERT_FILE="+certFile, "TLS_KEY_FILE="+keyFile, "KEYCLOAK_URL="+c.keycloak.URL(),
		"STORAGE_DIR="+filepath.Join(c.dir, "collector-storage"), "OUTPUT_DIR="+c.outputDir, "PROJECTS_FILE="+projects,
		"DCGM_EXPORTER_ENDPOINT="+replayAddr)
	c.collector = testpeers.NewProcess(t, c.dir, "collector", binary(t, "OTELCOL_BINARY"), c.collectorEnv, "--config", cfg)
	c.collector.Start()
	c.collector.WaitReady(c.collectorURL, time.Minute)
}
