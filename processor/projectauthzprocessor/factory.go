package projectauthzprocessor // import "github.com/nerc-project/ai-telemetry-collector/processor/projectauthzprocessor"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/nerc-project/ai-telemetry-collector/processor/projectauthzprocessor/internal/metadata"
)

// defaultMaxResources matches the Alertmanager receiver's bound: a real batch
// from one cluster's agent carries far fewer distinct projects.
const defaultMaxResources = 64

// NewFactory creates a factory for the project authorization processor.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithTraces(createTraces, metadata.TracesStability),
		processor.WithMetrics(createMetrics, metadata.MetricsStability),
		processor.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		OnDenied:               OnDeniedDrop,
		MaxResourcesPerRequest: defaultMaxResources,
	}
}

var capabilities = processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true})

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	p, err := newProcessor(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	if p.cfg.Tenant.enabled() {
		if next, err = p.tracesPerTenant(next); err != nil {
			return nil, err
		}
	}
	return processorhelper.NewTraces(ctx, set, cfg, next, p.processTraces,
		processorhelper.WithStart(p.start), processorhelper.WithShutdown(p.shutdown), capabilities)
}

func createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	p, err := newProcessor(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	if p.cfg.Tenant.enabled() {
		if next, err = p.metricsPerTenant(next); err != nil {
			return nil, err
		}
	}
	return processorhelper.NewMetrics(ctx, set, cfg, next, p.processMetrics,
		processorhelper.WithStart(p.start), processorhelper.WithShutdown(p.shutdown), capabilities)
}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	p, err := newProcessor(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	if p.cfg.Tenant.enabled() {
		if next, err = p.logsPerTenant(next); err != nil {
			return nil, err
		}
	}
	return processorhelper.NewLogs(ctx, set, cfg, next, p.processLogs,
		processorhelper.WithStart(p.start), processorhelper.WithShutdown(p.shutdown), capabilities)
}
