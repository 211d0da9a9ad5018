package alertmanagerreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver"

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/nerc-project/ai-telemetry-collector/internal/authz"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// errAuthorizationUnavailable: some decision could not be made (the
// authorizer's backend is down); the notification is answered 503 so
// Alertmanager retries it, rather than dropped or let through.
var errAuthorizationUnavailable = errors.New("authorization decision unavailable, retry later")

// maxResourcesPerNotification bounds the decisions one notification can ask
// for: each distinct resource costs a request to Keycloak. Alertmanager groups
// by project at most, so a real notification stays far below it.
const maxResourcesPerNotification = 64

// authorizeAlerts asks the authorizer, once per distinct resource, whether the
// sender may write each alert's data, guarded by the Keycloak resource of its
// project (else cluster, else hub). It returns the indices of refused alerts.
func (r *alertmanagerReceiver) authorizeAlerts(ctx context.Context, n *notification) (map[int]bool, error) {
	if r.authorizer == nil {
		return nil, nil
	}
	refused := map[int]bool{}
	decided := map[string]error{}
	for i := range n.Alerts {
		if ctx.Err() != nil {
			return nil, errAuthorizationUnavailable
		}
		e := r.builder.parser.Parse(topology.MapLabels(n.Alerts[i].Labels))
		if len(e.Cluster) > topology.MaxNameLength || len(e.Namespace) > topology.MaxNameLength {
			refused[i] = true
			continue
		}
		resource := e.Resource(r.builder.hub)
		err, ok := decided[resource]
		if !ok {
			if len(decided) >= maxResourcesPerNotification {
				refused[i] = true
				continue
			}
			err = r.authorizer.Authorize(ctx, resource)
			decided[resource] = err
		}
		switch {
		case err == nil:
		case errors.Is(err, authz.ErrDenied):
			refused[i] = true
		default:
			r.settings.Logger.Warn("No authorization decision; asking Alertmanager to retry",
				zap.String("resource", resource), zap.Error(err))
			return nil, errAuthorizationUnavailable
		}
	}
	return refused, nil
}
