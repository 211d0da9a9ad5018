package tenant

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name, id string
		ok       bool
	}{
		{"project resource", topology.ProjectResource("moc", "nerc-ocp-prod", "team-a"), true},
		{"cluster resource with dots", topology.ClusterResource("moc", "ocp.example.org"), true},
		{"hub resource", topology.HubResource("moc"), true},
		{"every special character", "a!-_.*'()z", true},
		{"150 bytes", strings.Repeat("a", MaxLength), true},
		{"151 bytes", strings.Repeat("a", MaxLength+1), false},
		{"empty", "", false},
		{"dot", ".", false},
		{"dot dot", "..", false},
		{"cross-tenant query separator", "team-a|team-b", false},
		{"slash", "team-a/../team-b", false},
		{"space", "team a", false},
		{"colon", "team:a", false},
		{"newline", "team-a\nX-Scope-OrgID: team-b", false},
		{"non-ASCII", "tëam", false},
		{"NUL", "team\x00a", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.id)
			if tt.ok {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalid)
		})
	}
}

// The longest project resource valid Kubernetes names make is far over the
// limit, so the check matters: such a resource cannot be a tenant.
func TestLongestProjectResourceIsNoTenant(t *testing.T) {
	label := strings.Repeat("c", 63)
	cluster := label + "." + label + "." + label
	require.NoError(t, topology.ValidateName(topology.KindCluster, cluster))
	res := topology.ProjectResource("moc", cluster, strings.Repeat("n", 63))
	require.ErrorIs(t, Validate(res), ErrInvalid)
	assert.Contains(t, Validate(res).Error(), "at most 150")
}

func TestValidateKey(t *testing.T) {
	tests := []struct {
		key string
		ok  bool
	}{
		{"X-Scope-OrgID", true},
		{"x-scope-orgid", true},
		{"tenant_id.v1", true},
		{"", false},
		{"-x", false},
		{"x scope", false},
		{"x:scope", false},
		{"x-scope-orgid-bin", false},
		{"grpc-timeout", false},
		{"Authorization", false},
		{"content-type", false},
		{":authority", false},
		{"x-scope-orgid\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			err := ValidateKey(tt.key)
			if tt.ok {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidKey)
		})
	}
}
