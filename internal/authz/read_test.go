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

type plain struct {
	component.StartFunc
	component.ShutdownFunc
}

type scoper struct{ plain }

func (scoper) ReadScope(context.Context) (gpustore.Scope, error) {
	return gpustore.Scope{Hubs: []string{"moc"}}, nil
}

func TestLookupReadScoper(t *testing.T) {
	id := component.MustNewID("keycloakauth")
	r, err := LookupReadScoper(host{id: scoper{}}, id)
	require.NoError(t, err)
	s, err := r.ReadScope(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"moc"}, s.Hubs)

	_, err = LookupReadScoper(host{}, id)
	assert.ErrorContains(t, err, "extension not found")
	_, err = LookupReadScoper(host{id: plain{}}, id)
	assert.ErrorIs(t, err, errNotReadScoper)
}
