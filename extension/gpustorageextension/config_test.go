package gpustorageextension

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/nerc-project/ai-telemetry-collector/extension/gpustorageextension/internal/metadata"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore/embedded"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	tests := []struct {
		name    string
		want    *Config
		wantErr error
	}{
		{name: "", want: &Config{Embedded: &embedded.Config{Path: "/var/lib/otelcol/gpu.db"}}},
		{name: "retention", want: &Config{Embedded: &embedded.Config{
			Path: "./data/gpu.db", RawRetention: 168 * time.Hour, RollupRetention: 8760 * time.Hour,
		}}},
		{name: "none", wantErr: errOneBackend},
		{name: "both", wantErr: errOneBackend},
	}
	for _, tt := range tests {
		id := component.NewIDWithName(metadata.Type, tt.name)
		t.Run(id.String(), func(t *testing.T) {
			cfg := createDefaultConfig()
			sub, err := cm.Sub(id.String())
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

func TestBackendSettingsAreValidated(t *testing.T) {
	cfg := &Config{Embedded: &embedded.Config{Path: "x.db", RawRetention: 48 * time.Hour, RollupRetention: 24 * time.Hour}}
	err := cfg.Validate()
	require.ErrorIs(t, err, embedded.ErrRollupBeforeRaw)
	assert.ErrorContains(t, err, "embedded: ")
}
