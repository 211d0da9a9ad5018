package alertmanagerreceiver

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
	"github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	storageID := component.MustNewIDWithName("file_storage", "alerts")
	nerc := createDefaultConfig().(*Config)
	nerc.NetAddr.Endpoint = "0.0.0.0:9097"
	nerc.Path = "/api/v1/alerts"
	nerc.MaxRequestBodySize = 1 << 20
	nerc.ServiceName = "gpu-sessions"
	nerc.Hub = "moc"
	nerc.ClusterLabel = "managed_cluster"
	nerc.HubCluster = "nerc-ocp-infra"
	nerc.Storage = &storageID
	nerc.SessionRecordSize = 5000
	nerc.MaxConcurrentRequests = 64
	nerc.MaxResourcesPerNotification = 16
	nerc.SpanNames = map[string]string{"GPUInUse": "gpu.usage", "GPUAllocatedIdle": "gpu.idle"}

	tests := []struct {
		id      component.ID
		want    *Config
		wantErr error
	}{
		{id: component.NewID(metadata.Type), want: createDefaultConfig().(*Config)},
		{id: component.NewIDWithName(metadata.Type, "nerc"), want: nerc},
		{id: component.NewIDWithName(metadata.Type, "bad_path"), wantErr: errBadPath},
		{id: component.NewIDWithName(metadata.Type, "empty_span_name"), wantErr: errEmptySpanName},
		{id: component.NewIDWithName(metadata.Type, "no_record"), wantErr: errRecordSize},
		{id: component.NewIDWithName(metadata.Type, "no_endpoint"), wantErr: errNoEndpoint},
		{id: component.NewIDWithName(metadata.Type, "authorizer_no_hub"), wantErr: errAuthorizerNoHub},
		{id: component.NewIDWithName(metadata.Type, "negative_limit"), wantErr: errMaxConcurrent},
		{id: component.NewIDWithName(metadata.Type, "no_resources"), wantErr: errMaxResources},
		{id: component.NewIDWithName(metadata.Type, "budget_below_body"), wantErr: errMaxBytesInFlight},
		{id: component.NewIDWithName(metadata.Type, "caller_over_total"), wantErr: errMaxConcurrent},
		{id: component.NewIDWithName(metadata.Type, "bad_hub"), wantErr: topology.ErrInvalidName},
		{id: component.NewIDWithName(metadata.Type, "bad_hub_cluster"), wantErr: topology.ErrInvalidName},
		{id: component.NewIDWithName(metadata.Type, "bad_cluster"), wantErr: topology.ErrInvalidName},
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

func TestDefaultConfig(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	assert.Equal(t, "localhost:9097", cfg.NetAddr.Endpoint)
	assert.Equal(t, "/alerts", cfg.Path)
	require.NoError(t, cfg.Validate())
}
