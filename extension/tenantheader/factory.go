package tenantheader // import "github.com/nerc-project/ai-telemetry-collector/extension/tenantheader"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"

	"github.com/nerc-project/ai-telemetry-collector/extension/tenantheader/internal/metadata"
)

// Tempo's (and Loki's and Mimir's) tenant header, and the metadata key the
// projectauthz processor is configured with in the shipped configurations.
const (
	defaultHeader      = "X-Scope-OrgID"
	defaultMetadataKey = "x-scope-orgid"
)

// NewFactory creates a factory for the tenantheader extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, createExtension, metadata.ExtensionStability)
}

func createDefaultConfig() component.Config {
	return &Config{Header: defaultHeader, MetadataKey: defaultMetadataKey}
}

func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newTenantHeader(cfg.(*Config), set)
}
