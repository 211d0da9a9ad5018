//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.yaml.in/yaml/v3"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/nerc-project/ai-telemetry-collector/internal/dcgmreplay"
	"github.com/nerc-project/ai-telemetry-collector/internal/testpeers"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// token obtains an access token for one of the realm's clients.
func (c *chain) token(clientID string) string {
	cc := clientcredentials.Config{
		ClientID: clientID, ClientSecret: c.keycloak.Secret(clientID),
		TokenURL: c.keycloak.TokenURL(),
	}
	tok, err := cc.Token(context.Background())
	require.NoError(c.t, err, "token for %s", clientID)
	return tok.AccessToken
}

func (c *chain) post(url, contentType, token string, body []byte) (int, string) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.client.Do(req)
	require.NoError(c.t, err, "POST %s", url)
	defer func() { _ = resp.Body.Close() }()
	msg, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(msg)
}

// counter sums the collector's own counter (Prometheus exposition of its
// internal telemetry, with or without the _total suffix) over the series whose
// labels contain every match.
func (c *chain) counter(name string, match ...string) float64 {
	return testpeers.SelfMetric(c.t, c.metricsURL, name, match...)
}

// checkWebhookRefusals: a malformed webhook is refused with 400 and counted;
// a request without a token gets 401 and a client that may write no project
// 403 (the receiver's per-project authorization).
func (c *chain) checkWebhookRefusals() {
	t := c.t
	const rejected = "otelcol_receiver_alertmanager_requests_rejected"
	before := c.counter(rejected, `reason="malformed_json"`)
	status, msg := c.post(c.webhookURL, "application/json", c.token("hub-writer"), []byte(`{"version":"4","status":"firing","alerts":[{"labels":`))
	assert.Equal(t, http.StatusBadRequest, status, "malformed webhook: %s", msg)
	assert.Contains(t, msg, "malformed JSON")
	assert.Equal(t, before+1, c.counter(rejected, `reason="malformed_json"`), "the malformed webhook is counted")
	t.Logf("malformed webhook: %d %q, counted", status, strings.TrimSpace(msg))

	status, _ = c.post(c.webhookURL, "application/json", "", []byte(`{"version":"4"}`))
	assert.Equal(t, http.StatusUnauthorized, status, "webhook without a token")

	body := []byte(`{"version":"4","status":"firing","receiver":"ai-telemetry","alerts":[{"status":"firing",` +
		`"labels":{"alertname":"GPUInUse","cluster":"nerc-ocp-prod","node":"gpu-node-9","UUID":"GPU-e2e-forged","namespace":"team-a","pod":"forged-0"},` +
		`"startsAt":"` + time.Now().UTC().Format(time.RFC3339) + `","endsAt":"0001-01-01T00:00:00Z","fingerprint":"e2eforged0000001"}]}`)
	status, msg = c.post(c.webhookURL, "application/json", c.token("no-access"), body)
	assert.Equal(t, http.StatusForbidden, status, "a client without write permission: %s", msg)
}

const probeMetric = "e2e.authz.probe"

func probeMetrics(namespace string) []byte {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr(topology.AttrK8sClusterName, cluster)
	rm.Resource().Attributes().PutStr(topology.AttrK8sNamespaceName, namespace)
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(probeMetric)
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetIntValue(1)
	dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	body, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
	if err != nil {
		panic(err)
	}
	return body
}

// probeService names the OTLP trace probe's spans.
const probeService = "e2e-probe"

func probeTraces(namespace string) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", probeService)
	rs.Resource().Attributes().PutStr(topology.AttrK8sClusterName, cluster)
	rs.Resource().Attributes().PutStr(topology.AttrK8sNamespaceName, namespace)
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetName("e2e.authz.probe")
	sp.SetTraceID(pcommon.TraceID([16]byte{0xe2, 0xe0, 1}))
	sp.SetSpanID(pcommon.SpanID([8]byte{0xe2, 0xe0, 1}))
	now := time.Now()
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Second)))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	body, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		panic(err)
	}
	return body
}

// checkProjectAuthz: an OTLP agent allowed project team-a only (Keycloak
// client team-a-writer) writes team-a's data, and is refused (403, PERMISSION
// DENIED) for team-b's; checkEnrichedMetrics later finds the first and not the
// second, checkTenantIsolation the trace probe under team-a's tenant only.
func (c *chain) checkProjectAuthz() {
	t := c.t
	tok := c.token("team-a-writer")
	status, msg := c.post(c.otlpHTTPURL+"/v1/metrics", "application/x-protobuf", tok, probeMetrics("team-b"))
	assert.Equal(t, http.StatusForbidden, status, "team-a-writer writing team-b: %s", msg)
	status, msg = c.post(c.otlpHTTPURL+"/v1/metrics", "application/x-protobuf", tok, probeMetrics("team-a"))
	assert.Equal(t, http.StatusOK, status, "team-a-writer writing team-a: %s", msg)
	status, _ = c.post(c.otlpHTTPURL+"/v1/metrics", "application/x-protobuf", "", probeMetrics("team-a"))
	assert.Equal(t, http.StatusUnauthorized, status, "OTLP without a token")
	status, msg = c.post(c.otlpHTTPURL+"/v1/traces", "application/x-protobuf", tok, probeTraces("team-a"))
	assert.Equal(t, http.StatusOK, status, "team-a-writer writing a team-a span: %s", msg)
	t.Log("OTLP: team-a-writer refused for team-b (403), accepted for team-a (metrics and a span)")
}

// checkDuplicateNotification re-POSTs a resolved notification exactly as
// Alertmanager sent it (from the receiver's audit log): accepted, and every
// alert in it counted as a repeat that adds nothing.
func (c *chain) checkDuplicateNotification() {
	t := c.t
	var body string
	deadline := time.Now().Add(30 * time.Second)
	for body == "" && time.Now().Before(deadline) {
		body = resolvedNotification(t, filepath.Join(c.outputDir, "logs.jsonl"))
		if body == "" {
			time.Sleep(time.Second)
		}
	}
	require.NotEmpty(t, body, "a resolved notification in the audit log")
	var n struct {
		Alerts []json.RawMessage `json:"alerts"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &n))
	const repeats = "otelcol_receiver_alertmanager_repeats_suppressed"
	before := c.counter(repeats)
	status, msg := c.post(c.webhookURL, "application/json", c.token("hub-writer"), []byte(body))
	assert.Equal(t, http.StatusOK, status, "duplicated notification: %s", msg)
	assert.Equal(t, before+float64(len(n.Alerts)), c.counter(repeats), "every alert of the duplicate is a suppressed repeat")
	t.Logf("duplicated notification (%d alerts) accepted and suppressed", len(n.Alerts))
}

func resolvedNotification(t *testing.T, path string) string {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	require.NoError(t, err)
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(line)
		require.NoError(t, err)
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					if s, ok := lr.Attributes().Get("alertmanager.notification.status"); ok && s.Str() == "resolved" {
						return lr.Body().Str()
					}
				}
			}
		}
	}
	return ""
}

// expected is one scheduled session and the span that must account for it.
type expected struct {
	a        dcgmreplay.Allocation
	spanName string
	hwID     string
	fraction float64
}

func expectations(t *testing.T, s *dcgmreplay.Schedule) []expected {
	var out []expected
	for _, a := range s.Allocations {
		g := s.GPUOf(a)
		e := expected{a: a, spanName: "gpu.usage", hwID: g.UUID}
		if a.Busy <= inUseThreshold {
			e.spanName = "gpu.idle"
		}
		if a.Slice != "" {
			e.hwID = g.UUID + "/" + a.Slice
		}
		f, ok := topology.SliceFraction(g.Model, s.ProfileOf(a))
		require.True(t, ok, "slice fraction of %s %s", g.Model, s.ProfileOf(a))
		e.fraction = f
		out = append(out, e)
	}
	return out
}

const hub = "moc"

// projectTenant is the trace store tenant of a project's data: the Keycloak
// resource it was authorized on, which projectauthz makes the tenant.
func projectTenant(namespace string) string { return topology.ProjectResource(hub, cluster, namespace) }

// projects are the schedule's namespaces, sorted.
func projects(s *dcgmreplay.Schedule) []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range s.Allocations {
		if !seen[a.Namespace] {
			seen[a.Namespace] = true
			out = append(out, a.Namespace)
		}
	}
	sort.Strings(out)
	return out
}

// sessionSpans reads every project's session spans, each project under its
// own tenant, as that project's Grafana data source would.
func (c *chain) sessionSpans(s *dcgmreplay.Schedule) ([]storedSpan, error) {
	var all []storedSpan
	for _, ns := range projects(s) {
		spans, err := jaegerSpans(c.jaegerQuery, projectTenant(ns), "alertmanager", c.t0.Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			return nil, err
		}
		all = append(all, spans...)
	}
	return all, nil
}

// waitForSessions polls Jaeger until it holds as many session spans as the
// schedule has sessions (or a minute passed), then returns every span.
func (c *chain) waitForSessions(s *dcgmreplay.Schedule) []storedSpan {
	t := c.t
	want := len(s.Allocations)
	var spans []storedSpan
	deadline := time.Now().Add(time.Minute)
	for {
		var err error
		spans, err = c.sessionSpans(s)
		got := 0
		if err == nil {
			for _, sp := range spans {
				if sp.Name == "gpu.usage" || sp.Name == "gpu.idle" {
					got++
				}
			}
		}
		if got >= want || time.Now().After(deadline) {
			t.Logf("Jaeger holds %d session spans (want %d), %d spans in all, %s after the schedule's start", got, want, len(spans), time.Since(c.t0).Round(time.Second))
			break
		}
		time.Sleep(time.Second)
	}
	// Anything late (a duplicate) would show up now.
	time.Sleep(3 * time.Second)
	spans, err := c.sessionSpans(s)
	require.NoError(t, err)
	return spans
}

// str is a tag's value as a string, "" when the span lacks it.
func str(v any) string {
	switch s := v.(type) {
	case nil:
		return ""
	case string:
		return s
	default:
		return fmt.Sprint(v)
	}
}

// checkSessions: each scheduled session is exactly one span of the right name
// with the right project, pod, node and GPU or slice, starting and ending
// within timeTolerance of the schedule; no other session span exists; the
// GPU-hours per project agree with the schedule within 2%.
func (c *chain) checkSessions(s *dcgmreplay.Schedule, spans []storedSpan) {
	t := c.t
	exps := expectations(t, s)
	used := map[string]bool{}
	wantHours, gotHours := map[string]float64{}, map[string]float64{}
	var maxStartErr, maxEndErr time.Duration
	for _, e := range exps {
		var matches []storedSpan
		for _, sp := range spans {
			if sp.Name == e.spanName && str(sp.Attrs["k8s.namespace.name"]) == e.a.Namespace &&
				str(sp.Attrs["k8s.pod.name"]) == e.a.Pod && str(sp.Attrs["k8s.node.name"]) == e.a.Node &&
				str(sp.Attrs["hw.id"]) == e.hwID && str(sp.Attrs["k8s.cluster.name"]) == cluster {
				matches = append(matches, sp)
			}
		}
		if e.spanName == "gpu.usage" {
			// Every scheduled session counts, found or not.
			wantHours[e.a.Namespace] += (e.a.To - e.a.From).Hours() * e.fraction
		}
		what := fmt.Sprintf("%s %s/%s on %s %s [%s, %s)", e.spanName, e.a.Namespace, e.a.Pod, e.a.Node, e.hwID, e.a.From, e.a.To)
		if !assert.Len(t, matches, 1, "exactly one span for %s", what) {
			continue
		}
		sp := matches[0]
		used[sp.SpanID] = true
		if e.a.Slice != "" {
			assert.Equal(t, e.a.Slice, str(sp.Attrs["nvidia.mig.gpu_instance_id"]), what)
			assert.Equal(t, s.ProfileOf(e.a), str(sp.Attrs["nvidia.mig.profile"]), what)
		}
		startErr, endErr := sp.Start.Sub(c.t0.Add(e.a.From)), sp.End.Sub(c.t0.Add(e.a.To))
		assert.LessOrEqual(t, absDur(startErr), timeTolerance, "start of %s: %s off", what, startErr)
		assert.LessOrEqual(t, absDur(endErr), timeTolerance, "end of %s: %s off", what, endErr)
		maxStartErr, maxEndErr = max(maxStartErr, absDur(startErr)), max(maxEndErr, absDur(endErr))
		t.Logf("session %-60s span %s start %+.1fs end %+.1fs", what, sp.SpanID, startErr.Seconds(), endErr.Seconds())
		if e.spanName == "gpu.usage" {
			fraction, ok := topology.SliceFraction(str(sp.Attrs["hw.model"]), str(sp.Attrs["nvidia.mig.profile"]))
			require.True(t, ok, "slice fraction from the span's attributes")
			gotHours[e.a.Namespace] += sp.End.Sub(sp.Start).Hours() * fraction
		}
	}
	for _, sp := range spans {
		if (sp.Name == "gpu.usage" || sp.Name == "gpu.idle") && !used[sp.SpanID] {
			t.Errorf("span %s %s (%s/%s on %s) matches no scheduled session", sp.Name, sp.SpanID,
				str(sp.Attrs["k8s.namespace.name"]), str(sp.Attrs["k8s.pod.name"]), str(sp.Attrs["hw.id"]))
		}
	}
	projects := make([]string, 0, len(wantHours))
	for p := range wantHours {
		projects = append(projects, p)
	}
	sort.Strings(projects)
	for _, p := range projects {
		rel := (gotHours[p] - wantHours[p]) / wantHours[p]
		t.Logf("GPU-hours %s: spans %.5f, schedule %.5f (%+.2f%%)", p, gotHours[p], wantHours[p], 100*rel)
		assert.LessOrEqual(t, math.Abs(rel), gpuHoursTolerance, "GPU-hours of %s", p)
	}
	t.Logf("sessions %d, largest start error %s, largest end error %s", len(exps), maxStartErr, maxEndErr)
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// checkNoDuplicates: no span ID twice, neither in the store nor in what the
// collector emitted (its file exporter's copy of the traces pipeline), and at
// most one start marker per session.
func (c *chain) checkNoDuplicates(spans []storedSpan) {
	t := c.t
	seen := map[string]int{}
	markers := 0
	for _, sp := range spans {
		seen[sp.SpanID]++
		if strings.HasSuffix(sp.Name, ".start") {
			markers++
		}
	}
	for id, n := range seen {
		assert.Equal(t, 1, n, "span %s stored %d times", id, n)
	}
	emitted := map[string]int{}
	raw, err := os.ReadFile(filepath.Join(c.outputDir, "traces.jsonl"))
	require.NoError(t, err)
	total := 0
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(line)
		require.NoError(t, err)
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					emitted[sp.SpanID().String()]++
					total++
				}
			}
		}
	}
	for id, n := range emitted {
		assert.Equal(t, 1, n, "span %s emitted %d times", id, n)
	}
	t.Logf("spans: %d in Jaeger (%d distinct, %d start markers), %d emitted by the collector (%d distinct)",
		len(spans), len(seen), markers, total, len(emitted))
}

type projectsFile struct {
	Projects []struct {
		Namespace string `yaml:"namespace"`
		ID        string `yaml:"id"`
		Name      string `yaml:"name"`
		PI        string `yaml:"pi"`
	} `yaml:"projects"`
}

// checkEnrichedMetrics: the scraped DCGM series reached the file exporter
// through gpumodel with each project's metadata; team-a's authorized probe
// arrived and team-b's refused one did not.
func (c *chain) checkEnrichedMetrics() {
	t := c.t
	raw, err := os.ReadFile("testdata/projects.yaml")
	require.NoError(t, err)
	var pf projectsFile
	require.NoError(t, yaml.Unmarshal(raw, &pf))

	f, err := os.Open(filepath.Join(c.outputDir, "metrics.jsonl"))
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	enriched := map[string]int{}
	probes := map[string]int{}
	points := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(sc.Bytes())
		require.NoError(t, err)
		for _, rm := range md.ResourceMetrics().All() {
			attrs := rm.Resource().Attributes()
			ns, _ := attrs.Get(topology.AttrK8sNamespaceName)
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					if m.Name() == probeMetric {
						probes[ns.Str()]++
						continue
					}
					if !strings.HasPrefix(m.Name(), "DCGM_FI_") || ns.Str() == "" {
						continue
					}
					points++
					for _, p := range pf.Projects {
						if p.Namespace != ns.Str() {
							continue
						}
						for k, want := range map[string]string{topology.AttrProjectID: p.ID, topology.AttrProjectName: p.Name, topology.AttrProjectPI: p.PI} {
							got, ok := attrs.Get(k)
							if assert.True(t, ok, "%s of %s on %s", k, p.Namespace, m.Name()) {
								assert.Equal(t, want, got.Str(), "%s of %s", k, p.Namespace)
							}
						}
						enriched[p.Namespace]++
					}
				}
			}
		}
	}
	require.NoError(t, sc.Err())
	for _, p := range pf.Projects {
		assert.Positive(t, enriched[p.Namespace], "enriched DCGM metrics of %s", p.Namespace)
	}
	assert.Equal(t, 1, probes["team-a"], "team-a's authorized probe arrives once")
	assert.Zero(t, probes["team-b"], "team-b's refused probe is absent")
	t.Logf("enriched DCGM metrics with a project: %v (of %d); authz probes found: %v", enriched, points, probes)
}

// checkTenantIsolation: each project's reader (a Grafana data source sending
// that project's X-Scope-OrgID) sees its own project's sessions and nothing of
// another's. spans are the session spans read per tenant.
func (c *chain) checkTenantIsolation(s *dcgmreplay.Schedule, spans []storedSpan) {
	t := c.t
	teamA := projectTenant("team-a")
	byProject := map[string][]storedSpan{}
	for _, sp := range spans {
		ns := str(sp.Attrs[topology.AttrK8sNamespaceName])
		// A search under a project's tenant returns that project's spans only.
		assert.Equal(t, projectTenant(ns), sp.Tenant, "span %s %s of %s read under tenant %s", sp.Name, sp.SpanID, ns, sp.Tenant)
		byProject[ns] = append(byProject[ns], sp)
	}
	for _, ns := range projects(s) {
		assert.NotEmpty(t, byProject[ns], "%s's sessions under its own tenant", ns)
	}

	// team-a's reader fetches its own traces (found) and every other
	// project's by ID (not found), including traces it knows the ID of.
	own, foreign := 0, 0
	tried := map[string]bool{}
	for _, sp := range spans {
		if tried[sp.TraceID] {
			continue
		}
		tried[sp.TraceID] = true
		status, got, err := jaegerTrace(c.jaegerQuery, teamA, sp.TraceID)
		require.NoError(t, err)
		if str(sp.Attrs[topology.AttrK8sNamespaceName]) == "team-a" {
			assert.Equal(t, http.StatusOK, status, "team-a's trace %s under team-a's tenant", sp.TraceID)
			assert.NotEmpty(t, got, "team-a's trace %s under team-a's tenant", sp.TraceID)
			own++
			continue
		}
		assert.Equal(t, http.StatusNotFound, status, "%s's trace %s under team-a's tenant", str(sp.Attrs[topology.AttrK8sNamespaceName]), sp.TraceID)
		assert.Empty(t, got, "%s's trace %s under team-a's tenant", str(sp.Attrs[topology.AttrK8sNamespaceName]), sp.TraceID)
		foreign++
	}
	assert.Positive(t, foreign, "other projects' traces were tried")

	// team-a-writer's OTLP span: under team-a's tenant, not team-b's.
	from, to := c.t0.Add(-time.Hour), time.Now().Add(time.Hour)
	probes, err := jaegerSpans(c.jaegerQuery, teamA, probeService, from, to)
	require.NoError(t, err)
	assert.Len(t, probes, 1, "team-a-writer's span under team-a's tenant")
	probes, err = jaegerSpans(c.jaegerQuery, projectTenant("team-b"), probeService, from, to)
	require.NoError(t, err)
	assert.Empty(t, probes, "team-a-writer's span under team-b's tenant")

	// Nothing in a shared tenant (the gateway's former static one), and no
	// read without a tenant.
	shared, err := jaegerSpans(c.jaegerQuery, "ai-telemetry", "alertmanager", from, to)
	require.NoError(t, err)
	assert.Empty(t, shared, "spans under a shared tenant")
	status, _, err := jaegerGet(c.jaegerQuery, "", "/api/services", nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, status, "a query without a tenant")
	// Nothing was dropped for want of a tenant (since the restart).
	assert.Zero(t, c.counter("otelcol_tenantheader_requests_refused"), "requests the exporter refused without a tenant")
	t.Logf("tenants: %d projects each read under its own tenant; team-a's reader found its %d traces by ID and none of the other projects' %d; "+
		"team-a-writer's span under team-a only; shared tenant empty; no tenant: %d", len(byProject), own, foreign, status)
}
