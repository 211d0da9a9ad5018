package tenantheader // import "github.com/nerc-project/ai-telemetry-collector/extension/tenantheader"

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/component"

	"github.com/nerc-project/ai-telemetry-collector/internal/tenant"
)

// Config defines the configuration of the tenantheader extension.
type Config struct {
	// Header is the request header set to the tenant (X-Scope-OrgID);
	// a value the exporter's own headers set is replaced.
	Header string `mapstructure:"header"`

	// MetadataKey is the client metadata key the tenant is read from
	// (x-scope-orgid), case-insensitive: the projectauthz processor's
	// tenant.metadata_key.
	MetadataKey string `mapstructure:"metadata_key"`
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if err := tenant.ValidateKey(c.Header); err != nil {
		errs = append(errs, fmt.Errorf("header: %w", err))
	}
	if err := tenant.ValidateKey(c.MetadataKey); err != nil {
		errs = append(errs, fmt.Errorf("metadata_key: %w", err))
	}
	return errors.Join(errs...)
}
