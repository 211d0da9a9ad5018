package gpuqueryextension

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/login"
	"github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	keycloak := component.MustNewID("keycloakauth")
	tests := []struct {
		name    string
		check   func(t *testing.T, c *Config)
		wantErr error
	}{
		{name: "site", check: func(t *testing.T, c *Config) {
			assert.Equal(t, "0.0.0.0:8080", c.HTTP.NetAddr.Endpoint)
			assert.Equal(t, component.MustNewID("gpu_storage"), c.Storage)
			assert.Equal(t, &keycloak, c.Auth)
			require.True(t, c.HTTP.Auth.HasValue())
			assert.Equal(t, keycloak, c.HTTP.Auth.Get().Config.AuthenticatorID)
			assert.False(t, c.InsecureLocalMode)
			assert.Contains(t, c.TraceURL, "{traceId}")
		}},
		{name: "local", check: func(t *testing.T, c *Config) {
			assert.Equal(t, defaultEndpoint, c.HTTP.NetAddr.Endpoint)
			assert.Equal(t, component.MustNewIDWithName("gpu_storage", "embedded"), c.Storage)
			assert.Nil(t, c.Auth)
			assert.True(t, c.InsecureLocalMode)
		}},
		{name: "no_auth", wantErr: errNoAuth},
		{name: "no_storage", wantErr: errNoStorage},
		{name: "both", wantErr: errAuthAndLocal},
		{name: "local_with_authenticator", wantErr: errLocalWithAuth},
		{name: "no_endpoint", wantErr: errNoEndpoint},
		{name: "site_login", check: func(t *testing.T, c *Config) {
			require.NotNil(t, c.Login)
			assert.False(t, c.HTTP.Auth.HasValue())
			assert.Equal(t, "github", c.Login.IdPHint)
			assert.Equal(t, "ai-telemetry-site-login", c.Login.ClientID)
		}},
		{name: "login_with_http_auth", wantErr: errLoginHTTPAuth},
		{name: "login_in_local_mode", wantErr: errLoginLocal},
		{name: "login_over_http", wantErr: login.ErrPublicURL},
		{name: "trace_url_without_placeholder", wantErr: errTraceURL},
		{name: "trace_url_not_http", wantErr: errTraceURL},
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

// TestDefaultConfigIsRefused: the default configuration names neither auth
// nor local mode, so it does not start (secure by default).
func TestDefaultConfigIsRefused(t *testing.T) {
	err := confmap.Validate(createDefaultConfig())
	require.ErrorIs(t, err, errNoAuth)
	require.ErrorIs(t, err, errNoStorage)
}
