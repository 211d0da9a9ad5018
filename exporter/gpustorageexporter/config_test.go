package gpustorageexporter

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/nerc-project/ai-telemetry-collector/exporter/gpustorageexporter/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	tests := []struct {
		name    string
		check   func(t *testing.T, c *Config)
		wantErr error
	}{
		{name: "", check: func(t *testing.T, c *Config) {
			assert.Equal(t, component.MustNewID("gpu_storage"), c.Storage)
			assert.Equal(t, 1, c.QueueConfig.Get().NumConsumers, "SQLite has one writer")
			assert.True(t, c.BackOffConfig.Enabled)
		}},
		{name: "custom", check: func(t *testing.T, c *Config) {
			assert.Equal(t, component.MustNewIDWithName("gpu_storage", "lab"), c.Storage)
			assert.Equal(t, 10*time.Second, c.TimeoutConfig.Timeout)
			assert.Equal(t, int64(500), c.QueueConfig.Get().QueueSize)
		}},
		{name: "no_storage", wantErr: errNoStorage},
	}
	for _, tt := range tests {
		id := component.NewIDWithName(metadata.Type, tt.name)
		t.Run(id.String(), func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			sub, err := cm.Sub(id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.check(t, cfg)
		})
	}
}
