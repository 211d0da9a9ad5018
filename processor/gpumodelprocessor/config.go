package gpumodelprocessor // import "github.com/nerc-project/ai-telemetry-collector/processor/gpumodelprocessor"

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
)

var (
	errNoClusterLabel   = errors.New("cluster.label must not be empty")
	errReloadInterval   = errors.New("metadata.file.reload_interval must be positive")
	errCacheSize        = errors.New("cache_size must be at least 1")
	errKubernetesAuth   = errors.New(`metadata.kubernetes.auth_type must be "serviceAccount" or "kubeConfig"`)
	errLocalClusterName = errors.New(`cluster.name must not be "local-cluster": set cluster.hub_cluster to the hub's real name`)
)

// Config defines the configuration of the GPU model processor.
type Config struct {
	// Hub names the ACM hub (NERC: moc). It prefixes Keycloak resource names.
	Hub string `mapstructure:"hub"`

	Cluster ClusterConfig `mapstructure:"cluster"`

	// SemconvMetrics adds hw.gpu.utilization, hw.gpu.memory.usage and .limit,
	// hw.power and hw.energy beside the DCGM series.
	SemconvMetrics bool `mapstructure:"semconv_metrics"`

	Metadata MetadataConfig `mapstructure:"metadata"`

	// CacheSize bounds the label sets whose enrichment is remembered.
	CacheSize int `mapstructure:"cache_size"`
}

// ClusterConfig says where the cluster of a data point comes from.
type ClusterConfig struct {
	// Label holding the cluster on federated series (default cluster).
	Label string `mapstructure:"label"`
	// Name is used when neither the label nor the resource's k8s.cluster.name
	// says: the collector serves one cluster.
	Name string `mapstructure:"name"`
	// HubCluster replaces "local-cluster", the name the ACM hub gives itself.
	HubCluster string `mapstructure:"hub_cluster"`
}

// MetadataConfig lists the sources of project metadata, in precedence order:
// the file, then the Kubernetes API, then kube-state-metrics series.
type MetadataConfig struct {
	File             FileConfig             `mapstructure:"file"`
	Kubernetes       KubernetesConfig       `mapstructure:"kubernetes"`
	KubeStateMetrics KubeStateMetricsConfig `mapstructure:"kube_state_metrics"`
}

// FileConfig is a YAML file mapping namespaces to project metadata.
type FileConfig struct {
	// Path of the file; empty disables the source.
	Path string `mapstructure:"path"`
	// ReloadInterval is how often the file is checked for changes.
	ReloadInterval time.Duration `mapstructure:"reload_interval"`
}

// KubernetesConfig reads namespaces, resource quotas and (unless Pods is
// false) pods through the API.
type KubernetesConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// Pods informs pods in every namespace, for the GPU requests of each
	// project and the nodes of the DCGM exporter pods. Watching pods needs a
	// cluster-wide grant that lets the collector read every pod spec
	// (environment values included); with false, those two facts come from
	// the kube_state_metrics source instead, and only namespaces and resource
	// quotas are read.
	Pods bool `mapstructure:"pods"`
	// AuthType is serviceAccount (in cluster) or kubeConfig.
	AuthType string `mapstructure:"auth_type"`
	// Cluster is the name of the cluster the API belongs to (default cluster.name).
	Cluster string `mapstructure:"cluster"`
}

// KubeStateMetricsConfig learns metadata from kube-state-metrics series that
// pass through the same pipeline.
type KubeStateMetricsConfig struct {
	Enabled bool `mapstructure:"enabled"`
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Cluster.Label == "" {
		errs = append(errs, errNoClusterLabel)
	}
	if c.Cluster.Name == "local-cluster" {
		errs = append(errs, errLocalClusterName)
	}
	if c.Metadata.File.Path != "" && c.Metadata.File.ReloadInterval <= 0 {
		errs = append(errs, fmt.Errorf("%w, got %s", errReloadInterval, c.Metadata.File.ReloadInterval))
	}
	if c.Metadata.Kubernetes.Enabled && c.Metadata.Kubernetes.AuthType != authServiceAccount && c.Metadata.Kubernetes.AuthType != authKubeConfig {
		errs = append(errs, fmt.Errorf("%w, got %q", errKubernetesAuth, c.Metadata.Kubernetes.AuthType))
	}
	if c.CacheSize < 1 {
		errs = append(errs, fmt.Errorf("%w, got %d", errCacheSize, c.CacheSize))
	}
	return errors.Join(errs...)
}

const (
	authServiceAccount = "serviceAccount"
	authKubeConfig     = "kubeConfig"
)
