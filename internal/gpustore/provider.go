package gpustore // import "github.com/nerc-project/ai-telemetry-collector/internal/gpustore"

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/component"
)

// Provider is implemented by an extension that owns a Store (the gpu_storage
// extension): readers and writers name it in their configuration and obtain
// the Store at Start, as Jaeger v2's jaeger_query obtains its backend from
// jaeger_storage.
type Provider interface {
	GPUStore() (Store, error)
}

// ErrNotProvider is returned (wrapped) when the named extension exists but
// provides no GPU store.
var ErrNotProvider = errors.New("extension does not provide a GPU store")

// Lookup finds the extension id among the host's extensions and returns its
// store. Call it from Start: the store exists once the extension started.
func Lookup(host component.Host, id component.ID) (Store, error) {
	ext, ok := host.GetExtensions()[id]
	if !ok {
		return nil, fmt.Errorf("storage %q: extension not found", id)
	}
	p, ok := ext.(Provider)
	if !ok {
		return nil, fmt.Errorf("storage %q: %w", id, ErrNotProvider)
	}
	s, err := p.GPUStore()
	if err != nil {
		return nil, fmt.Errorf("storage %q: %w", id, err)
	}
	if s == nil {
		return nil, fmt.Errorf("storage %q: %w: nil store", id, ErrNotProvider)
	}
	return s, nil
}
