package alertmanagerreceiver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"

	"github.com/nerc-project/ai-telemetry-collector/internal/authz"
	"github.com/nerc-project/ai-telemetry-collector/internal/telemetrytest"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
	"github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver/internal/metadata"
)

// authorizerExt is an extension answering from a table of resources, reading
// the resource as Keycloak's token endpoint reads permission={resource}#{scope}:
// split on '#', decided on the first part, the rest ignored. So these tests see
// what the real server would decide; keycloakauth itself is tested against a
// real Keycloak in its own package.
type authorizerExt struct {
	component.StartFunc
	component.ShutdownFunc

	mu        sync.Mutex
	decisions map[string]error // resource -> answer; absent: denied
	// bySubject, when set, answers per caller instead: subject -> the
	// resources it may write.
	bySubject map[string][]string
	asked     []string
}

// subjectAuth is the auth data of a caller, as keycloakauth puts it.
type subjectAuth string

func (s subjectAuth) GetAttribute(name string) any {
	if name == "subject" {
		return string(s)
	}
	return nil
}

func (subjectAuth) GetAttributeNames() []string { return []string{"subject"} }

// Authenticate lets every request through, taking the caller's subject from
// "Authorization: Bearer {subject}": the tests are about decisions.
func (a *authorizerExt) Authenticate(ctx context.Context, headers map[string][]string) (context.Context, error) {
	for _, v := range headers["Authorization"] {
		if subject, ok := strings.CutPrefix(v, "Bearer "); ok {
			info := client.FromContext(ctx)
			info.Auth = subjectAuth(subject)
			return client.NewContext(ctx, info), nil
		}
	}
	return ctx, nil
}

func (a *authorizerExt) Authorize(ctx context.Context, resource string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked = append(a.asked, resource)
	decided, _, _ := strings.Cut(resource, "#")
	if a.bySubject != nil {
		var subject string
		if auth := client.FromContext(ctx).Auth; auth != nil {
			subject, _ = auth.GetAttribute("subject").(string)
		}
		if slices.Contains(a.bySubject[subject], decided) {
			return nil
		}
		return fmt.Errorf("%w: %s on %s", authz.ErrDenied, subject, decided)
	}
	if err, ok := a.decisions[decided]; ok {
		return err
	}
	return authz.ErrDenied
}

type extensionsHost map[component.ID]component.Component

func (h extensionsHost) GetExtensions() map[component.ID]component.Component { return h }

var authorizerID = component.MustNewIDWithName("keycloakauth", "gateway")

func startAuthorizedReceiver(t *testing.T, a *authorizerExt) *harness {
	t.Helper()
	return startAuthorizedReceiverWith(t, a, nil, nil)
}

// startAuthorizedReceiverWith starts it with the config changed by mutate
// and next as the consumer (nil: a sink).
func startAuthorizedReceiverWith(t *testing.T, a *authorizerExt, mutate func(*Config), next consumer.Traces) *harness {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Hub = "moc"
	cfg.SpanNames = map[string]string{"GPUInUse": "gpu.usage"}
	cfg.Authorizer = &authorizerID
	cfg.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: authorizerID}})
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	sink := new(consumertest.TracesSink)
	if next == nil {
		next = sink
	}
	r, err := NewFactory().CreateTraces(context.Background(), set, cfg, next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), extensionsHost{authorizerID: a}))
	h := &harness{t: t, rcv: r.(*alertmanagerReceiver), sink: sink, tel: tel, client: &http.Client{Timeout: 10 * time.Second}}
	h.url = "http://" + h.rcv.addr + cfg.Path
	t.Cleanup(func() {
		require.NoError(t, r.Shutdown(context.Background()))
		require.NoError(t, tel.Shutdown(context.Background()))
	})
	return h
}

func unauthorizedAlerts(t *testing.T, h *harness) int64 {
	t.Helper()
	return rejectedAlerts(t, h, "unauthorized")
}

var (
	teamA = topology.ProjectResource("moc", "nerc-ocp-prod", "team-a")
	teamB = topology.ProjectResource("moc", "nerc-ocp-prod", "team-b")
)

func TestAuthorizerDropsRefusedAlerts(t *testing.T) {
	a := &authorizerExt{decisions: map[string]error{teamA: nil}}
	h := startAuthorizedReceiver(t, a)
	code, msg := h.post(notificationJSON(t, 0,
		testAlert{status: "firing", labels: gpuLabels("team-a", "train-0", ""), startsAt: t0, fingerprint: "aaaa000000000001"},
		testAlert{status: "firing", labels: gpuLabels("team-b", "train-1", ""), startsAt: t0, fingerprint: "bbbb000000000001"},
		testAlert{status: "firing", labels: gpuLabels("team-a", "train-2", ""), startsAt: t0, fingerprint: "aaaa000000000002"},
	))
	require.Equal(t, http.StatusOK, code, msg)
	spans := h.spans()
	require.Len(t, spans, 2)
	for _, s := range spans {
		assert.Equal(t, teamA, attr(s.span.Attributes(), topology.AttrKeycloakResource))
	}
	assert.Equal(t, int64(1), unauthorizedAlerts(t, h))
	assert.ElementsMatch(t, []string{teamA, teamB}, a.asked, "one question per resource and notification")
}

func TestAuthorizerAllRefusedIs403(t *testing.T) {
	a := &authorizerExt{decisions: map[string]error{}}
	h := startAuthorizedReceiver(t, a)
	code, _ := h.post(notificationJSON(t, 0,
		testAlert{status: "firing", labels: gpuLabels("team-b", "train-1", ""), startsAt: t0, fingerprint: "bbbb000000000001"},
		testAlert{status: "resolved", labels: gpuLabels("team-b", "train-2", ""), startsAt: t0, endsAt: t1, fingerprint: "bbbb000000000002"},
	))
	assert.Equal(t, http.StatusForbidden, code)
	assert.Empty(t, h.spans())
	assert.Equal(t, int64(2), unauthorizedAlerts(t, h))
}

func TestAuthorizerUnavailableIs503(t *testing.T) {
	a := &authorizerExt{decisions: map[string]error{teamA: nil, teamB: errors.New("keycloak unreachable")}}
	h := startAuthorizedReceiver(t, a)
	code, _ := h.post(notificationJSON(t, 0,
		testAlert{status: "firing", labels: gpuLabels("team-a", "train-0", ""), startsAt: t0, fingerprint: "aaaa000000000001"},
		testAlert{status: "firing", labels: gpuLabels("team-b", "train-1", ""), startsAt: t0, fingerprint: "bbbb000000000001"},
	))
	assert.Equal(t, http.StatusServiceUnavailable, code, "Alertmanager retries; nothing is let through or lost")
	assert.Empty(t, h.spans())
}

func TestAuthorizerAsksAboutABoundedNumberOfResources(t *testing.T) {
	for _, limit := range []int{defaultMaxResourcesPerNotification, 3} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			a := &authorizerExt{decisions: map[string]error{teamA: nil}}
			h := startAuthorizedReceiverWith(t, a, func(c *Config) { c.MaxResourcesPerNotification = limit }, nil)
			long := strings.Repeat("x", 300)
			alerts := []testAlert{{status: "firing", labels: gpuLabels("team-a", "ok", ""), startsAt: t0, fingerprint: "aaaa000000000001"}}
			alerts = append(alerts, testAlert{status: "firing", labels: gpuLabels(long, "p", ""), startsAt: t0, fingerprint: "cccc000000000001"})
			for i := range limit + 5 {
				alerts = append(alerts, testAlert{status: "firing", labels: gpuLabels(fmt.Sprintf("ns-%d", i), "p", ""), startsAt: t0, fingerprint: fmt.Sprintf("dddd%012d", i)})
			}
			code, msg := h.post(notificationJSON(t, 0, alerts...))
			require.Equal(t, http.StatusBadRequest, code, "the over-long name is listed")
			assert.Contains(t, msg, "alerts[1]: namespace")
			require.Len(t, h.spans(), 1)
			assert.Len(t, a.asked, limit, "one notification asks about a bounded number of resources")
			for _, r := range a.asked {
				assert.NotContains(t, r, long, "an implausible name is never sent to Keycloak")
			}
			assert.Equal(t, int64(1), rejectedAlerts(t, h, "invalid_name"))
			assert.Equal(t, int64(limit-1), rejectedAlerts(t, h, "unauthorized"), "asked and denied")
			assert.Equal(t, int64(6), rejectedAlerts(t, h, "too_many_resources"), "beyond the bound, refused without asking")
		})
	}
}

func TestAuditLogKeepsOnlyAllowedAlerts(t *testing.T) {
	a := &authorizerExt{decisions: map[string]error{teamA: nil}}
	h := startAuthorizedReceiver(t, a)
	logs := new(consumertest.LogsSink)
	h.rcv.logs = logs
	code, _ := h.post(notificationJSON(t, 0,
		testAlert{status: "firing", labels: gpuLabels("team-a", "train-0", ""), startsAt: t0, fingerprint: "aaaa000000000001"},
		testAlert{status: "firing", labels: gpuLabels("team-b", "secret-pod", ""), startsAt: t0, fingerprint: "bbbb000000000001"},
		testAlert{status: "firing", labels: withLabels(gpuLabels("team-b", "smuggled-pod", ""), "cluster", "nerc-ocp-prod-PROJECT-team-a#GET#"), startsAt: t0, fingerprint: "bbbb000000000002"},
	))
	require.Equal(t, http.StatusBadRequest, code, "the smuggled name is listed as invalid")
	require.Equal(t, 1, logs.LogRecordCount())
	body := logs.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body().Str()
	assert.Contains(t, body, "train-0")
	assert.NotContains(t, body, "secret-pod", "refused alerts never reach the logs pipeline")
	assert.NotContains(t, body, "smuggled-pod", "nor do alerts with invalid names")
	assert.NotContains(t, body, "team-b")
}

func TestAuthorizerConfig(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Authorizer = &authorizerID
	require.ErrorIs(t, cfg.Validate(), errAuthorizerNoHub)

	cfg.Hub = "moc"
	require.ErrorIs(t, cfg.Validate(), errAuthorizerNoAuth, "decisions need an authenticated caller")

	cfg.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: authorizerID}})
	require.NoError(t, cfg.Validate())
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	r, err := NewFactory().CreateTraces(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, new(consumertest.TracesSink))
	require.NoError(t, err)
	require.Error(t, r.Start(context.Background(), componenttest.NewNopHost()), "the authorizer extension must exist")
	require.NoError(t, r.Shutdown(context.Background()))
}

// TestSeparatorInjectionIsRefused: a sender allowed for team-a only labels an
// alert with a cluster that smuggles Keycloak's separator, so the resource
// reads team-a to Keycloak while the span would be team-b's. Names that are not
// Kubernetes names are refused before any question is asked, counted as
// invalid_name, and the rest of the notification is processed.
func TestSeparatorInjectionIsRefused(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
	}{
		{name: "separator in the cluster", labels: withLabels(gpuLabels("team-b", "stolen", ""), "cluster", "nerc-ocp-prod-PROJECT-team-a#GET#")},
		{name: "separator in the namespace", labels: gpuLabels("team-a#GET#-team-b", "stolen", "")},
		{name: "scope separator in the namespace", labels: gpuLabels("team-a,team-b", "stolen", "")},
		{name: "project folded into the cluster", labels: withLabels(gpuLabels("", "stolen", ""), "cluster", "nerc-ocp-prod-PROJECT-team-a")},
		{name: "upper case namespace", labels: gpuLabels("Team-B", "stolen", "")},
		{name: "control character in the cluster", labels: withLabels(gpuLabels("team-b", "stolen", ""), "cluster", "nerc-ocp-prod\nteam-a")},
		{name: "invalid node", labels: withLabels(gpuLabels("team-a", "stolen", ""), "Hostname", "wrk-10#GET")},
		{name: "invalid GPU index", labels: withLabels(gpuLabels("team-a", "stolen", ""), "gpu", "0#GET")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &authorizerExt{decisions: map[string]error{teamA: nil}}
			h := startAuthorizedReceiver(t, a)
			code, msg := h.post(notificationJSON(t, 0,
				testAlert{status: "firing", labels: gpuLabels("team-a", "train-0", ""), startsAt: t0, fingerprint: "aaaa000000000001"},
				testAlert{status: "firing", labels: tt.labels, startsAt: t0, fingerprint: "bbbb000000000001"},
			))
			assert.Equal(t, http.StatusBadRequest, code, "the invalid alert is listed, the valid one accepted")
			assert.Contains(t, msg, "alerts[1]")
			assert.Contains(t, msg, "not a valid name")
			spans := h.spans()
			require.Len(t, spans, 1, "only team-a's own alert becomes a span")
			assert.Equal(t, "train-0", attr(spans[0].span.Attributes(), topology.AttrK8sPodName))
			for _, s := range spans {
				assert.NotEqual(t, "team-b", attr(s.resource, topology.AttrK8sNamespaceName))
				assert.Equal(t, teamA, attr(s.span.Attributes(), topology.AttrKeycloakResource))
			}
			assert.Equal(t, []string{teamA}, a.asked, "an invalid name is never sent to Keycloak")
			assert.Equal(t, int64(1), rejectedAlerts(t, h, "invalid_name"))
		})
	}
}

// withLabels is labels with one label set to value.
func withLabels(labels map[string]string, name, value string) map[string]string {
	labels[name] = value
	return labels
}

func rejectedAlerts(t *testing.T, h *harness, reason string) int64 {
	t.Helper()
	return telemetrytest.SumCounter(h.tel, "otelcol_receiver_alertmanager_alerts_rejected", attribute.String("reason", reason))
}

// TestSessionCannotBePreempted: a sender allowed for its own project (team-a)
// posts, first, an alert with the fingerprint and startsAt of a team-b
// session, under team-a's labels (the only ones it may write). team-b's real
// sender then posts the real alert: its session is team-b's own, emitted with
// IDs team-a's spans do not share.
func TestSessionCannotBePreempted(t *testing.T) {
	a := &authorizerExt{bySubject: map[string][]string{"team-a-writer": {teamA}, "team-b-writer": {teamB}}}
	h := startAuthorizedReceiver(t, a)
	for _, status := range []string{"firing", "resolved"} {
		forged := testAlert{status: status, labels: gpuLabels("team-a", "decoy", ""), startsAt: t0, fingerprint: "bbbb000000000001"}
		real := testAlert{status: status, labels: gpuLabels("team-b", "train-1", ""), startsAt: t0, fingerprint: "bbbb000000000001"}
		if status == "resolved" {
			forged.endsAt, real.endsAt = t1, t1
		}
		code, msg := h.postAs("team-a-writer", notificationJSON(t, 0, forged))
		require.Equal(t, http.StatusOK, code, msg)
		code, msg = h.postAs("team-b-writer", notificationJSON(t, 0, real))
		require.Equal(t, http.StatusOK, code, msg)
	}

	byProject := map[string][]ptrace.Span{}
	for _, s := range h.spans() {
		ns := attr(s.resource, topology.AttrK8sNamespaceName)
		byProject[ns] = append(byProject[ns], s.span)
	}
	require.Len(t, byProject["team-b"], 2, "team-b's start marker and session are both emitted")
	require.Len(t, byProject["team-a"], 2)
	for _, b := range byProject["team-b"] {
		assert.Equal(t, teamB, attr(b.Attributes(), topology.AttrKeycloakResource))
		for _, a := range byProject["team-a"] {
			assert.NotEqual(t, a.TraceID(), b.TraceID(), "team-a cannot write spans into team-b's trace")
		}
	}
	assert.Zero(t, unauthorizedAlerts(t, h))
}
