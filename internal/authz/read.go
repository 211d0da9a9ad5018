package authz // import "github.com/nerc-project/ai-telemetry-collector/internal/authz"

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/component"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// ReadScoper says what the caller authenticated in ctx may read: the scope
// a backend applies to every query (gpustore.Filter.Scope). The zero Scope
// (nothing granted) is an answer, not an error; an error wrapping
// ErrUnavailable means no answer could be had (the caller answers 503 and
// shows nothing), and any other error that the caller cannot be scoped.
type ReadScoper interface {
	ReadScope(ctx context.Context) (gpustore.Scope, error)
}

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
