package alertmanagerreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver"

import (
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

var (
	errNoEndpoint       = errors.New("endpoint must be set")
	errBadPath          = errors.New("path must start with /")
	errNoServiceName    = errors.New("service_name must be set")
	errEmptySpanName    = errors.New("span_names must not map an alert to an empty name")
	errRecordSize       = errors.New("session_record_size must be at least 1")
	errMaxConcurrent    = errors.New("max_concurrent_requests and max_concurrent_requests_per_caller must be at least 1, the latter at most the former")
	errMaxBytesInFlight = errors.New("max_body_bytes_in_flight and max_body_bytes_in_flight_per_caller must hold the largest body (max_request_body_size), the latter at most the former")
	errClusterLabelName = errors.New("cluster_label must not be empty")
	errAuthorizerNoHub  = errors.New("authorizer needs hub (resources are named HUB-{hub}-CLUSTER-...)")
	errAuthorizerNoAuth = errors.New("authorizer needs auth: decisions are made for the authenticated caller")
	errMaxResources     = errors.New("max_resources_per_notification must be at least 1")
)

// Config defines the configuration of the Alertmanager receiver.
type Config struct {
	confighttp.ServerConfig `mapstructure:",squash"`

	// Path that accepts the webhook POSTs (default /alerts).
	Path string `mapstructure:"path"`

	// SpanNames maps an alertname to the name of its session spans; unmapped
	// alerts use their alertname.
	SpanNames map[string]string `mapstructure:"span_names"`

	// ServiceName is the service.name resource attribute of the spans.
	ServiceName string `mapstructure:"service_name"`

	// Hub names the ACM hub the alerts come from; with it, spans carry the
	// Keycloak resource that guards their project.
	Hub string `mapstructure:"hub"`

	// ClusterLabel is the alert label holding the cluster name (default cluster).
	ClusterLabel string `mapstructure:"cluster_label"`

	// Cluster is used when an alert has no cluster label: the alerts all come
	// from one cluster.
	Cluster string `mapstructure:"cluster"`

	// HubCluster replaces "local-cluster", the name the ACM hub gives itself.
	HubCluster string `mapstructure:"hub_cluster"`

	// Storage is the storage extension (file_storage) that persists which spans
	// were emitted, so a restart between firing and resolution adds nothing twice.
	// Without it the record lives in memory.
	Storage *component.ID `mapstructure:"storage"`

	// SessionRecordSize bounds the record: the sessions remembered at once.
	SessionRecordSize int `mapstructure:"session_record_size"`

	// MaxConcurrentRequests bounds the notifications handled at once; more
	// are answered 503 with Retry-After at once, so an overload does not grow
	// a backlog (and memory) of work whose senders have given up.
	MaxConcurrentRequests int `mapstructure:"max_concurrent_requests"`

	// MaxConcurrentRequestsPerCaller bounds those of one authenticated caller
	// (the token's subject), so one caller cannot take every slot.
	MaxConcurrentRequestsPerCaller int `mapstructure:"max_concurrent_requests_per_caller"`

	// MaxBodyBytesInFlight is the memory budget: the body bytes the
	// notifications handled at once may declare (a body without a length
	// counts as max_request_body_size). A notification holds up to
	// decodeFactor times its body in heap while it is handled; beyond the
	// budget, 503 with Retry-After before the body is read.
	MaxBodyBytesInFlight int64 `mapstructure:"max_body_bytes_in_flight"`

	// MaxBodyBytesInFlightPerCaller is one authenticated caller's share of
	// it, so one caller's slow or large bodies leave room for the others.
	MaxBodyBytesInFlightPerCaller int64 `mapstructure:"max_body_bytes_in_flight_per_caller"`

	// Authorizer is an extension implementing internal/authz (keycloakauth in
	// authorization mode resource). With it, each alert is accepted only when
	// the sender may write the Keycloak resource of the alert's project.
	Authorizer *component.ID `mapstructure:"authorizer"`

	// MaxResourcesPerNotification bounds the distinct resources one
	// notification makes the authorizer decide on (each a question to
	// Keycloak); alerts beyond it are refused (too_many_resources).
	MaxResourcesPerNotification int `mapstructure:"max_resources_per_notification"`
}

var _ component.Config = (*Config)(nil)

// confighttpMaxBodySize is what confighttp enforces when
// max_request_body_size is 0 or less.
const confighttpMaxBodySize = 20 << 20

// maxBodySize is the largest body the server accepts.
func (c *Config) maxBodySize() int64 {
	if c.MaxRequestBodySize <= 0 {
		return confighttpMaxBodySize
	}
	return c.MaxRequestBodySize
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.NetAddr.Endpoint == "" {
		errs = append(errs, fmt.Errorf("endpoint: %w", errNoEndpoint))
	}
	if !strings.HasPrefix(c.Path, "/") {
		errs = append(errs, fmt.Errorf("path %q: %w", c.Path, errBadPath))
	}
	if c.ServiceName == "" {
		errs = append(errs, errNoServiceName)
	}
	if c.ClusterLabel == "" {
		errs = append(errs, errClusterLabelName)
	}
	for alert, name := range c.SpanNames {
		if strings.TrimSpace(name) == "" {
			errs = append(errs, fmt.Errorf("span_names[%s]: %w", alert, errEmptySpanName))
		}
	}
	if c.Authorizer != nil && c.Hub == "" {
		errs = append(errs, errAuthorizerNoHub)
	}
	if c.Authorizer != nil && !c.Auth.HasValue() {
		errs = append(errs, errAuthorizerNoAuth)
	}
	// These names become part of every span's Keycloak resource and tenant.
	for _, n := range []struct{ key, kind, value string }{
		{"hub", topology.KindHub, c.Hub}, {"cluster", topology.KindCluster, c.Cluster}, {"hub_cluster", topology.KindCluster, c.HubCluster},
	} {
		if n.value == "" {
			continue
		}
		if err := topology.ValidateName(n.kind, n.value); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.key, err))
		}
	}
	if c.MaxResourcesPerNotification < 1 {
		errs = append(errs, fmt.Errorf("max_resources_per_notification %d: %w", c.MaxResourcesPerNotification, errMaxResources))
	}
	if c.SessionRecordSize < 1 {
		errs = append(errs, fmt.Errorf("session_record_size %d: %w", c.SessionRecordSize, errRecordSize))
	}
	if c.MaxConcurrentRequests < 1 || c.MaxConcurrentRequestsPerCaller < 1 || c.MaxConcurrentRequestsPerCaller > c.MaxConcurrentRequests {
		errs = append(errs, fmt.Errorf("max_concurrent_requests %d, max_concurrent_requests_per_caller %d: %w",
			c.MaxConcurrentRequests, c.MaxConcurrentRequestsPerCaller, errMaxConcurrent))
	}
	if body := c.maxBodySize(); c.MaxBodyBytesInFlightPerCaller < body || c.MaxBodyBytesInFlight < c.MaxBodyBytesInFlightPerCaller {
		errs = append(errs, fmt.Errorf("max_body_bytes_in_flight %d, max_body_bytes_in_flight_per_caller %d, max_request_body_size %d: %w",
			c.MaxBodyBytesInFlight, c.MaxBodyBytesInFlightPerCaller, body, errMaxBytesInFlight))
	}
	return errors.Join(errs...)
}
