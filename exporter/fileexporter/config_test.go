package fileexporter

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/nerc-project/ai-telemetry-collector/exporter/fileexporter/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	custom := createDefaultConfig().(*Config)
	custom.Path = "/var/lib/otelcol/gpu-metrics.jsonl"
	custom.FileMode = 0o640
	custom.TimeoutConfig.Timeout = 10 * time.Second
	q := custom.QueueConfig.Get()
	q.NumConsumers = 2
	q.QueueSize = 500
	custom.BackOffConfig.InitialInterval = time.Second
	custom.BackOffConfig.MaxInterval = 5 * time.Second
	custom.BackOffConfig.MaxElapsedTime = 30 * time.Second

	defaults := createDefaultConfig().(*Config)
	defaults.Path = "./data/out.jsonl"

	tests := []struct {
		id      component.ID
		want    *Config
		wantErr error
	}{
		{id: component.NewID(metadata.Type), want: defaults},
		{id: component.NewIDWithName(metadata.Type, "custom"), want: custom},
		{id: component.NewIDWithName(metadata.Type, "no_path"), wantErr: errNoPath},
		{id: component.NewIDWithName(metadata.Type, "directory"), wantErr: errPathIsDir},
		{id: component.NewIDWithName(metadata.Type, "no_owner_write"), wantErr: errNoOwnerAccess},
		{id: component.NewIDWithName(metadata.Type, "mode_too_big"), wantErr: errInvalidMode},
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

func TestValidateNamesTheField(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	err := cfg.Validate()
	require.ErrorContains(t, err, "path")

	cfg.Path = "out.jsonl"
	cfg.FileMode = 0o400
	require.ErrorContains(t, cfg.Validate(), "file_mode")
}
