package authz // import "github.com/nerc-project/ai-telemetry-collector/internal/authz"

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/component"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// ReadScoper answers "what may the caller authenticated in ctx read?" as a
// gpustore.Scope (extension/keycloakauth: UMA with response_mode=permissions).
// An error means the caller may read nothing: ErrUnavailable (wrapped) when
// the decision could not be made (the API answers 503 so the caller retries),
// anything else (ErrDenied, no credentials)
// when it was refused.
type ReadScoper interface {
	ReadScope(ctx context.Context) (gpustore.Scope, error)
}

// ReadScoperFunc adapts a function.
type ReadScoperFunc func(ctx context.Context) (gpustore.Scope, error)

// ReadScope calls f.
func (f ReadScoperFunc) ReadScope(ctx context.Context) (gpustore.Scope, error) { return f(ctx) }

var errNotReadScoper = errors.New("extension is not a read scoper")

// LookupReadScoper finds the extension id among the host's extensions and
// returns it as a ReadScoper.
func LookupReadScoper(host component.Host, id component.ID) (ReadScoper, error) {
	ext, ok := host.GetExtensions()[id]
	if !ok {
		return nil, fmt.Errorf("read scoper %q: extension not found", id)
	}
	r, ok := ext.(ReadScoper)
	if !ok {
		return nil, fmt.Errorf("read scoper %q: %w", id, errNotReadScoper)
	}
	return r, nil
}
