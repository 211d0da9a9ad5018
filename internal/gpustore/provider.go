package gpustore // import "github.com/nerc-project/ai-telemetry-collector/internal/gpustore"

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/component"
)

// Provider is an extension holding a store (extension/gpustorageextension).
type Provider interface {
	GPUStore() (Store, error)
}

var errNotProvider = errors.New("extension is not a GPU store (gpu_storage)")

// Lookup finds the extension id among the host's extensions and returns its
// store. Call it from Start: the store exists once the extension started.
func Lookup(host component.Host, id component.ID) (Store, error) {
	ext, ok := host.GetExtensions()[id]
	if !ok {
		return nil, fmt.Errorf("storage %q: extension not found", id)
	}
	p, ok := ext.(Provider)
	if !ok {
		return nil, fmt.Errorf("storage %q: %w", id, errNotProvider)
	}
	s, err := p.GPUStore()
	if err != nil {
		return nil, fmt.Errorf("storage %q: %w", id, err)
	}
	return s, nil
}
