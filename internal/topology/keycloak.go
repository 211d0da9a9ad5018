package topology // import "github.com/nerc-project/ai-telemetry-collector/internal/topology"

import (
	"errors"
	"fmt"
	"strings"
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

// Resource kinds, as ParseResource recognises them.
const (
	ResourceHub       = "hub"
	ResourceCluster   = "cluster"
	ResourceProject   = "project"
	ResourceNode      = "node"
	ResourceGPUDevice = "gpu_device"
)

// Markers between the names of a resource; upper case, so no valid name
// (lower case) can contain one.
const (
	hubMarker       = "HUB-"
	clusterMarker   = "-CLUSTER-"
	projectMarker   = "-PROJECT-"
	nodeMarker      = "-AINODE-"
	gpuDeviceMarker = "-GPUDEVICE-"
)

// Resource is a parsed resource name: its kind and the names it is built
// from (those of its kind; the others empty).
type Resource struct {
	Kind      string
	Hub       string
	Cluster   string
	Namespace string
	Node      string
	GPUIndex  string
}

// Name is the resource's Keycloak name, as the builders above spell it.
func (r Resource) Name() string {
	switch r.Kind {
	case ResourceHub:
		return HubResource(r.Hub)
	case ResourceCluster:
		return ClusterResource(r.Hub, r.Cluster)
	case ResourceProject:
		return ProjectResource(r.Hub, r.Cluster, r.Namespace)
	case ResourceNode:
		return NodeResource(r.Hub, r.Cluster, r.Node)
	case ResourceGPUDevice:
		return GPUDeviceResource(r.Hub, r.Cluster, r.Node, r.GPUIndex)
	}
	return ""
}

// ParseResource reads a resource name back into its names, the inverse of
// the builders above. Names are lower case and the markers upper case, so
// the first marker found is the only reading, and every name must still be
// valid of its kind, so a name Keycloak returns is trusted only when it means
// one thing (and is exactly what the builder would spell). Anything
// else (another application's resource, a typo in the realm) is an error
// wrapping ErrInvalidResource.
func ParseResource(name string) (Resource, error) {
	if err := ValidateResource(name); err != nil {
		return Resource{}, err
	}
	rest, ok := strings.CutPrefix(name, hubMarker)
	if !ok {
		return Resource{}, fmt.Errorf("%w: %q does not start with %q", ErrInvalidResource, truncate(name), hubMarker)
	}
	var r Resource
	r.Kind = ResourceHub
	r.Hub, rest, ok = strings.Cut(rest, clusterMarker)
	if ok {
		r.Kind = ResourceCluster
		var project, node string
		var isProject, isNode bool
		r.Cluster, project, isProject = strings.Cut(rest, projectMarker)
		if !isProject {
			r.Cluster, node, isNode = strings.Cut(rest, nodeMarker)
		}
		switch {
		case isProject:
			r.Kind, r.Namespace = ResourceProject, project
		case isNode:
			r.Kind = ResourceNode
			var index string
			if r.Node, index, ok = strings.Cut(node, gpuDeviceMarker); ok {
				r.Kind, r.GPUIndex = ResourceGPUDevice, index
			}
		}
	}
	for _, n := range []struct{ kind, value string }{
		{KindHub, r.Hub}, {KindCluster, r.Cluster}, {KindNamespace, r.Namespace}, {KindNode, r.Node}, {KindGPUIndex, r.GPUIndex},
	} {
		if !r.needs(n.kind) {
			continue
		}
		if err := ValidateName(n.kind, n.value); err != nil {
			return Resource{}, fmt.Errorf("%w: %q: %w", ErrInvalidResource, truncate(name), err)
		}
	}
	// Every part valid and cut at its first marker: r.Name() == name
	// (FuzzParseResource checks it).
	return r, nil
}

// needs says whether a resource of r's kind is built from a name of kind.
func (r Resource) needs(kind string) bool {
	switch kind {
	case KindHub:
		return true
	case KindCluster:
		return r.Kind != ResourceHub
	case KindNamespace:
		return r.Kind == ResourceProject
	case KindNode:
		return r.Kind == ResourceNode || r.Kind == ResourceGPUDevice
	case KindGPUIndex:
		return r.Kind == ResourceGPUDevice
	}
	return false
}
