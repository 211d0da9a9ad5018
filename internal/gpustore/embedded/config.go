package embedded

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of Config (issue 16: raw samples for two weeks, hourly rollups
// for a bit more than a year, so a yearly report reads rollups only).
const (
	DefaultRawRetention    = 14 * 24 * time.Hour
	DefaultRollupRetention = 400 * 24 * time.Hour
)

// Sentinel errors of Validate.
var (
	ErrNoPath           = errors.New("path is required")
	ErrBadRetention     = errors.New("retention must be positive")
	ErrRollupBeforeRaw  = errors.New("rollup_retention must be at least raw_retention")
	errClosed           = errors.New("store is closed")
	errUnknownMigration = errors.New("database schema is newer than this build")
)

// Config of the embedded store.
type Config struct {
	// Path of the SQLite file; created with its schema when missing.
	Path string `mapstructure:"path"`
	// RawRetention bounds how long raw samples are kept.
	RawRetention time.Duration `mapstructure:"raw_retention"`
	// RollupRetention bounds how long hourly rollups, sessions and
	// entities not seen since are kept.
	RollupRetention time.Duration `mapstructure:"rollup_retention"`
	// Now is the store's clock (retention, open sessions' durations,
	// SourceAuto); nil is time.Now. Tests and the conformance run fix it.
	Now func() time.Time `mapstructure:"-"`
}

// NewDefaultConfig is the configuration with the defaults filled in.
func NewDefaultConfig() Config {
	return Config{RawRetention: DefaultRawRetention, RollupRetention: DefaultRollupRetention}
}

// withDefaults fills zero retentions with the defaults.
func (c Config) withDefaults() Config {
	if c.RawRetention == 0 {
		c.RawRetention = DefaultRawRetention
	}
	if c.RollupRetention == 0 {
		c.RollupRetention = DefaultRollupRetention
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate checks the configuration (zero retentions mean the defaults).
func (c Config) Validate() error {
	if c.Path == "" {
		return ErrNoPath
	}
	d := c.withDefaults()
	if d.RawRetention < 0 {
		return fmt.Errorf("raw_retention %s: %w", c.RawRetention, ErrBadRetention)
	}
	if d.RollupRetention < 0 {
		return fmt.Errorf("rollup_retention %s: %w", c.RollupRetention, ErrBadRetention)
	}
	if d.RollupRetention < d.RawRetention {
		return fmt.Errorf("rollup_retention %s < raw_retention %s: %w", d.RollupRetention, d.RawRetention, ErrRollupBeforeRaw)
	}
	return nil
}
