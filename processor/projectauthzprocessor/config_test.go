package projectauthzprocessor

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/nerc-project/ai-telemetry-collector/internal/tenant"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
	"github.com/nerc-project/ai-telemetry-collector/processor/projectauthzprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	keycloak := component.MustNewID("keycloakauth")
	tests := []struct {
		id      component.ID
		want    *Config
		wantErr error
	}{
		{id: component.NewID(metadata.Type), wantErr: errNoAuthorizer},
		{id: component.NewIDWithName(metadata.Type, "nerc"), want: &Config{
			Authorizer: keycloak, Hub: "moc", Cluster: "nerc-ocp-prod", OnDenied: OnDeniedReject, MaxResourcesPerRequest: 16,
		}},
		{id: component.NewIDWithName(metadata.Type, "named_authorizer"), want: &Config{
			Authorizer: component.MustNewIDWithName("keycloakauth", "gateway"), Hub: "moc", OnDenied: OnDeniedDrop, MaxResourcesPerRequest: 64,
		}},
		{id: component.NewIDWithName(metadata.Type, "no_authorizer"), wantErr: errNoAuthorizer},
		{id: component.NewIDWithName(metadata.Type, "no_hub"), wantErr: errNoHub},
		{id: component.NewIDWithName(metadata.Type, "bad_on_denied"), wantErr: errOnDenied},
		{id: component.NewIDWithName(metadata.Type, "no_resources"), wantErr: errMaxResources},
		{id: component.NewIDWithName(metadata.Type, "local_cluster"), wantErr: errLocalCluster},
		{id: component.NewIDWithName(metadata.Type, "separator_in_cluster"), wantErr: topology.ErrInvalidName},
		{id: component.NewIDWithName(metadata.Type, "upper_case_hub"), wantErr: topology.ErrInvalidName},
		{id: component.NewIDWithName(metadata.Type, "tenant"), want: &Config{
			Authorizer: keycloak, Hub: "moc", OnDenied: OnDeniedDrop, MaxResourcesPerRequest: 64,
			Tenant: TenantConfig{MetadataKey: "x-scope-orgid"},
		}},
		{id: component.NewIDWithName(metadata.Type, "bad_tenant_key"), wantErr: tenant.ErrInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := createDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg)
		})
	}
}

func TestDefaultConfigNeedsAuthorizerAndHub(t *testing.T) {
	cfg := createDefaultConfig()
	err := confmap.Validate(cfg)
	require.ErrorIs(t, err, errNoAuthorizer)
	require.ErrorIs(t, err, errNoHub)
	assert.False(t, cfg.(*Config).Tenant.enabled(), "per-tenant forwarding is off by default")
}
