package promqlreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/promqlreceiver"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/nerc-project/ai-telemetry-collector/receiver/promqlreceiver/internal/metadata"
)

const (
	defaultInterval   = time.Minute
	defaultMaxCatchUp = time.Hour
	// defaultCatchUpChunk keeps a long catch-up's answers a fraction of
	// max_response_size each.
	defaultCatchUpChunk = 30 * time.Minute
	defaultTimeout      = 30 * time.Second
	// defaultMaxResponseSize holds an hour of raw samples of ~20 DCGM
	// fields of a few thousand GPUs.
	defaultMaxResponseSize = 256 << 20
)

// NewFactory creates a factory for the PromQL receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

func createDefaultConfig() component.Config {
	client := confighttp.NewDefaultClientConfig()
	client.Timeout = defaultTimeout
	return &Config{
		ClientConfig: client,
		Interval:     defaultInterval,
		MaxCatchUp:   defaultMaxCatchUp,
		CatchUpChunk: defaultCatchUpChunk,

		MaxResponseSize: defaultMaxResponseSize,
	}
}

func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	return newReceiver(set, cfg.(*Config), next)
}
