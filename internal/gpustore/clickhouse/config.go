package clickhouse

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configtls"
)

// Config of the ClickHouse backend.
type Config struct {
	// Endpoint is a clickhouse-go DSN: clickhouse://host:9440?secure=true
	// (native protocol) or https://host:8443 (HTTP interface). Credentials go
	// in Username and Password, never in the DSN.
	Endpoint string `mapstructure:"endpoint"`
	// Database holds the exporter's tables and deploy/clickhouse's objects
	// (CLICKHOUSE_DATABASE in configs/gateway.yaml).
	Database string              `mapstructure:"database"`
	Username string              `mapstructure:"username"`
	Password configopaque.String `mapstructure:"password"`
	// TLS, when set, replaces the DSN's secure/skip_verify settings.
	TLS *configtls.ClientConfig `mapstructure:"tls"`
	// RawRetention is how long raw samples are kept (the exporter's TTL):
	// SourceAuto reads rollups for longer windows.
	RawRetention time.Duration `mapstructure:"raw_retention"`
	// DialTimeout bounds connecting (and the first ping).
	DialTimeout time.Duration `mapstructure:"dial_timeout"`
}

// Defaults.
const (
	DefaultDatabase     = "otel"
	DefaultRawRetention = 14 * 24 * time.Hour
	DefaultDialTimeout  = 10 * time.Second
)

// ErrConfig is returned (wrapped) for an invalid Config.
var ErrConfig = errors.New("invalid clickhouse config")

// withDefaults fills what is unset.
func (c Config) withDefaults() Config {
	if c.Database == "" {
		c.Database = DefaultDatabase
	}
	if c.RawRetention == 0 {
		c.RawRetention = DefaultRawRetention
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	return c
}

// Validate checks the configuration. Errors never quote the DSN's userinfo.
func (c Config) Validate() error {
	if c.Endpoint == "" {
		return fmt.Errorf("%w: endpoint is required", ErrConfig)
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil {
		return fmt.Errorf("%w: endpoint is not a URL", ErrConfig)
	}
	switch u.Scheme {
	case "clickhouse", "tcp", "http", "https":
	default:
		return fmt.Errorf("%w: endpoint scheme %q: want clickhouse, tcp, http or https", ErrConfig, u.Scheme)
	}
	if u.User != nil {
		return fmt.Errorf("%w: endpoint carries credentials: set username and password instead", ErrConfig)
	}
	if q := u.Query(); q.Has("password") || q.Has("username") || q.Has("database") {
		return fmt.Errorf("%w: endpoint carries username, password or database: set the fields instead", ErrConfig)
	}
	if u.Host == "" {
		return fmt.Errorf("%w: endpoint has no host", ErrConfig)
	}
	if c.RawRetention < 0 || c.DialTimeout < 0 {
		return fmt.Errorf("%w: raw_retention and dial_timeout must not be negative", ErrConfig)
	}
	if c.TLS != nil {
		if err := c.TLS.Validate(); err != nil {
			return fmt.Errorf("%w: tls: %w", ErrConfig, err)
		}
	}
	return nil
}
