package gpumodelprocessor // import "github.com/nerc-project/ai-telemetry-collector/processor/gpumodelprocessor"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
	"github.com/nerc-project/ai-telemetry-collector/processor/gpumodelprocessor/internal/metadata"
)

const (
	defaultReloadInterval = 30 * time.Second
	defaultCacheSize      = 200_000
)

// NewFactory creates a factory for the GPU model processor.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		Cluster:   ClusterConfig{Label: topology.DefaultClusterLabel},
		CacheSize: defaultCacheSize,
		Metadata: MetadataConfig{
			File:             FileConfig{ReloadInterval: defaultReloadInterval},
			Kubernetes:       KubernetesConfig{AuthType: authServiceAccount, Pods: true},
			KubeStateMetrics: KubeStateMetricsConfig{Enabled: true},
		},
	}
}

func createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	p, err := newGPUModelProcessor(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	return processorhelper.NewMetrics(ctx, set, cfg, next, p.processMetrics,
		processorhelper.WithStart(p.start),
		processorhelper.WithShutdown(p.shutdown),
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}),
	)
}
