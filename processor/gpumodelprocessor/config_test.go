package gpumodelprocessor

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/nerc-project/ai-telemetry-collector/processor/gpumodelprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	nerc := &Config{
		Hub:            "moc",
		Cluster:        ClusterConfig{Label: "managed_cluster", Name: "nerc-ocp-prod", HubCluster: "nerc-ocp-infra"},
		SemconvMetrics: true,
		CacheSize:      5000,
		Metadata: MetadataConfig{
			File:             FileConfig{Path: "/etc/ai-telemetry/projects.yaml", ReloadInterval: time.Minute},
			Kubernetes:       KubernetesConfig{Enabled: true, AuthType: authKubeConfig, Cluster: "nerc-ocp-prod", Pods: false},
			KubeStateMetrics: KubeStateMetricsConfig{Enabled: false},
		},
	}
	tests := []struct {
		id      component.ID
		want    *Config
		wantErr error
	}{
		{id: component.NewID(metadata.Type), want: createDefaultConfig().(*Config)},
		{id: component.NewIDWithName(metadata.Type, "nerc"), want: nerc},
		{id: component.NewIDWithName(metadata.Type, "no_cluster_label"), wantErr: errNoClusterLabel},
		{id: component.NewIDWithName(metadata.Type, "local_cluster"), wantErr: errLocalClusterName},
		{id: component.NewIDWithName(metadata.Type, "bad_reload"), wantErr: errReloadInterval},
		{id: component.NewIDWithName(metadata.Type, "bad_auth"), wantErr: errKubernetesAuth},
		{id: component.NewIDWithName(metadata.Type, "no_cache"), wantErr: errCacheSize},
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
