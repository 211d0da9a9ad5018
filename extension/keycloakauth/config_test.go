package keycloakauth

import (
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/nerc-project/ai-telemetry-collector/extension/keycloakauth/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	gateway := createDefaultConfig().(*Config)
	gateway.ServerURL = "https://keycloak.example.org"
	gateway.Timeout = 5 * time.Second
	gateway.TLS.CAFile = "/etc/pki/tls/certs/ca-bundle.crt"
	gateway.Server.Audiences = []string{"ai-telemetry-gateway"}
	gateway.Server.AuthorizedParties = []string{"hub-alertmanager", "nerc-ocp-prod-agent"}
	gateway.Server.SignatureAlgorithms = []string{"RS256", "ES256"}
	gateway.Server.ClockSkew = 10 * time.Second
	gateway.Server.TokenCacheSize = 5000
	gateway.Server.TokenCacheTTL = 2 * time.Minute
	gateway.Authorization.Mode = ModeResource
	gateway.Authorization.ResourceServer = "ai-telemetry-gateway"
	gateway.Authorization.DecisionCacheTTL = 30 * time.Second
	gateway.Authorization.MaxDecisionsPerMinute = 300
	gateway.Authorization.DecisionBurst = 64

	agent := createDefaultConfig().(*Config)
	agent.ServerURL = "https://keycloak.example.org/"
	agent.Client = configoptional.Some(ClientConfig{
		ClientID: "nerc-ocp-prod-agent", ClientSecret: "not-a-real-secret", Scopes: []string{"openid"},
		ExpiryMargin: defaultExpiryMargin, MaxBackoff: defaultMaxBackoff,
	})

	httpAllowed := createDefaultConfig().(*Config)
	httpAllowed.ServerURL = "http://keycloak.keycloak.svc:8080"
	httpAllowed.InsecureAllowHTTP = true
	httpAllowed.Server.Audiences = []string{"ai-telemetry-gateway"}

	loopback := createDefaultConfig().(*Config)
	loopback.ServerURL = "http://[::1]:8080"
	loopback.Server.Audiences = []string{"ai-telemetry-gateway"}

	agentInsecure := createDefaultConfig().(*Config)
	agentInsecure.ServerURL = "https://keycloak.example.org"
	agentInsecure.Client = configoptional.Some(ClientConfig{
		ClientID: "nerc-ocp-prod-agent", ClientSecret: "not-a-real-secret", InsecureAllowHTTP: true,
		ExpiryMargin: defaultExpiryMargin, MaxBackoff: defaultMaxBackoff,
	})

	site := createDefaultConfig().(*Config)
	site.ServerURL = "https://keycloak.example.org"
	site.Server.Audiences = []string{"ai-telemetry-site"}
	site.Authorization.Mode = ModeResource
	site.Authorization.ResourceServer = "ai-telemetry-site"
	site.Authorization.ReadScope = "view"
	site.Authorization.ManagerScope = "manage"

	tests := []struct {
		id      component.ID
		want    *Config
		wantErr error
	}{
		{id: component.NewIDWithName(metadata.Type, "gateway"), want: gateway},
		{id: component.NewIDWithName(metadata.Type, "agent"), want: agent},
		{id: component.NewIDWithName(metadata.Type, "no_server_url"), wantErr: errNoServerURL},
		{id: component.NewIDWithName(metadata.Type, "bad_server_url"), wantErr: errNoServerURL},
		{id: component.NewIDWithName(metadata.Type, "no_side"), wantErr: errNoSide},
		{id: component.NewIDWithName(metadata.Type, "hmac"), wantErr: errBadAlgorithm},
		{id: component.NewIDWithName(metadata.Type, "no_algorithms"), wantErr: errNoAlgorithms},
		{id: component.NewIDWithName(metadata.Type, "none_alg"), wantErr: errBadAlgorithm},
		{id: component.NewIDWithName(metadata.Type, "no_client_secret"), wantErr: errNoClientSecret},
		{id: component.NewIDWithName(metadata.Type, "bad_mode"), wantErr: errBadMode},
		{id: component.NewIDWithName(metadata.Type, "resource_no_resource_server"), wantErr: errNoResourceServer},
		{id: component.NewIDWithName(metadata.Type, "zero_cache"), wantErr: errNonPositive},
		{id: component.NewIDWithName(metadata.Type, "no_budget"), wantErr: errNonPositive},
		{id: component.NewIDWithName(metadata.Type, "huge_clock_skew"), wantErr: errTooLong},
		{id: component.NewIDWithName(metadata.Type, "huge_token_cache_ttl"), wantErr: errTooLong},
		{id: component.NewIDWithName(metadata.Type, "http_server_url"), wantErr: errInsecureServer},
		{id: component.NewIDWithName(metadata.Type, "http_server_url_allowed"), want: httpAllowed},
		{id: component.NewIDWithName(metadata.Type, "loopback_http"), want: loopback},
		{id: component.NewIDWithName(metadata.Type, "agent_insecure"), want: agentInsecure},
		{id: component.NewIDWithName(metadata.Type, "site"), want: site},
		{id: component.NewIDWithName(metadata.Type, "no_read_scope"), wantErr: errNoReadScope},
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

func TestDefaultConfigNeedsServerURL(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	require.ErrorIs(t, cfg.Validate(), errNoServerURL)
	require.ErrorIs(t, cfg.Validate(), errNoSide)
	assert.Equal(t, "NERC", cfg.Realm)
	assert.False(t, cfg.Client.HasValue(), "the client side is off unless configured")
	assert.Equal(t, "GET", cfg.Authorization.ReadScope)
	assert.Equal(t, "GETManager", cfg.Authorization.ManagerScope, "the original platform's manager scope")
}

func TestEndpoints(t *testing.T) {
	cfg := &Config{ServerURL: "https://keycloak.example.org/", Realm: "NERC"}
	assert.Equal(t, "https://keycloak.example.org/realms/NERC", cfg.expectedIssuer())
	assert.Equal(t, "https://keycloak.example.org/realms/NERC/protocol/openid-connect/token", cfg.tokenURL())
	assert.Equal(t, "https://keycloak.example.org/realms/NERC/.well-known/openid-configuration", cfg.discoveryURL())
	cfg.Issuer = "https://sso.example.org/realms/NERC"
	assert.Equal(t, "https://sso.example.org/realms/NERC", cfg.expectedIssuer())
}

func TestSecureURL(t *testing.T) {
	for raw, want := range map[string]bool{
		"https://gateway.example.org":            true,
		"https://10.0.0.1:4318/v1/metrics":       true,
		"http://127.0.0.1:4318":                  true,
		"http://127.10.0.3":                      true,
		"http://[::1]:4318":                      true,
		"http://localhost:4318":                  true,
		"http://LOCALHOST":                       true,
		"http://gateway.example.org":             false,
		"http://10.0.0.1:4318":                   false,
		"http://127.0.0.1.nip.io":                false,
		"http://localhost.example.org":           false,
		"http://[::ffff:10.0.0.1]":               false,
		"ftp://127.0.0.1":                        false,
		"gateway.example.org:4317":               false,
		"http://user:pass@gateway.example.org/x": false,
	} {
		u, err := url.Parse(raw)
		if err != nil {
			assert.False(t, want, raw)
			continue
		}
		assert.Equal(t, want, secureURL(u), raw)
	}
}
