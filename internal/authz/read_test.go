package authz

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

type host map[component.ID]component.Component

func (h host) GetExtensions() map[component.ID]component.Component { return h }

type nopComponent struct{}

func (nopComponent) Start(context.Context, component.Host) error { return nil }
func (nopComponent) Shutdown(context.Context) error              { return nil }

type scoper struct{ nopComponent }

func (scoper) ReadScope(context.Context) (gpustore.Scope, error) {
	return gpustore.Scope{Hubs: []string{"moc"}}, nil
}

var _ ReadScoper = scoper{}

func TestLookupReadScoper(t *testing.T) {
	kc := component.MustNewID("keycloakauth")
	other := component.MustNewIDWithName("keycloakauth", "other")
	h := host{kc: scoper{}, other: nopComponent{}}

	r, err := LookupReadScoper(h, kc)
	require.NoError(t, err)
	s, err := r.ReadScope(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"moc"}, s.Hubs, "the extension itself is returned")

	_, err = LookupReadScoper(h, other)
	require.ErrorIs(t, err, errNotReadScoper)
	assert.Contains(t, err.Error(), `"keycloakauth/other"`)

	_, err = LookupReadScoper(h, component.MustNewIDWithName("keycloakauth", "missing"))
	require.ErrorContains(t, err, "extension not found")
}
