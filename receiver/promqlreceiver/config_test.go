package promqlreceiver

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"

	"github.com/nerc-project/ai-telemetry-collector/receiver/promqlreceiver/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	minimal := createDefaultConfig().(*Config)
	minimal.Endpoint = "http://127.0.0.1:9090"
	minimal.Queries = []QueryConfig{{Name: "up", Query: "up", Unscoped: true}}

	storageID := component.MustNewIDWithName("file_storage", "promql")
	nerc := createDefaultConfig().(*Config)
	nerc.Endpoint = "https://prom-keycloak-proxy.example.org"
	nerc.Timeout = 20 * time.Second
	nerc.Auth = configoptional.Some(configauth.Config{AuthenticatorID: component.MustNewIDWithName("keycloakauth", "observability")})
	nerc.Interval = 5 * time.Minute
	nerc.MaxCatchUp = 2 * time.Hour
	nerc.CatchUpChunk = 20 * time.Minute
	nerc.Delay = 2 * time.Minute
	nerc.MaxResponseSize = 64 << 20
	nerc.Storage = &storageID
	nerc.Clusters = []string{"nerc-ocp-prod", "nerc-ocp-test"}
	nerc.Queries = []QueryConfig{
		{Name: "dcgm", Query: `{__name__=~"DCGM_FI_.*",cluster="{{.Cluster}}"}`, RawSamples: true},
		{
			Name: "gpu_busy", Query: `avg by (cluster) (DCGM_FI_PROF_GR_ENGINE_ACTIVE{cluster="{{.Cluster}}"})`,
			Interval: time.Minute, Step: 30 * time.Second, MaxCatchUp: 30 * time.Minute,
		},
	}

	httpAllowed := createDefaultConfig().(*Config)
	httpAllowed.Endpoint = "http://prom-keycloak-proxy.example.org"
	httpAllowed.InsecureHTTPAuth = true
	httpAllowed.Auth = configoptional.Some(configauth.Config{AuthenticatorID: component.MustNewIDWithName("keycloakauth", "observability")})
	httpAllowed.Queries = []QueryConfig{{Name: "up", Query: "up", Unscoped: true}}

	tests := []struct {
		name    string
		want    *Config
		wantErr error
	}{
		{name: "", want: minimal},
		{name: "nerc", want: nerc},
		{name: "http_auth", wantErr: errPlainHTTPAuth},
		{name: "http_auth_header", wantErr: errPlainHTTPAuth},
		{name: "http_auth_allowed", want: httpAllowed},
		{name: "no_endpoint", wantErr: errNoEndpoint},
		{name: "ftp_endpoint", wantErr: errNoEndpoint},
		{name: "no_queries", wantErr: errNoQueries},
		{name: "bad_catch_up_chunk", wantErr: errCatchUpChunk},
		{name: "bad_name", wantErr: errQueryName},
		{name: "duplicate_name", wantErr: errDuplicateName},
		{name: "empty_query", wantErr: errEmptyQuery},
		{name: "bad_template", wantErr: errQueryTemplate},
		{name: "misspelled_field", wantErr: errQueryTemplate},
		{name: "no_clusters", wantErr: errNoClusters},
		{name: "bad_cluster", wantErr: errClusterName},
		{name: "upper_case_cluster", wantErr: topology.ErrInvalidName},
		{name: "duplicate_cluster", wantErr: errDuplicateCluster},
		{name: "short_interval", wantErr: errInterval},
		{name: "short_step", wantErr: errStep},
		{name: "negative_catch_up", wantErr: errMaxCatchUp},
		{name: "too_many_steps", wantErr: errTooManySteps},
		{name: "negative_delay", wantErr: errDelay},
		{name: "no_response_size", wantErr: errMaxResponseSize},
		{name: "no_timeout", wantErr: errTimeoutConfig},
		{name: "raw_aggregation", wantErr: errNotSelector},
		{name: "raw_offset", wantErr: errNotSelector},
		{name: "raw_comment", wantErr: errNotSelector},
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

// Credentials go over plain http only to loopback, or when insecure_http_auth
// says so.
func TestPlainHTTPCredentials(t *testing.T) {
	authID := configoptional.Some(configauth.Config{AuthenticatorID: component.MustNewID("keycloakauth")})
	tests := []struct {
		endpoint string
		auth     bool
		header   string
		refused  bool
	}{
		{"http://prom.example.org", true, "", true},
		{"http://10.0.0.7:9090", true, "", true},
		{"http://prom.example.org", false, "Proxy-Authorization", true},
		{"http://prom.example.org", false, "X-Scope-OrgID", false},
		{"http://prom.example.org", false, "", false},
		{"https://prom.example.org", true, "Authorization", false},
		{"http://127.0.0.1:9090", true, "", false},
		{"http://127.8.9.10:9090", true, "", false},
		{"http://[::1]:9090", true, "", false},
		{"http://localhost:9090", true, "", false},
		{"http://localhost.example.org:9090", true, "", true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s auth=%v header=%q", tt.endpoint, tt.auth, tt.header), func(t *testing.T) {
			cfg := testConfig(tt.endpoint, QueryConfig{Name: "up", Query: "up", Unscoped: true})
			if tt.auth {
				cfg.Auth = authID
			}
			if tt.header != "" {
				cfg.Headers = configopaque.MapList{{Name: tt.header, Value: "Bearer x"}}
			}
			err := cfg.Validate()
			if !tt.refused {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, errPlainHTTPAuth)
			assert.Contains(t, err.Error(), "insecure_http_auth", "the message names the setting")
			cfg.InsecureHTTPAuth = true
			require.NoError(t, cfg.Validate())
		})
	}
}

func TestDefaultConfigNeedsEndpointAndQueries(t *testing.T) {
	err := createDefaultConfig().(*Config).Validate()
	require.ErrorIs(t, err, errNoEndpoint)
	require.ErrorIs(t, err, errNoQueries)
	assert.Contains(t, err.Error(), `endpoint ""`, "the message names the field")
}

func TestEffectiveSchedule(t *testing.T) {
	cfg := &Config{Interval: 5 * time.Minute, MaxCatchUp: time.Hour}
	tests := []struct {
		name string
		q    QueryConfig
		want schedule
	}{
		{"receiver defaults", QueryConfig{}, schedule{interval: 5 * time.Minute, step: 5 * time.Minute, maxCatchUp: time.Hour}},
		{"own interval is the step", QueryConfig{Interval: time.Minute}, schedule{interval: time.Minute, step: time.Minute, maxCatchUp: time.Hour}},
		{"own step and bound", QueryConfig{Step: 30 * time.Second, MaxCatchUp: 10 * time.Minute}, schedule{interval: 5 * time.Minute, step: 30 * time.Second, maxCatchUp: 10 * time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, cfg.effective(tt.q))
		})
	}
}
