package alertmanagerreceiver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"

	"github.com/nerc-project/ai-telemetry-collector/internal/authz"
	"github.com/nerc-project/ai-telemetry-collector/internal/telemetrytest"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
	"github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver/internal/metadata"
)

// authorizerExt is an extension answering from a table of resources; the
// decision function itself is keycloakauth's, tested against a real Keycloak
// in its own package.
type authorizerExt struct {
	component.StartFunc
	component.ShutdownFunc

	mu        sync.Mutex
	decisions map[string]error // resource -> answer; absent: denied
	asked     []string
}

// Authenticate lets every request through: the tests are about decisions.
func (a *authorizerExt) Authenticate(ctx context.Context, _ map[string][]string) (context.Context, error) {
	return ctx, nil
}

func (a *authorizerExt) Authorize(_ context.Context, resource string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked = append(a.asked, resource)
	if err, ok := a.decisions[resource]; ok {
		return err
	}
	return authz.ErrDenied
}

type extensionsHost map[component.ID]component.Component

func (h extensionsHost) GetExtensions() map[component.ID]component.Component { return h }

var authorizerID = component.MustNewIDWithName("keycloakauth", "gateway")

func startAuthorizedReceiver(t *testing.T, a *authorizerExt) *harness {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Hub = "moc"
	cfg.SpanNames = map[string]string{"GPUInUse": "gpu.usage"}
	cfg.Authorizer = &authorizerID
	cfg.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: authorizerID}})
	require.NoError(t, cfg.Validate())
	tel := componenttest.NewTelemetry()
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	sink := new(consumertest.TracesSink)
	r, err := NewFactory().CreateTraces(context.Background(), set, cfg, sink)
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
	return telemetrytest.SumCounter(h.tel, "otelcol_receiver_alertmanager_alerts_rejected", attribute.String("reason", "unauthorized"))
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

func TestAuthorizerRefusesImplausibleNamesWithoutAsking(t *testing.T) {
	a := &authorizerExt{decisions: map[string]error{teamA: nil}}
	h := startAuthorizedReceiver(t, a)
	long := strings.Repeat("x", 300)
	alerts := []testAlert{{status: "firing", labels: gpuLabels("team-a", "ok", ""), startsAt: t0, fingerprint: "aaaa000000000001"}}
	alerts = append(alerts, testAlert{status: "firing", labels: gpuLabels(long, "p", ""), startsAt: t0, fingerprint: "cccc000000000001"})
	for i := range maxResourcesPerNotification + 5 {
		alerts = append(alerts, testAlert{status: "firing", labels: gpuLabels(fmt.Sprintf("ns-%d", i), "p", ""), startsAt: t0, fingerprint: fmt.Sprintf("dddd%012d", i)})
	}
	code, msg := h.post(notificationJSON(t, 0, alerts...))
	require.Equal(t, http.StatusOK, code, msg)
	require.Len(t, h.spans(), 1)
	assert.Len(t, a.asked, maxResourcesPerNotification, "one notification asks about a bounded number of resources")
	for _, r := range a.asked {
		assert.NotContains(t, r, long, "an implausible name is never sent to Keycloak")
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
	))
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, 1, logs.LogRecordCount())
	body := logs.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body().Str()
	assert.Contains(t, body, "train-0")
	assert.NotContains(t, body, "secret-pod", "refused alerts never reach the logs pipeline")
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
