package projectauthzprocessor // import "github.com/nerc-project/ai-telemetry-collector/processor/projectauthzprocessor"

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/component"

	"github.com/nerc-project/ai-telemetry-collector/internal/tenant"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

var (
	errNoAuthorizer = errors.New("authorizer is required: the id of an extension implementing authorization (keycloakauth in authorization mode resource)")
	errNoHub        = errors.New("hub is required (resources are named HUB-{hub}-CLUSTER-...)")
	errOnDenied     = errors.New(`on_denied must be "drop" or "reject"`)
	errMaxResources = errors.New("max_resources_per_request must be at least 1")
	errLocalCluster = errors.New(`cluster must not be "local-cluster": use the hub cluster's real name`)
)

// What to do with data the caller may not write.
const (
	// OnDeniedDrop removes the refused resources and forwards the rest.
	OnDeniedDrop = "drop"
	// OnDeniedReject refuses the whole batch with a permanent error.
	OnDeniedReject = "reject"
)

// Config defines the configuration of the project authorization processor.
type Config struct {
	// Authorizer is the id of an extension implementing internal/authz
	// (keycloakauth in authorization mode resource).
	Authorizer component.ID `mapstructure:"authorizer"`

	// Hub names the ACM hub (NERC: moc); resources are named HUB-{hub}-...
	Hub string `mapstructure:"hub"`

	// Cluster is the cluster of resources without k8s.cluster.name (a gateway
	// serving one cluster). Empty: such resources are guarded by the hub.
	Cluster string `mapstructure:"cluster"`

	// OnDenied is drop (default) or reject.
	OnDenied string `mapstructure:"on_denied"`

	// MaxResourcesPerRequest bounds the distinct Keycloak resources one batch
	// may ask decisions for; resources beyond it are refused.
	MaxResourcesPerRequest int `mapstructure:"max_resources_per_request"`

	// Tenant, when its metadata_key is set, forwards each Keycloak
	// resource's data in its own call, with the resource's name as the
	// tenant in the client metadata (see TenantConfig).
	Tenant TenantConfig `mapstructure:"tenant"`
}

// TenantConfig makes the authorized resource the tenant of its data
// downstream: the resources allowed in a request are grouped by the Keycloak
// resource they were authorized on, and each group is passed on in its own
// call whose client metadata holds that resource name under MetadataKey,
// replacing whatever the caller sent under that key. An exporter's
// tenantheader extension then sends it as X-Scope-OrgID. Off when
// MetadataKey is empty.
type TenantConfig struct {
	// MetadataKey is the client metadata key the tenant is put under
	// (case-insensitive, as client metadata is): x-scope-orgid for Tempo.
	MetadataKey string `mapstructure:"metadata_key"`
}

// enabled says whether data is forwarded per tenant.
func (t TenantConfig) enabled() bool { return t.MetadataKey != "" }

var _ component.Config = (*Config)(nil)

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Authorizer == (component.ID{}) {
		errs = append(errs, errNoAuthorizer)
	}
	if c.Hub == "" {
		errs = append(errs, errNoHub)
	} else if err := topology.ValidateName(topology.KindHub, c.Hub); err != nil {
		errs = append(errs, fmt.Errorf("hub: %w", err))
	}
	switch {
	case c.Cluster == topology.HubLocalCluster:
		errs = append(errs, errLocalCluster)
	case c.Cluster != "":
		if err := topology.ValidateName(topology.KindCluster, c.Cluster); err != nil {
			errs = append(errs, fmt.Errorf("cluster: %w", err))
		}
	}
	if c.OnDenied != OnDeniedDrop && c.OnDenied != OnDeniedReject {
		errs = append(errs, fmt.Errorf("%w, got %q", errOnDenied, c.OnDenied))
	}
	if c.MaxResourcesPerRequest < 1 {
		errs = append(errs, fmt.Errorf("%w, got %d", errMaxResources, c.MaxResourcesPerRequest))
	}
	if c.Tenant.enabled() {
		if err := tenant.ValidateKey(c.Tenant.MetadataKey); err != nil {
			errs = append(errs, fmt.Errorf("tenant.metadata_key: %w", err))
		}
	}
	return errors.Join(errs...)
}
