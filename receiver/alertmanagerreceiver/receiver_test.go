package alertmanagerreceiver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
	"github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver/internal/metadata"
	"github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver/internal/metadatatest"
)

var (
	t0 = time.Date(2026, 11, 2, 9, 0, 0, 123456789, time.UTC)
	t1 = t0.Add(90 * time.Minute)
)

// gpuLabels are an alert's labels as the GPUInUse rule produces them from DCGM
// series scraped with honorLabels: false.
func gpuLabels(ns, pod, migID string) map[string]string {
	l := map[string]string{
		"alertname": "GPUInUse", "severity": "info", "cluster": "nerc-ocp-prod",
		"Hostname": "wrk-10", "UUID": "GPU-603a8873-0edd-c157-ce48-2078e8b1a935", "gpu": "0",
		"modelName": "NVIDIA A100-SXM4-40GB", "exported_namespace": ns, "exported_pod": pod,
		"exported_container": "main", "namespace": "nvidia-gpu-operator", "instance": "10.128.4.7:9400",
	}
	if migID != "" {
		l["GPU_I_ID"] = migID
		l["GPU_I_PROFILE"] = "3g.20gb"
	}
	return l
}

type testAlert struct {
	status      string
	labels      map[string]string
	startsAt    time.Time
	endsAt      time.Time
	fingerprint string
}

func notificationJSON(t testing.TB, truncated int, alerts ...testAlert) []byte {
	t.Helper()
	var list []map[string]any
	status := "resolved"
	for _, a := range alerts {
		if a.status == "firing" {
			status = "firing"
		}
		ends := "0001-01-01T00:00:00Z"
		if !a.endsAt.IsZero() {
			ends = a.endsAt.Format(time.RFC3339Nano)
		}
		list = append(list, map[string]any{
			"status": a.status, "labels": a.labels,
			"annotations":  map[string]string{"summary": "GPU busy"},
			"startsAt":     a.startsAt.Format(time.RFC3339Nano),
			"endsAt":       ends,
			"generatorURL": "http://prometheus.example/graph?g0.expr=gpu",
			"fingerprint":  a.fingerprint,
		})
	}
	body, err := json.Marshal(map[string]any{
		"version": "4", "groupKey": `{}:{alertname="GPUInUse"}`, "truncatedAlerts": truncated,
		"status": status, "receiver": "ai-telemetry", "groupLabels": map[string]string{"alertname": "GPUInUse"},
		"commonLabels": map[string]string{"alertname": "GPUInUse"}, "commonAnnotations": map[string]string{},
		"externalURL": "http://alertmanager.example", "alerts": list,
		"notification_reason": "new_alerts", "some_future_field": []int{1, 2},
	})
	require.NoError(t, err)
	return body
}

type harness struct {
	t      *testing.T
	rcv    *alertmanagerReceiver
	sink   *consumertest.TracesSink
	tel    *componenttest.Telemetry
	url    string
	client *http.Client
}

func startReceiver(t *testing.T, mutate func(*Config), next consumer.Traces) *harness {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Hub = "moc"
	cfg.SpanNames = map[string]string{"GPUInUse": "gpu.usage", "GPUAllocatedIdle": "gpu.idle"}
	if mutate != nil {
		mutate(cfg)
	}
	tel := componenttest.NewTelemetry()
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	sink := new(consumertest.TracesSink)
	if next == nil {
		next = sink
	}
	r, err := NewFactory().CreateTraces(context.Background(), set, cfg, next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	h := &harness{t: t, rcv: r.(*alertmanagerReceiver), sink: sink, tel: tel, client: &http.Client{Timeout: 10 * time.Second}}
	h.url = "http://" + h.rcv.addr + cfg.Path
	t.Cleanup(func() {
		require.NoError(t, r.Shutdown(context.Background()))
		require.NoError(t, tel.Shutdown(context.Background()))
	})
	return h
}

func (h *harness) post(body []byte) (int, string) {
	h.t.Helper()
	return h.postAs("", body)
}

// postAs posts as the caller subject (a bearer token the test authenticators
// read as the subject; none when empty).
func (h *harness) postAs(subject string, body []byte) (int, string) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.url, bytes.NewReader(body))
	require.NoError(h.t, err)
	req.Header.Set("Content-Type", "application/json")
	if subject != "" {
		req.Header.Set("Authorization", "Bearer "+subject)
	}
	resp, err := h.client.Do(req)
	require.NoError(h.t, err)
	defer func() { _ = resp.Body.Close() }()
	msg, err := io.ReadAll(resp.Body)
	require.NoError(h.t, err)
	return resp.StatusCode, string(msg)
}

// spans flattens what the sink received, with each span's resource attributes.
func (h *harness) spans() []spanWithResource {
	var out []spanWithResource
	for _, td := range h.sink.AllTraces() {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, s := range ss.Spans().All() {
					out = append(out, spanWithResource{span: s, resource: rs.Resource().Attributes()})
				}
			}
		}
	}
	return out
}

type spanWithResource struct {
	span     ptrace.Span
	resource pcommon.Map
}

func attr(m pcommon.Map, key string) string {
	v, ok := m.Get(key)
	if !ok {
		return "<absent>"
	}
	return v.AsString()
}

func TestFiringThenResolved(t *testing.T) {
	h := startReceiver(t, nil, nil)
	firing := testAlert{status: "firing", labels: gpuLabels("team-a", "train-0", ""), startsAt: t0, fingerprint: "a1b2c3d4e5f60718"}

	code, msg := h.post(notificationJSON(t, 0, firing))
	require.Equal(t, http.StatusOK, code, msg)
	spans := h.spans()
	require.Len(t, spans, 1)
	start := spans[0].span
	assert.Equal(t, "gpu.usage.start", start.Name())
	assert.Equal(t, t0, start.StartTimestamp().AsTime())
	assert.Equal(t, t0, start.EndTimestamp().AsTime())
	assert.False(t, start.ParentSpanID().IsEmpty(), "the start marker hangs under the session span")

	// A repeat (repeat_interval) adds nothing.
	code, _ = h.post(notificationJSON(t, 0, firing))
	require.Equal(t, http.StatusOK, code)
	require.Len(t, h.spans(), 1)

	resolved := firing
	resolved.status, resolved.endsAt = "resolved", t1
	code, msg = h.post(notificationJSON(t, 0, resolved))
	require.Equal(t, http.StatusOK, code, msg)
	spans = h.spans()
	require.Len(t, spans, 2)
	session := spans[1].span
	assert.Equal(t, "gpu.usage", session.Name())
	assert.Equal(t, start.TraceID(), session.TraceID())
	assert.Equal(t, start.ParentSpanID(), session.SpanID())
	assert.True(t, session.ParentSpanID().IsEmpty())
	assert.Equal(t, t0, session.StartTimestamp().AsTime())
	assert.Equal(t, t1, session.EndTimestamp().AsTime())

	a := session.Attributes()
	for key, want := range map[string]string{
		"k8s.cluster.name":                 "nerc-ocp-prod",
		"k8s.node.name":                    "wrk-10",
		"k8s.namespace.name":               "team-a",
		"k8s.pod.name":                     "train-0",
		"k8s.container.name":               "main",
		"hw.id":                            "GPU-603a8873-0edd-c157-ce48-2078e8b1a935",
		"hw.type":                          "gpu",
		"hw.vendor":                        "NVIDIA",
		"hw.model":                         "NVIDIA A100-SXM4-40GB",
		"nvidia.gpu.index":                 "0",
		"aitelemetry.hub.name":             "moc",
		"aitelemetry.keycloak.resource":    "HUB-moc-CLUSTER-nerc-ocp-prod-PROJECT-team-a",
		"alertmanager.alert.name":          "GPUInUse",
		"alertmanager.alert.severity":      "info",
		"alertmanager.alert.status":        "resolved",
		"alertmanager.alert.fingerprint":   "a1b2c3d4e5f60718",
		"alertmanager.alert.generator_url": "http://prometheus.example/graph?g0.expr=gpu",
		"alertmanager.external_url":        "http://alertmanager.example",
		"alertmanager.receiver":            "ai-telemetry",
		"alertmanager.group_key":           `{}:{alertname="GPUInUse"}`,
		"alertmanager.label.instance":      "10.128.4.7:9400",
		"alertmanager.annotation.summary":  "GPU busy",
		"nvidia.mig.gpu_instance_id":       "<absent>",
		"alertmanager.label.namespace":     "<absent>",
		"alertmanager.label.exported_pod":  "<absent>",
		"alertmanager.label.alertname":     "<absent>",
	} {
		assert.Equal(t, want, attr(a, key), key)
	}
	res := spans[1].resource
	assert.Equal(t, "nerc-ocp-prod", attr(res, "k8s.cluster.name"))
	assert.Equal(t, "team-a", attr(res, "k8s.namespace.name"))
	assert.Equal(t, "train-0", attr(res, "k8s.pod.name"))
	assert.Equal(t, "alertmanager", attr(res, "service.name"))

	// The resolution delivered again (an HA peer) adds nothing either.
	code, _ = h.post(notificationJSON(t, 0, resolved))
	require.Equal(t, http.StatusOK, code)
	require.Len(t, h.spans(), 2)
}

func TestResolvedWithoutFiringYieldsCompleteSpan(t *testing.T) {
	h := startReceiver(t, nil, nil)
	a := testAlert{status: "resolved", labels: gpuLabels("team-b", "nb-0", "2"), startsAt: t0, endsAt: t1, fingerprint: "ffee"}
	code, msg := h.post(notificationJSON(t, 0, a))
	require.Equal(t, http.StatusOK, code, msg)
	spans := h.spans()
	require.Len(t, spans, 1)
	s := spans[0].span
	assert.Equal(t, "gpu.usage", s.Name())
	assert.Equal(t, t1.Sub(t0), s.EndTimestamp().AsTime().Sub(s.StartTimestamp().AsTime()))
	assert.Equal(t, "GPU-603a8873-0edd-c157-ce48-2078e8b1a935/2", attr(s.Attributes(), "hw.id"))
	assert.Equal(t, "GPU-603a8873-0edd-c157-ce48-2078e8b1a935", attr(s.Attributes(), "hw.parent"))
	assert.Equal(t, "3g.20gb", attr(s.Attributes(), "nvidia.mig.profile"))
	assert.Equal(t, "2", attr(s.Attributes(), "nvidia.mig.gpu_instance_id"))
}

func TestMixedNotificationAndRefire(t *testing.T) {
	h := startReceiver(t, nil, nil)
	running := testAlert{status: "firing", labels: gpuLabels("team-a", "p1", ""), startsAt: t0, fingerprint: "0001"}
	done := testAlert{status: "resolved", labels: gpuLabels("team-b", "p2", ""), startsAt: t0, endsAt: t1, fingerprint: "0002"}
	idle := testAlert{status: "firing", labels: map[string]string{"alertname": "GPUAllocatedIdle", "cluster": "nerc-ocp-prod", "exported_namespace": "team-c"}, startsAt: t0, fingerprint: "0003"}
	code, msg := h.post(notificationJSON(t, 0, running, done, idle))
	require.Equal(t, http.StatusOK, code, msg)

	names := map[string]int{}
	for _, s := range h.spans() {
		names[s.span.Name()]++
	}
	assert.Equal(t, map[string]int{"gpu.usage.start": 1, "gpu.usage": 1, "gpu.idle.start": 1}, names)
	assert.Equal(t, 3, h.sink.AllTraces()[0].ResourceSpans().Len(), "one resource per (cluster, namespace, pod)")

	// The same alert firing again after its resolution is a new session.
	refire := done
	refire.status, refire.startsAt, refire.endsAt = "firing", t1.Add(time.Hour), time.Time{}
	code, _ = h.post(notificationJSON(t, 0, refire))
	require.Equal(t, http.StatusOK, code)
	spans := h.spans()
	require.Len(t, spans, 4)
	assert.Equal(t, "gpu.usage.start", spans[3].span.Name())
	for _, s := range spans[:3] {
		assert.NotEqual(t, s.span.TraceID(), spans[3].span.TraceID())
	}
}

func TestTruncatedAlertsAreCounted(t *testing.T) {
	h := startReceiver(t, nil, nil)
	a := testAlert{status: "firing", labels: gpuLabels("team-a", "p", ""), startsAt: t0, fingerprint: "01"}
	code, _ := h.post(notificationJSON(t, 7, a))
	require.Equal(t, http.StatusOK, code)
	require.Len(t, h.spans(), 1)
	metadatatest.AssertEqualReceiverAlertmanagerAlertsTruncated(t, h.tel,
		[]metricdata.DataPoint[int64]{{Value: 7}}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

func TestHostileTruncatedCountIsClamped(t *testing.T) {
	h := startReceiver(t, nil, nil)
	body := bytes.Replace(
		notificationJSON(t, 0, testAlert{status: "firing", labels: gpuLabels("team-a", "p", ""), startsAt: t0, fingerprint: "02"}),
		[]byte(`"truncatedAlerts":0`), []byte(`"truncatedAlerts":18446744073709551615`), 1)
	code, msg := h.post(body)
	require.Equal(t, http.StatusOK, code, msg)
	metadatatest.AssertEqualReceiverAlertmanagerAlertsTruncated(t, h.tel,
		[]metricdata.DataPoint[int64]{{Value: math.MaxInt64}}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

func TestRejections(t *testing.T) {
	good := testAlert{status: "firing", labels: gpuLabels("team-a", "p", ""), startsAt: t0, fingerprint: "0a"}
	tests := []struct {
		name       string
		method     string
		body       []byte
		wantStatus int
		wantMsg    string
		wantReason string
		wantSpans  int
	}{
		{name: "GET", wantReason: "method_not_allowed", method: http.MethodGet, wantStatus: http.StatusMethodNotAllowed, wantMsg: "only POST"},
		{name: "not JSON", wantReason: "malformed_json", body: []byte("alerts: yes"), wantStatus: http.StatusBadRequest, wantMsg: "malformed JSON: syntax error at byte 1"},
		{name: "truncated JSON", wantReason: "malformed_json", body: notificationJSON(t, 0, good)[:40], wantStatus: http.StatusBadRequest, wantMsg: "malformed JSON"},
		{name: "wrong type", wantReason: "malformed_json", body: []byte(`{"version":"4","alerts":{"a":1}}`), wantStatus: http.StatusBadRequest, wantMsg: `field "alerts" must be`},
		{name: "bad time", wantReason: "malformed_json", body: []byte(`{"version":"4","alerts":[{"status":"firing","startsAt":"yesterday","fingerprint":"x"}]}`), wantStatus: http.StatusBadRequest, wantMsg: "malformed JSON"},
		{name: "version 3", wantReason: "unsupported_version", body: bytes.Replace(notificationJSON(t, 0, good), []byte(`"version":"4"`), []byte(`"version":"3"`), 1), wantStatus: http.StatusBadRequest, wantMsg: `unsupported webhook payload version "3": this receiver accepts version "4"`},
		{name: "no version", wantReason: "unsupported_version", body: []byte(`{"alerts":[]}`), wantStatus: http.StatusBadRequest, wantMsg: "unsupported webhook payload version"},
		{name: "no alerts", wantReason: "no_alerts", body: []byte(`{"version":"4","alerts":[]}`), wantStatus: http.StatusBadRequest, wantMsg: "no alerts"},
		{name: "JSON null", wantReason: "unsupported_version", body: []byte(`null`), wantStatus: http.StatusBadRequest, wantMsg: "unsupported webhook payload version"},
		{name: "deep nesting", wantReason: "malformed_json", body: []byte(`{"version":"4","groupLabels":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`), wantStatus: http.StatusBadRequest, wantMsg: "malformed JSON"},
		{name: "over the size limit", wantReason: "too_large", body: append([]byte(`{"version":"4","receiver":"`), bytes.Repeat([]byte("x"), 70000)...), wantStatus: http.StatusRequestEntityTooLarge, wantMsg: "exceeds 65536 bytes"},
		{
			name: "invalid alerts dropped, valid one kept",
			body: notificationJSON(t, 0, good,
				testAlert{status: "pending", labels: gpuLabels("x", "y", ""), startsAt: t0, fingerprint: "0b"},
				testAlert{status: "firing", labels: gpuLabels("x", "y", ""), startsAt: t0},
				testAlert{status: "resolved", labels: gpuLabels("x", "y", ""), startsAt: t1, endsAt: t0, fingerprint: "0c"},
				testAlert{status: "firing", labels: gpuLabels("x", "y", ""), fingerprint: "0d"},
				testAlert{status: "resolved", labels: gpuLabels("x", "y", ""), startsAt: time.Date(622, 1, 1, 0, 0, 0, 0, time.UTC), endsAt: t0, fingerprint: "0e"},
				testAlert{status: "resolved", labels: gpuLabels("x", "y", ""), startsAt: t0, endsAt: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), fingerprint: "0f"}),
			wantStatus: http.StatusBadRequest,
			wantMsg:    `6 invalid alert(s) dropped, the others were accepted: alerts[1]: status must be firing or resolved, got "pending"; alerts[2]: fingerprint is missing; alerts[3]: endsAt is before startsAt; alerts[4]: startsAt is missing; alerts[5]: startsAt 0622-01-01T00:00:00Z: time outside what OTLP can carry (1970 to 2262); and 1 more`,
			wantReason: "invalid_alerts",
			wantSpans:  1,
		},
	}
	manyLabels := gpuLabels("team-a", "p", "")
	for i := range maxLabelsPerAlert {
		manyLabels[fmt.Sprint("l", i)] = ""
	}
	tests = append(tests, struct {
		name       string
		method     string
		body       []byte
		wantStatus int
		wantMsg    string
		wantReason string
		wantSpans  int
	}{
		// Each label is an attribute, and adding one scans those already
		// there: an alert of 4 MiB of labels took minutes of CPU.
		name: "too many labels", body: notificationJSON(t, 0, good, testAlert{status: "firing", labels: manyLabels, startsAt: t0, fingerprint: "10"}),
		wantStatus: http.StatusBadRequest, wantMsg: "alerts[1]: too many labels or annotations: 140 labels and 1 annotations, at most 128 each",
		wantReason: "invalid_alerts", wantSpans: 1,
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startReceiver(t, func(c *Config) { c.MaxRequestBodySize = 65536 }, nil)
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			req, err := http.NewRequest(method, h.url, bytes.NewReader(tt.body))
			require.NoError(t, err)
			resp, err := h.client.Do(req)
			require.NoError(t, err)
			msg, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			assert.Equal(t, tt.wantStatus, resp.StatusCode)
			assert.Contains(t, string(msg), tt.wantMsg)
			assert.Len(t, h.spans(), tt.wantSpans)
			metadatatest.AssertEqualReceiverAlertmanagerRequestsRejected(t, h.tel, []metricdata.DataPoint[int64]{{
				Attributes: attribute.NewSet(attribute.String("reason", tt.wantReason)), Value: 1,
			}}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
		})
	}
}

func TestConsumerErrors(t *testing.T) {
	a := testAlert{status: "resolved", labels: gpuLabels("team-a", "p", ""), startsAt: t0, endsAt: t1, fingerprint: "77"}

	t.Run("retryable: 503, and the retry emits the span", func(t *testing.T) {
		failing := &flakyTraces{err: errors.New("queue full")}
		h := startReceiver(t, nil, failing)
		code, msg := h.post(notificationJSON(t, 0, a))
		assert.Equal(t, http.StatusServiceUnavailable, code)
		assert.Contains(t, msg, "retry later")
		assert.NotContains(t, msg, "queue full", "internal errors are not echoed to the caller")

		failing.err = nil
		code, _ = h.post(notificationJSON(t, 0, a))
		assert.Equal(t, http.StatusOK, code)
		assert.Equal(t, 1, failing.sink.SpanCount(), "nothing was recorded as emitted while the consumer failed")
	})

	t.Run("permanent: 422 and counted", func(t *testing.T) {
		h := startReceiver(t, nil, &flakyTraces{err: consumererror.NewPermanent(errors.New("schema"))})
		code, _ := h.post(notificationJSON(t, 0, a))
		assert.Equal(t, http.StatusUnprocessableEntity, code)
		metadatatest.AssertEqualReceiverAlertmanagerRequestsRejected(t, h.tel, []metricdata.DataPoint[int64]{{
			Attributes: attribute.NewSet(attribute.String("reason", "consumer_permanent")), Value: 1,
		}}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	})
}

type flakyTraces struct {
	err  error
	sink consumertest.TracesSink
}

func (f *flakyTraces) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (f *flakyTraces) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	if f.err != nil {
		return f.err
	}
	return f.sink.ConsumeTraces(ctx, td)
}

func TestSessionIDsAreDeterministic(t *testing.T) {
	a := deriveSessionIDs("a1b2c3d4e5f60718", t0.UnixNano(), teamAResource)
	b := deriveSessionIDs("a1b2c3d4e5f60718", t0.UnixNano(), teamAResource)
	assert.Equal(t, a, b)
	assert.NotEqual(t, a.session, a.start)
	assert.False(t, a.trace.IsEmpty())
	for name, other := range map[string]sessionIDs{
		"startsAt":    deriveSessionIDs("a1b2c3d4e5f60718", t0.Add(time.Nanosecond).UnixNano(), teamAResource),
		"fingerprint": deriveSessionIDs("a1b2c3d4e5f60719", t0.UnixNano(), teamAResource),
		"resource":    deriveSessionIDs("a1b2c3d4e5f60718", t0.UnixNano(), teamAResource+"x"),
		// The fields are length-prefixed: moving bytes between them is another session.
		"boundary": deriveSessionIDs("a1b2c3d4e5f60718H", t0.UnixNano(), teamAResource[1:]),
	} {
		assert.NotEqual(t, a.trace, other.trace, name)
	}
}

// teamAResource is the resource of gpuLabels("team-a", ...) with hub moc.
const teamAResource = "HUB-moc-CLUSTER-nerc-ocp-prod-PROJECT-team-a"

// idsOf derives the session IDs r gives a test alert.
func idsOf(r *alertmanagerReceiver, a testAlert) sessionIDs {
	e := r.builder.parser.Parse(topology.MapLabels(a.labels))
	return deriveSessionIDs(a.fingerprint, a.startsAt.UnixNano(), e.Resource(r.builder.hub))
}

func TestLogsPipelineGetsOneAuditRecordPerNotification(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	set := receivertest.NewNopSettings(metadata.Type)
	traces, logs := new(consumertest.TracesSink), new(consumertest.LogsSink)
	f := NewFactory()
	tr, err := f.CreateTraces(context.Background(), set, cfg, traces)
	require.NoError(t, err)
	lr, err := f.CreateLogs(context.Background(), set, cfg, logs)
	require.NoError(t, err)
	require.Same(t, tr, lr, "both signals share one server")
	host := componenttest.NewNopHost()
	require.NoError(t, tr.Start(context.Background(), host))
	require.NoError(t, lr.Start(context.Background(), host))

	h := &harness{t: t, rcv: tr.(*alertmanagerReceiver), client: http.DefaultClient}
	h.url = "http://" + h.rcv.addr + cfg.Path
	body := notificationJSON(t, 0, testAlert{status: "firing", labels: gpuLabels("team-a", "p", ""), startsAt: t0, fingerprint: "99"})
	code, _ := h.post(body)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, 1, traces.SpanCount())
	require.Equal(t, 1, logs.LogRecordCount())
	rec := logs.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	assert.Equal(t, string(body), rec.Body().Str())
	assert.Equal(t, "firing", attr(rec.Attributes(), "alertmanager.notification.status"))

	require.NoError(t, lr.Shutdown(context.Background()))
	// The server keeps serving the remaining pipeline until its shutdown.
	code, _ = h.post(body)
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, tr.Shutdown(context.Background()))
	resp, err := http.Post(h.url, "application/json", bytes.NewReader(body))
	if err == nil {
		_ = resp.Body.Close()
	}
	require.Error(t, err, "the server is closed after the last shutdown")
}

func TestActiveAtAnnotationGivesTheRealStart(t *testing.T) {
	tests := []struct {
		name     string
		activeAt string
		want     time.Time
	}{
		{name: "Prometheus activeAt, for: earlier", activeAt: fmt.Sprint(t0.Add(-5 * time.Minute).Unix()), want: t0.Add(-5 * time.Minute).Truncate(time.Second)},
		{name: "fractional seconds", activeAt: "1793437200.5", want: time.Unix(1793437200, 500_000_000).UTC()},
		{name: "after startsAt: ignored", activeAt: fmt.Sprint(t0.Add(time.Minute).Unix()), want: t0},
		{name: "weeks earlier: ignored", activeAt: fmt.Sprint(t0.Add(-30 * 24 * time.Hour).Unix()), want: t0},
		{name: "not a number: ignored", activeAt: "soon", want: t0},
		{name: "empty (no ALERTS_FOR_STATE yet): ignored", activeAt: "", want: t0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startReceiver(t, nil, nil)
			body := notificationJSON(t, 0, testAlert{status: "resolved", labels: gpuLabels("team-a", "p", ""), startsAt: t0, endsAt: t1, fingerprint: "ac7e"})
			body = bytes.Replace(body, []byte(`"annotations":{"summary":"GPU busy"}`),
				[]byte(`"annotations":{"summary":"GPU busy","active_at":"`+tt.activeAt+`"}`), 1)
			code, msg := h.post(body)
			require.Equal(t, http.StatusOK, code, msg)
			spans := h.spans()
			require.Len(t, spans, 1)
			assert.Equal(t, tt.want, spans[0].span.StartTimestamp().AsTime())
			assert.Equal(t, t1, spans[0].span.EndTimestamp().AsTime())
			assert.Equal(t, idsOf(h.rcv, testAlert{labels: gpuLabels("team-a", "p", ""), startsAt: t0, fingerprint: "ac7e"}).session, spans[0].span.SpanID(), "IDs stay derived from startsAt")
		})
	}
}
