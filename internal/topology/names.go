package topology // import "github.com/nerc-project/ai-telemetry-collector/internal/topology"

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Names that become part of a Keycloak resource or a tenant (hub, cluster,
// namespace, node, GPU index) are checked where they enter, against what
// Kubernetes allows for them. A Kubernetes name is lowercase letters, digits,
// '-' and '.': it can never carry Keycloak's separators ('#' between resource
// and scopes, ',' between scopes) nor fold an upper-case "-PROJECT-" into a
// longer name, so a resource built from checked names means what it says.

// ErrInvalidName is returned (wrapped) for a name that is not a Kubernetes
// name of its kind.
var ErrInvalidName = errors.New("not a valid name")

// Kinds of names, as the errors spell them.
const (
	KindHub       = "hub"
	KindCluster   = "cluster"
	KindNamespace = "namespace"
	KindNode      = "node"
	KindGPUIndex  = "GPU index"
)

// maxGPUIndexLength bounds a GPU index: a node has at most a few dozen GPUs.
const maxGPUIndexLength = 4

// ValidateName checks value as a name of the given kind: a hub and a
// namespace are DNS-1123 labels, a cluster and a node DNS-1123 subdomains, a
// GPU index a small decimal number.
func ValidateName(kind, value string) error {
	var problems []string
	switch kind {
	case KindHub, KindNamespace:
		problems = validation.IsDNS1123Label(value)
	case KindCluster, KindNode:
		problems = validation.IsDNS1123Subdomain(value)
	case KindGPUIndex:
		if value == "" || len(value) > maxGPUIndexLength || strings.Trim(value, "0123456789") != "" {
			problems = []string{"must be a decimal number of at most 4 digits"}
		}
	default:
		return fmt.Errorf("%w: unknown kind %q", ErrInvalidName, kind)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s %q: %w: %s", kind, truncate(value), ErrInvalidName, problems[0])
	}
	return nil
}

// ValidateNames checks the names of the entity that can take part in a
// resource or a tenant: cluster, node, namespace and GPU index, each when set.
func (e Entity) ValidateNames() error {
	for _, n := range []struct{ kind, value string }{
		{KindCluster, e.Cluster}, {KindNode, e.Node}, {KindNamespace, e.Namespace}, {KindGPUIndex, e.GPUIndex},
	} {
		if n.value == "" {
			continue
		}
		if err := ValidateName(n.kind, n.value); err != nil {
			return err
		}
	}
	return nil
}

// nameAttributes are the attributes holding names of the topology, and the
// kind each must be.
var nameAttributes = map[string]string{
	AttrHubName:          KindHub,
	AttrK8sClusterName:   KindCluster,
	AttrK8sNodeName:      KindNode,
	AttrK8sNamespaceName: KindNamespace,
	AttrNvidiaGPUIndex:   KindGPUIndex,
}

// ErrDuplicateKey is returned (wrapped) for an attribute list naming a
// topology attribute twice. OTLP's wire format allows it; a check reads one
// value while exporters write both, so such data is refused whole.
var ErrDuplicateKey = errors.New("topology attribute given more than once")

// errNotString: a name attribute that is not a string.
var errNotString = errors.New("must be a string")

// IsTopologyKey reports whether an attribute key belongs to the topology's
// namespaces (k8s.*, hw.*, nvidia.*, aitelemetry.*), the attributes that place
// data in a project and must therefore be unambiguous.
func IsTopologyKey(key string) bool {
	return strings.HasPrefix(key, "k8s.") || strings.HasPrefix(key, "hw.") ||
		strings.HasPrefix(key, "nvidia.") || strings.HasPrefix(key, "aitelemetry.")
}

// ValidateAttributes checks one attribute map as it arrived from a sender:
// no topology key twice, and every name attribute present a string holding a
// valid name of its kind (an empty value means unknown and is allowed).
func ValidateAttributes(attrs pcommon.Map) error {
	i := 0
	for k, v := range attrs.All() {
		i++
		if !IsTopologyKey(k) {
			continue
		}
		if seenBefore(attrs, k, i-1) {
			return fmt.Errorf("%s: %w", k, ErrDuplicateKey)
		}
		kind, isName := nameAttributes[k]
		if !isName {
			continue
		}
		if v.Type() != pcommon.ValueTypeStr {
			return fmt.Errorf("%s: %w: %w", k, ErrInvalidName, errNotString)
		}
		if v.Str() == "" {
			continue
		}
		if err := ValidateName(kind, v.Str()); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

// seenBefore reports whether key is among the first n keys of attrs. Maps
// hold a dozen or two attributes and this runs on every data point: a scan
// costs less than building a set.
func seenBefore(attrs pcommon.Map, key string, n int) bool {
	j := 0
	for k := range attrs.All() {
		if j == n {
			return false
		}
		if k == key {
			return true
		}
		j++
	}
	return false
}

// truncate keeps error messages short when a name is absurdly long.
func truncate(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// GPUUUIDPattern is a whole GPU's id as DCGM reports it (hw.id of a GPU);
// the API and the pages accept a device path segment only in this form.
var GPUUUIDPattern = regexp.MustCompile(`^GPU-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
