package gpustorageextension // import "github.com/nerc-project/ai-telemetry-collector/extension/gpustorageextension"

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/component"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore/clickhouse"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore/embedded"
)

var errOneBackend = errors.New("exactly one of embedded and clickhouse must be set")

// Config selects the store's backend: embedded (a SQLite file, the default
// for one machine) or clickhouse (read what the contrib clickhouse exporter
// and deploy/clickhouse write).
type Config struct {
	Embedded   *embedded.Config   `mapstructure:"embedded"`
	ClickHouse *clickhouse.Config `mapstructure:"clickhouse"`
}

var _ component.Config = (*Config)(nil)

// Validate checks that one backend is configured, and that backend's settings.
func (c *Config) Validate() error {
	switch {
	case (c.Embedded == nil) == (c.ClickHouse == nil):
		return errOneBackend
	case c.Embedded != nil:
		if err := c.Embedded.Validate(); err != nil {
			return fmt.Errorf("embedded: %w", err)
		}
	default:
		if err := c.ClickHouse.Validate(); err != nil {
			return fmt.Errorf("clickhouse: %w", err)
		}
	}
	return nil
}
