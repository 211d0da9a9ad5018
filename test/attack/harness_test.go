//go:build attack

// Package attack runs the built collector as an attacker would meet it: the
// gateway's write paths with the real Keycloak, a writer Keycloak allows for
// team-a only, and every class of cross-project write found in review tried
// with variants of its own. Each attack carries a name of its own
// ("attack/..."); each has a control ("control/...") that the same writer may
// send and that must arrive, so a broken pipeline cannot pass for a secure one.
// At the end the collector is stopped (its exporters drain) and the files it
// wrote are read: every control is there, no attack is.
package attack

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/nerc-project/ai-telemetry-collector/internal/testpeers"
)

// Clients of the realm (extension/keycloakauth/testdata/realm-nerc.json).
const (
	teamAWriter = "team-a-writer" // GET on HUB-moc-CLUSTER-nerc-ocp-prod-PROJECT-team-a only
	hubWriter   = "hub-writer"    // GET on every resource of the hub (the real Alertmanager)
	cluster     = "nerc-ocp-prod"
)

// gateway is the built collector running testdata/collector.yaml, and the
// Keycloak it trusts.
type gateway struct {
	t          *testing.T
	keycloak   *testpeers.Keycloak
	proc       *testpeers.Process
	client     *http.Client
	tlsConfig  *tls.Config
	otlpHTTP   string // https://host:port
	otlpGRPC   string // host:port
	webhook    string // https://host:port/alerts
	metricsURL string
	outputDir  string
}

func startGateway(t *testing.T) *gateway {
	t.Helper()
	bin := os.Getenv("OTELCOL_BINARY")
	require.NotEmpty(t, bin, "OTELCOL_BINARY must name the built collector (make attack sets it)")
	dir := t.TempDir()
	pki := testpeers.WritePKI(t, dir)
	kc := testpeers.StartKeycloak(t, testpeers.KeycloakOptions{RealmFile: "../../extension/keycloakauth/testdata/realm-nerc.json"})
	tlsConfig := &tls.Config{RootCAs: pki.Roots, MinVersion: tls.VersionTLS12}
	g := &gateway{
		t: t, keycloak: kc, tlsConfig: tlsConfig,
		client:    &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}},
		outputDir: filepath.Join(dir, "out"),
	}
	require.NoError(t, os.MkdirAll(g.outputDir, 0o700))
	httpAddr, grpcAddr, amAddr := "127.0.0.1:"+testpeers.FreePort(t), "127.0.0.1:"+testpeers.FreePort(t), "127.0.0.1:"+testpeers.FreePort(t)
	health, metricsPort := "127.0.0.1:"+testpeers.FreePort(t), testpeers.FreePort(t)
	g.otlpHTTP, g.otlpGRPC, g.webhook = "https://"+httpAddr, grpcAddr, "https://"+amAddr+"/alerts"
	g.metricsURL = "http://127.0.0.1:" + metricsPort + "/metrics"
	config, err := filepath.Abs("testdata/collector.yaml")
	require.NoError(t, err)
	g.proc = testpeers.NewProcess(t, dir, "collector", bin, []string{
		"OTLP_HTTP_ENDPOINT=" + httpAddr, "OTLP_GRPC_ENDPOINT=" + grpcAddr, "ALERTMANAGER_ENDPOINT=" + amAddr,
		"TLS_CERT_FILE=" + pki.CertFile, "TLS_KEY_FILE=" + pki.KeyFile,
		"KEYCLOAK_URL=" + kc.URL(), "OUTPUT_DIR=" + g.outputDir, "STORAGE_DIR=" + filepath.Join(dir, "storage"),
		"HEALTH_CHECK_ENDPOINT=" + health, "METRICS_PORT=" + metricsPort,
	}, "--config", config)
	g.proc.Start()
	g.proc.WaitReady("http://"+health+"/", 2*time.Minute)
	return g
}

// token is a fresh client-credentials access token of a realm client.
func (g *gateway) token(clientID string) string {
	cc := clientcredentials.Config{ClientID: clientID, ClientSecret: g.keycloak.Secret(clientID), TokenURL: g.keycloak.TokenURL()}
	tok, err := cc.Token(context.Background())
	require.NoError(g.t, err, "token for %s", clientID)
	return tok.AccessToken
}

// post sends body and returns the status and the answer's text.
func (g *gateway) post(url, contentType, token string, body []byte, header ...string) (int, string) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(g.t, err)
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := g.client.Do(req)
	require.NoError(g.t, err, "POST %s", url)
	defer func() { _ = resp.Body.Close() }()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(msg))
}

// counter is the collector's own counter (its Prometheus exposition), summed
// over the series whose text contains every match.
func (g *gateway) counter(name string, match ...string) float64 {
	return testpeers.SelfMetric(g.t, g.metricsURL, name, match...)
}

// stop ends the collector with SIGTERM, which drains the exporters into the
// files.
func (g *gateway) stop() { g.proc.Stop(syscall.SIGTERM) }

// stored is every name that reached the exporters: metric names, span names
// and log bodies, with the k8s.namespace.name of the resource they arrived in.
func (g *gateway) stored() map[string][]string {
	t := g.t
	out := map[string][]string{}
	read := func(file string, each func(line []byte)) {
		raw, err := os.ReadFile(filepath.Join(g.outputDir, file))
		if os.IsNotExist(err) {
			return
		}
		require.NoError(t, err)
		for _, line := range bytes.Split(raw, []byte("\n")) {
			if len(bytes.TrimSpace(line)) > 0 {
				each(line)
			}
		}
	}
	read("metrics.jsonl", func(line []byte) {
		md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(line)
		require.NoError(t, err)
		for _, rm := range md.ResourceMetrics().All() {
			ns, _ := rm.Resource().Attributes().Get("k8s.namespace.name")
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					out[m.Name()] = append(out[m.Name()], ns.AsString())
				}
			}
		}
	})
	read("traces.jsonl", func(line []byte) {
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(line)
		require.NoError(t, err)
		for _, rs := range td.ResourceSpans().All() {
			ns, _ := rs.Resource().Attributes().Get("k8s.namespace.name")
			for _, ss := range rs.ScopeSpans().All() {
				for _, s := range ss.Spans().All() {
					name := s.Name()
					// Sessions from the Alertmanager receiver are named by
					// the alert's pod, which the attacks set.
					if pod, ok := s.Attributes().Get("k8s.pod.name"); ok {
						name += "/" + pod.AsString()
					} else if pod, ok := rs.Resource().Attributes().Get("k8s.pod.name"); ok {
						name += "/" + pod.AsString()
					}
					out[name] = append(out[name], ns.AsString())
				}
			}
		}
	})
	read("logs.jsonl", func(line []byte) {
		ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(line)
		require.NoError(t, err)
		for _, rl := range ld.ResourceLogs().All() {
			ns, _ := rl.Resource().Attributes().Get("k8s.namespace.name")
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					out[lr.Body().AsString()] = append(out[lr.Body().AsString()], ns.AsString())
				}
			}
		}
	})
	return out
}

// kv is one OTLP attribute, in the order given: OTLP lists may repeat a key,
// which is what some attacks need, so attributes are never a Go map here.
type kv struct{ key, value string }

func attrsJSON(attrs []kv) string {
	parts := make([]string, len(attrs))
	for i, a := range attrs {
		parts[i] = fmt.Sprintf(`{"key":%q,"value":{"stringValue":%q}}`, a.key, a.value)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// otlpJSON is one resource with one record named name, in OTLP JSON for the
// signal ("metrics", "traces" or "logs"); record carries the record's own
// attributes.
func otlpJSON(signal, name string, resource, record []kv) []byte {
	now := time.Now().UnixNano()
	res := `{"attributes":` + attrsJSON(resource) + `}`
	switch signal {
	case "metrics":
		return []byte(fmt.Sprintf(`{"resourceMetrics":[{"resource":%s,"scopeMetrics":[{"metrics":[{"name":%q,"gauge":{"dataPoints":[{"asDouble":1,"timeUnixNano":"%d","attributes":%s}]}}]}]}]}`,
			res, name, now, attrsJSON(record)))
	case "traces":
		return []byte(fmt.Sprintf(`{"resourceSpans":[{"resource":%s,"scopeSpans":[{"spans":[{"traceId":"%032x","spanId":"%016x","name":%q,"kind":1,"startTimeUnixNano":"%d","endTimeUnixNano":"%d","attributes":%s}]}]}]}`,
			res, now, now, name, now-int64(time.Second), now, attrsJSON(record)))
	case "logs":
		return []byte(fmt.Sprintf(`{"resourceLogs":[{"resource":%s,"scopeLogs":[{"logRecords":[{"timeUnixNano":"%d","body":{"stringValue":%q},"attributes":%s}]}]}]}`,
			res, now, name, attrsJSON(record)))
	}
	panic("unknown signal " + signal)
}

// otlpResourceJSON is one ResourceMetrics with one gauge named name, to put
// many resources in one request.
func otlpResourceJSON(resource []kv, name string) string {
	body := string(otlpJSON("metrics", name, resource, nil))
	return strings.TrimSuffix(strings.TrimPrefix(body, `{"resourceMetrics":[`), `]}`)
}

// otlpProto is the same request in protobuf, converted through pdata, which
// keeps repeated keys as the wire carries them.
func otlpProto(t *testing.T, signal string, body []byte) []byte {
	t.Helper()
	var out []byte
	var err error
	switch signal {
	case "metrics":
		md, uerr := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(body)
		require.NoError(t, uerr)
		out, err = (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
	case "traces":
		td, uerr := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(body)
		require.NoError(t, uerr)
		out, err = (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	case "logs":
		ld, uerr := (&plog.JSONUnmarshaler{}).UnmarshalLogs(body)
		require.NoError(t, uerr)
		out, err = (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	}
	require.NoError(t, err)
	return out
}

// sendOTLP sends one OTLP request over HTTP, as JSON or protobuf, and returns
// the status.
func (g *gateway) sendOTLP(signal, encoding, token string, body []byte, header ...string) (int, string) {
	url := g.otlpHTTP + "/v1/" + signal
	if encoding == "protobuf" {
		return g.post(url, "application/x-protobuf", token, otlpProto(g.t, signal, body), header...)
	}
	return g.post(url, "application/json", token, body, header...)
}

// alertJSON is an Alertmanager notification with one firing GPUInUse alert
// carrying labels; pod names the session in the output.
func alertJSON(labels map[string]string, fingerprint string, startsAt time.Time) []byte {
	var parts []string
	for k, v := range labels {
		parts = append(parts, fmt.Sprintf("%q:%q", k, v))
	}
	return []byte(fmt.Sprintf(`{"version":"4","status":"firing","receiver":"ai-telemetry","groupKey":"{}:{alertname=\"GPUInUse\"}","alerts":[{"status":"firing","labels":{%s},"annotations":{},"startsAt":%q,"endsAt":"0001-01-01T00:00:00Z","fingerprint":%q}]}`,
		strings.Join(parts, ","), startsAt.UTC().Format(time.RFC3339Nano), fingerprint))
}

// stallBody opens a connection to the webhook that sends its headers,
// announcing size bytes of body, and a first byte, then nothing: a slow
// sender holding its slot. The connection is closed when the test ends.
func (g *gateway) stallBody(token string, size int) {
	t := g.t
	t.Helper()
	host := strings.TrimPrefix(strings.TrimSuffix(g.webhook, "/alerts"), "https://")
	conn, err := tls.Dial("tcp", host, g.tlsConfig)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	_, err = fmt.Fprintf(conn, "POST /alerts HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{",
		host, token, size)
	require.NoError(t, err)
}

// bodyBytesInFlight is what the Alertmanager receiver's notifications being
// handled hold of its memory budget.
func (g *gateway) bodyBytesInFlight() float64 {
	return g.counter("otelcol_receiver_alertmanager_body_bytes_in_flight")
}
