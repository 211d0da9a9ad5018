package gpustorageextension // import "github.com/nerc-project/ai-telemetry-collector/extension/gpustorageextension"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"

	"github.com/nerc-project/ai-telemetry-collector/extension/gpustorageextension/internal/metadata"
)

// NewFactory creates a factory for the gpu_storage extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, createExtension, metadata.ExtensionStability)
}

// The default has no backend: a path or an endpoint must be chosen.
func createDefaultConfig() component.Config { return &Config{} }

func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return &storage{cfg: cfg.(*Config), logger: set.Logger}, nil
}
