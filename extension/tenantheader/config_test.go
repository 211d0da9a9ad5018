package tenantheader

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/nerc-project/ai-telemetry-collector/extension/tenantheader/internal/metadata"
	"github.com/nerc-project/ai-telemetry-collector/internal/tenant"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	tests := []struct {
		name    string
		want    *Config
		wantErr string
	}{
		{name: "", want: &Config{Header: "X-Scope-OrgID", MetadataKey: "x-scope-orgid"}},
		{name: "loki", want: &Config{Header: "X-Scope-OrgID", MetadataKey: "tenant"}},
		{name: "empty_header", wantErr: "header: not a usable header or metadata key: empty"},
		{name: "bad_header", wantErr: "header: not a usable header or metadata key: byte ':'"},
		{name: "authorization", wantErr: `header: not a usable header or metadata key: "Authorization" is reserved`},
		{name: "binary_key", wantErr: `metadata_key: not a usable header or metadata key: "x-scope-orgid-bin" is reserved`},
	}
	for _, tt := range tests {
		id := component.NewIDWithName(metadata.Type, tt.name)
		t.Run(id.String(), func(t *testing.T) {
			cfg := createDefaultConfig()
			sub, err := cm.Sub(id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, tenant.ErrInvalidKey)
				assert.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg)
		})
	}
}
