// Package authz is the authorization decision shared by this project's
// components: a receiver or processor asks "may the caller authenticated in this
// context write data guarded by this Keycloak resource?" without importing the
// extension that answers (extension/keycloakauth), so the two can evolve apart
// and tests can supply their own decision function.
//
// Resource names come from internal/topology (e.g. topology.ProjectResource).
package authz // import "github.com/nerc-project/ai-telemetry-collector/internal/authz"

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/component"
)

// ErrDenied is returned (wrapped) when the authorization server refused the
// permission. Any other error means no decision could be made; callers must
// treat both as "not allowed" (fail closed) but may report them differently.
var ErrDenied = errors.New("permission denied")

// Authorizer decides whether the caller in ctx (as put there by the server
// authenticator, see go.opentelemetry.io/collector/client) may write data
// guarded by resource. A nil error means allowed.
type Authorizer interface {
	Authorize(ctx context.Context, resource string) error
}

// AuthorizerFunc adapts a function.
type AuthorizerFunc func(ctx context.Context, resource string) error

// Authorize calls f.
func (f AuthorizerFunc) Authorize(ctx context.Context, resource string) error {
	return f(ctx, resource)
}

var errNotAuthorizer = errors.New("extension is not an authorizer")

// Lookup finds the extension id among the host's extensions and returns it as
// an Authorizer.
func Lookup(host component.Host, id component.ID) (Authorizer, error) {
	ext, ok := host.GetExtensions()[id]
	if !ok {
		return nil, fmt.Errorf("authorizer %q: extension not found", id)
	}
	a, ok := ext.(Authorizer)
	if !ok {
		return nil, fmt.Errorf("authorizer %q: %w", id, errNotAuthorizer)
	}
	return a, nil
}
