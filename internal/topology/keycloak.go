package topology // import "github.com/nerc-project/ai-telemetry-collector/internal/topology"

import (
	"errors"
	"fmt"
)

// Keycloak authorization resource names, as NERC's realm and prom-keycloak-proxy
// spell them: HUB-{hub}, HUB-{hub}-CLUSTER-{cluster},
// HUB-{hub}-CLUSTER-{cluster}-PROJECT-{namespace},
// HUB-{hub}-CLUSTER-{cluster}-AINODE-{node}[-GPUDEVICE-{index}].

// MaxNameLength is a DNS subdomain's limit, the longest a Kubernetes name
// (cluster, namespace) can be: longer values cannot name a real resource, so
// authorization refuses them without asking Keycloak.
const MaxNameLength = 253

// HubResource names the hub-wide resource.
func HubResource(hub string) string { return "HUB-" + hub }

// ClusterResource names a cluster's resource.
func ClusterResource(hub, cluster string) string { return HubResource(hub) + "-CLUSTER-" + cluster }

// ProjectResource names a research project's (namespace's) resource.
func ProjectResource(hub, cluster, namespace string) string {
	return ClusterResource(hub, cluster) + "-PROJECT-" + namespace
}

// NodeResource names an AI node's resource.
func NodeResource(hub, cluster, node string) string {
	return ClusterResource(hub, cluster) + "-AINODE-" + node
}

// GPUDeviceResource names a GPU device's resource.
func GPUDeviceResource(hub, cluster, node, index string) string {
	return NodeResource(hub, cluster, node) + "-GPUDEVICE-" + index
}

// Resource is the most specific resource that guards an entity's data: its
// project when it has one, else its cluster, else the hub. It is empty when
// the hub is unknown.
func (e Entity) Resource(hub string) string {
	switch {
	case hub == "":
		return ""
	case e.Cluster == "":
		return HubResource(hub)
	case e.Namespace == "":
		return ClusterResource(hub, e.Cluster)
	default:
		return ProjectResource(hub, e.Cluster, e.Namespace)
	}
}

// ErrInvalidResource is returned (wrapped) for a resource name that could not
// have been built from valid names: Keycloak would not decide on what it says.
var ErrInvalidResource = errors.New("not a valid Keycloak resource name")

// maxResourceLength bounds a resource name: the longest one built from valid
// names (a GPU device's, with a 253-byte cluster and node) is under 600 bytes.
const maxResourceLength = 1024

// ValidateResource checks a resource name before it is sent to Keycloak, which
// splits a permission on '#' (resource, then scopes, the rest ignored) and the
// scopes on ','. Only letters, digits, '-', '.' and '_' are allowed, so no
// caller, present or future, can reintroduce a separator.
func ValidateResource(resource string) error {
	if resource == "" || len(resource) > maxResourceLength {
		return fmt.Errorf("%w: %d bytes", ErrInvalidResource, len(resource))
	}
	for i := 0; i < len(resource); i++ {
		c := resource[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || c == '-' || c == '.' || c == '_' {
			continue
		}
		return fmt.Errorf("%w: byte %q at %d of %q", ErrInvalidResource, c, i, truncate(resource))
	}
	return nil
}
