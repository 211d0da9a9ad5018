package alertmanagerreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver"

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/nerc-project/ai-telemetry-collector/internal/authz"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// accepted is an alert that passed admission: what it says is well formed,
// its names are Kubernetes names, and the sender may write its resource.
type accepted struct {
	index int
	// entity is the alert's place in the topology, parsed once: the spans
	// carry exactly what was checked and authorized.
	entity topology.Entity
	// resource is the Keycloak resource guarding the alert's data (empty
	// without hub); it is part of the session's identity, so one project can
	// never claim another's session.
	resource string
}

// admission is the verdict on every alert of a notification.
type admission struct {
	accepted []accepted
	// invalid alerts are refused for what they say (listed in the 400 answer).
	invalid []invalidAlert
	// refused counts the alerts authorization refused, by reason.
	refused map[string]int
	// left out of the spans and the audit record: invalid or refused.
	dropped map[int]bool
}

// Reasons of refused alerts, as the telemetry spells them.
const (
	reasonInvalidName      = "invalid_name"
	reasonUnauthorized     = "unauthorized"
	reasonTooManyResources = "too_many_resources"
)

// admit checks every alert and, with an authorizer, asks once per distinct
// resource whether the sender may write it (its project's, else its cluster's,
// else the hub's). Names are checked before any question, so a name carrying
// Keycloak's separators is never sent and a resource always means what it
// says. The error, wrapping authz.ErrUnavailable, means no decision could be
// made for some alert: nothing of the notification may be let through.
func (r *alertmanagerReceiver) admit(ctx context.Context, n *notification) (*admission, error) {
	adm := &admission{accepted: make([]accepted, 0, len(n.Alerts)), refused: map[string]int{}, dropped: map[int]bool{}}
	var decisions *authz.Decisions
	if r.authorizer != nil {
		decisions = authz.NewDecisions(r.authorizer, r.cfg.MaxResourcesPerNotification)
	}
	for i := range n.Alerts {
		a := &n.Alerts[i]
		if err := a.validate(); err != nil {
			adm.invalid = append(adm.invalid, invalidAlert{index: i, err: err})
			adm.dropped[i] = true
			continue
		}
		e := r.builder.parser.Parse(topology.MapLabels(a.Labels))
		if err := e.ValidateNames(); err != nil {
			adm.invalid = append(adm.invalid, invalidAlert{index: i, err: err})
			adm.dropped[i] = true
			continue
		}
		resource := e.Resource(r.builder.hub)
		if decisions != nil {
			err := decisions.Decide(ctx, resource)
			switch {
			case err == nil:
			case errors.Is(err, authz.ErrTooManyResources):
				adm.refused[reasonTooManyResources]++
				adm.dropped[i] = true
				continue
			case errors.Is(err, authz.ErrDenied):
				adm.refused[reasonUnauthorized]++
				adm.dropped[i] = true
				continue
			default:
				r.settings.Logger.Warn("No authorization decision; asking Alertmanager to retry",
					zap.String("resource", resource), zap.Error(err))
				return nil, err
			}
		}
		adm.accepted = append(adm.accepted, accepted{index: i, entity: e, resource: resource})
	}
	return adm, nil
}
