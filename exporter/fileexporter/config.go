package fileexporter // import "github.com/nerc-project/ai-telemetry-collector/exporter/fileexporter"

import (
	"errors"
	"fmt"
	"path/filepath"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

var (
	errNoPath        = errors.New("path must be set")
	errPathIsDir     = errors.New("path names a directory, not a file")
	errInvalidMode   = errors.New("file_mode must be a permission mode between 0000 and 0777")
	errNoOwnerAccess = errors.New("file_mode must let the owner write the file")
)

// Config defines the configuration of the file exporter.
type Config struct {
	// Path of the file the export requests are appended to. Its directory is
	// created when missing.
	Path string `mapstructure:"path"`

	// FileMode is the permission the file has once the exporter started, new
	// or existing (default 0600: the telemetry may carry project names and pod
	// names).
	FileMode uint32 `mapstructure:"file_mode"`

	TimeoutConfig exporterhelper.TimeoutConfig                             `mapstructure:",squash"`
	QueueConfig   configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	BackOffConfig configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration without touching the file system.
func (c *Config) Validate() error {
	var errs []error
	switch {
	case c.Path == "":
		errs = append(errs, fmt.Errorf("path: %w", errNoPath))
	case c.Path[len(c.Path)-1] == filepath.Separator || filepath.Base(c.Path) == "." || filepath.Base(c.Path) == "..":
		errs = append(errs, fmt.Errorf("path %q: %w", c.Path, errPathIsDir))
	}
	if c.FileMode > 0o777 {
		errs = append(errs, fmt.Errorf("file_mode %#o: %w", c.FileMode, errInvalidMode))
	} else if c.FileMode&0o200 == 0 {
		errs = append(errs, fmt.Errorf("file_mode %#o: %w", c.FileMode, errNoOwnerAccess))
	}
	return errors.Join(errs...)
}
