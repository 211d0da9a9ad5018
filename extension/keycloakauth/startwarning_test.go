package keycloakauth

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/nerc-project/ai-telemetry-collector/extension/keycloakauth/internal/metadatatest"
)

// TestStartWarnsWithoutAuthorization: an extension that validates tokens but
// decides nothing per resource says so at start, naming the consequence, so
// running a gateway without per-project authorization is never silent.
func TestStartWarnsWithoutAuthorization(t *testing.T) {
	const consequence = "any valid token may write any project's data"
	f := newFakeKeycloak(t)
	tests := []struct {
		name string
		cfg  func(*Config)
		warn bool
	}{
		{"server side, mode none", func(c *Config) { c.Authorization.Mode = ModeNone }, true},
		{"server side, mode resource", func(*Config) {}, false},
		{"client side only, mode none", func(c *Config) {
			c.Server.Audiences = nil
			c.Authorization.Mode = ModeNone
			require.True(t, c.Client.HasValue())
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := f.config()
			tt.cfg(cfg)
			require.NoError(t, cfg.Validate())
			core, logs := observer.New(zapcore.InfoLevel)
			tel := componenttest.NewTelemetry()
			t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
			set := metadatatest.NewSettings(tel)
			set.Logger = zap.New(core)
			e, err := newKeycloakAuth(cfg, set)
			require.NoError(t, err)
			require.NoError(t, e.Start(context.Background(), componenttest.NewNopHost()))
			t.Cleanup(func() { require.NoError(t, e.Shutdown(context.Background())) })

			var found []observer.LoggedEntry
			for _, l := range logs.All() {
				if l.Level == zapcore.WarnLevel && strings.Contains(l.Message, consequence) {
					found = append(found, l)
				}
			}
			if !tt.warn {
				assert.Empty(t, found, "no warning: %v", logs.All())
				return
			}
			require.Len(t, found, 1, "one warning naming the consequence; logged: %v", logs.All())
			assert.Contains(t, found[0].Message, "authorization.mode")
			assert.Equal(t, []any{testAudience}, found[0].ContextMap()["audiences"])
		})
	}
}
