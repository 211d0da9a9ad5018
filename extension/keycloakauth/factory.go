package keycloakauth // import "github.com/nerc-project/ai-telemetry-collector/extension/keycloakauth"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/extension"

	"github.com/nerc-project/ai-telemetry-collector/extension/keycloakauth/internal/metadata"
)

const (
	defaultRealm                  = "NERC"
	defaultTimeout                = 10 * time.Second
	defaultClockSkew              = 30 * time.Second
	defaultJWKSRefreshInterval    = 10 * time.Minute
	defaultJWKSMinRefetchInterval = 30 * time.Second
	defaultTokenCacheSize         = 10_000
	defaultTokenCacheTTL          = 5 * time.Minute
	defaultHeader                 = "authorization"
	defaultExpiryMargin           = 30 * time.Second
	defaultMaxBackoff             = time.Minute
	defaultScope                  = "GET"
	defaultReadScope              = "GET"
	defaultManagerScope           = "GETManager" // the original platform's (prom-keycloak-proxy's)
	defaultDecisionCacheTTL       = time.Minute
	defaultDecisionCacheSize      = 100_000
	// Two decisions a second per caller, and a burst that covers one
	// request with projectauthz's 64 distinct resources and then some.
	defaultMaxDecisionsPerMinute = 120
	defaultDecisionBurst         = 120
)

// NewFactory creates a factory for the keycloakauth extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, createExtension, metadata.ExtensionStability)
}

// defaultMaxTokenSize leaves room for Keycloak tokens carrying many roles and
// groups (a few KiB) while refusing megabyte headers before parsing.
const defaultMaxTokenSize = 32 << 10

func createDefaultConfig() component.Config {
	return &Config{
		Realm:   defaultRealm,
		Timeout: defaultTimeout,
		Server: ServerConfig{
			SignatureAlgorithms:    []string{"RS256"},
			ClockSkew:              defaultClockSkew,
			JWKSRefreshInterval:    defaultJWKSRefreshInterval,
			JWKSMinRefetchInterval: defaultJWKSMinRefetchInterval,
			TokenCacheSize:         defaultTokenCacheSize,
			TokenCacheTTL:          defaultTokenCacheTTL,
			Header:                 defaultHeader,
			MaxTokenSize:           defaultMaxTokenSize,
		},
		Client: configoptional.Default(ClientConfig{
			ExpiryMargin: defaultExpiryMargin,
			MaxBackoff:   defaultMaxBackoff,
		}),
		Authorization: AuthorizationConfig{
			Mode:                  ModeNone,
			Scope:                 defaultScope,
			DecisionCacheTTL:      defaultDecisionCacheTTL,
			DecisionCacheSize:     defaultDecisionCacheSize,
			MaxDecisionsPerMinute: defaultMaxDecisionsPerMinute,
			DecisionBurst:         defaultDecisionBurst,
			ReadScope:             defaultReadScope,
			ManagerScope:          defaultManagerScope,
		},
	}
}

func createExtension(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newKeycloakAuth(cfg.(*Config), set)
}
