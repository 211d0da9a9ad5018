package gpustorageexporter // import "github.com/nerc-project/ai-telemetry-collector/exporter/gpustorageexporter"

import (
	"errors"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

var errNoStorage = errors.New("storage must name a gpu_storage extension")

// Config defines the configuration of the gpu_storage_exporter.
type Config struct {
	// Storage is the gpu_storage extension whose store is written.
	Storage component.ID `mapstructure:"storage"`

	TimeoutConfig exporterhelper.TimeoutConfig                             `mapstructure:",squash"`
	QueueConfig   configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	BackOffConfig configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Storage == (component.ID{}) {
		return errNoStorage
	}
	return nil
}
