package promqlreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/promqlreceiver"

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// maxRangePoints is Prometheus' limit of points per series in one query_range
// answer; a catch-up longer than this many steps would be refused.
const maxRangePoints = 11000

var (
	errNoEndpoint       = errors.New("endpoint must be an http or https URL")
	errNoQueries        = errors.New("at least one query must be configured")
	errQueryName        = errors.New("query name must be 1-64 characters of letters, digits, '_', '-', '.' or ':'")
	errDuplicateName    = errors.New("query names must be unique")
	errEmptyQuery       = errors.New("query must not be empty")
	errQueryTemplate    = errors.New("query is not a valid template")
	errNoClusters       = errors.New("query uses {{.Cluster}} but no clusters are configured")
	errClusterName      = errors.New("cluster must be a Kubernetes name (a DNS-1123 subdomain: lower-case letters, digits, '-', '.')")
	errDuplicateCluster = errors.New("clusters must be unique")
	errInterval         = errors.New("interval must be at least 1s")
	errStep             = errors.New("step must be at least 1s")
	errMaxCatchUp       = errors.New("max_catch_up must not be negative")
	errCatchUpChunk     = errors.New("catch_up_chunk must be 0 (one request) or at least 1s")
	errMaxResponseSize  = errors.New("max_response_size must be at least 1 byte")
	errDelay            = errors.New("delay must not be negative")
	errTooManySteps     = errors.New("max_catch_up / step exceeds Prometheus' 11000 points per series")
	errTimeoutConfig    = errors.New("timeout must be positive: a hung request would stop its query for good")
	errNotSelector      = errors.New("raw_samples needs a plain vector selector (no functions, offset, @ or comments): the receiver appends [window]")
	errPlainHTTPAuth    = errors.New("endpoint is plain http off loopback and the client sends credentials (auth.authenticator or an " +
		"Authorization header), which would cross the network in clear: use https, or set insecure_http_auth: true")
)

// Config defines the PromQL receiver.
type Config struct {
	// ClientConfig is the HTTP client of the Prometheus API: endpoint (base
	// URL, the API paths are appended), tls, timeout, headers and
	// auth.authenticator (keycloakauth client side for prom-keycloak-proxy).
	confighttp.ClientConfig `mapstructure:",squash"`

	// Interval is each query's default schedule.
	Interval time.Duration `mapstructure:"interval"`

	// MaxCatchUp bounds how far back a run reaches after an outage or a
	// restart: samples older than this are never fetched.
	MaxCatchUp time.Duration `mapstructure:"max_catch_up"`

	// CatchUpChunk splits a catch-up longer than this into requests of at
	// most this span, fetched and emitted oldest first, the cursor moving
	// after each: memory holds one chunk's answer at a time, and a refused
	// chunk is the only one fetched again. 0 fetches a catch-up at once.
	CatchUpChunk time.Duration `mapstructure:"catch_up_chunk"`

	// Delay makes each run look at the API as of this long ago: samples
	// still being written when a run starts (ACM forwards a batch of series
	// at once) are then complete before any of them is emitted.
	Delay time.Duration `mapstructure:"delay"`

	// MaxResponseSize bounds an answer's size in bytes: a query matching far
	// more than intended fails (reason too_large) instead of filling memory.
	MaxResponseSize int64 `mapstructure:"max_response_size"`

	// Clusters generates one query per cluster from each query that uses
	// {{.Cluster}}: prom-keycloak-proxy authorizes by the cluster matcher.
	Clusters []string `mapstructure:"clusters"`

	// Storage is a storage extension (file_storage) keeping each query's
	// cursor, so a restart neither repeats nor skips samples. Without it the
	// cursors live in memory.
	Storage *component.ID `mapstructure:"storage"`

	// Queries to run.
	Queries []QueryConfig `mapstructure:"queries"`

	// InsecureHTTPAuth allows an http endpoint off loopback while the client
	// sends credentials: the token then crosses the network in clear. Off by
	// default; when on, Start logs a warning.
	InsecureHTTPAuth bool `mapstructure:"insecure_http_auth"`
}

// QueryConfig is one configured query.
type QueryConfig struct {
	// Name identifies the query in telemetry, logs and storage; per-cluster
	// queries are identified as {name}/{cluster}. Scalar results are emitted
	// as a metric of this name.
	Name string `mapstructure:"name"`

	// Query is PromQL, a Go template: {{.Cluster}} is replaced by each cluster.
	Query string `mapstructure:"query"`

	// Interval overrides the receiver's interval.
	Interval time.Duration `mapstructure:"interval"`

	// RawSamples makes Query a vector selector whose stored samples are
	// fetched with their own timestamps: the receiver asks for
	// Query[window] with the window reaching back to the cursor.
	// Otherwise Query is evaluated at the run's time (an instant query), and
	// after a missed run over the gap with query_range every Step.
	RawSamples bool `mapstructure:"raw_samples"`

	// Step of the query_range catch-up of evaluated queries (default: the
	// query's interval).
	Step time.Duration `mapstructure:"step"`

	// MaxCatchUp overrides the receiver's max_catch_up.
	MaxCatchUp time.Duration `mapstructure:"max_catch_up"`

	// Unscoped allows a query without {{.Cluster}}: it reads whatever the
	// credentials reach on every cluster, and its series are not checked
	// against a cluster. Without it such a query is refused, so a
	// per-cluster deployment never reads across clusters by omission.
	Unscoped bool `mapstructure:"unscoped"`
}

var _ component.Config = (*Config)(nil)

var queryNameRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("endpoint %q: %w", redacted(c.Endpoint), errNoEndpoint))
	}
	if c.plainHTTPCredentials() && !c.InsecureHTTPAuth {
		errs = append(errs, fmt.Errorf("endpoint %q: %w", redacted(c.Endpoint), errPlainHTTPAuth))
	}
	if c.Interval < time.Second {
		errs = append(errs, fmt.Errorf("interval %s: %w", c.Interval, errInterval))
	}
	if c.MaxCatchUp < 0 {
		errs = append(errs, fmt.Errorf("max_catch_up %s: %w", c.MaxCatchUp, errMaxCatchUp))
	}
	if c.CatchUpChunk != 0 && c.CatchUpChunk < time.Second {
		errs = append(errs, fmt.Errorf("catch_up_chunk %s: %w", c.CatchUpChunk, errCatchUpChunk))
	}
	if c.MaxResponseSize < 1 {
		errs = append(errs, fmt.Errorf("max_response_size %d: %w", c.MaxResponseSize, errMaxResponseSize))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout %s: %w", c.Timeout, errTimeoutConfig))
	}
	if c.Delay < 0 {
		errs = append(errs, fmt.Errorf("delay %s: %w", c.Delay, errDelay))
	}
	seenCluster := map[string]bool{}
	for _, cl := range c.Clusters {
		if err := topology.ValidateName(topology.KindCluster, cl); err != nil {
			errs = append(errs, fmt.Errorf("clusters: %w: %w", errClusterName, err))
		}
		if seenCluster[cl] {
			errs = append(errs, fmt.Errorf("clusters: %q: %w", cl, errDuplicateCluster))
		}
		seenCluster[cl] = true
	}
	if len(c.Queries) == 0 {
		errs = append(errs, errNoQueries)
	}
	seenName := map[string]bool{}
	for i, q := range c.Queries {
		errs = append(errs, c.validateQuery(i, q, seenName)...)
	}
	return errors.Join(errs...)
}

func (c *Config) validateQuery(i int, q QueryConfig, seen map[string]bool) []error {
	var errs []error
	at := fmt.Sprintf("queries[%d]", i)
	if !queryNameRE.MatchString(q.Name) {
		errs = append(errs, fmt.Errorf("%s: name %q: %w", at, q.Name, errQueryName))
	} else {
		at = fmt.Sprintf("queries[%d] (%s)", i, q.Name)
	}
	if seen[q.Name] {
		errs = append(errs, fmt.Errorf("%s: %w", at, errDuplicateName))
	}
	seen[q.Name] = true
	if q.Interval != 0 && q.Interval < time.Second {
		errs = append(errs, fmt.Errorf("%s: interval %s: %w", at, q.Interval, errInterval))
	}
	if q.Step != 0 && q.Step < time.Second {
		errs = append(errs, fmt.Errorf("%s: step %s: %w", at, q.Step, errStep))
	}
	if q.MaxCatchUp < 0 {
		errs = append(errs, fmt.Errorf("%s: max_catch_up %s: %w", at, q.MaxCatchUp, errMaxCatchUp))
	}
	if s := c.effective(q); !q.RawSamples && s.step >= time.Second && s.maxCatchUp/s.step > maxRangePoints {
		errs = append(errs, fmt.Errorf("%s: max_catch_up %s, step %s: %w", at, s.maxCatchUp, s.step, errTooManySteps))
	}
	if q.Query == "" {
		return append(errs, fmt.Errorf("%s: %w", at, errEmptyQuery))
	}
	tmpl, err := parseQuery(q.Query)
	if err != nil {
		return append(errs, fmt.Errorf("%s: %w: %w", at, errQueryTemplate, err))
	}
	perCluster, err := usesCluster(tmpl)
	if err != nil {
		return append(errs, fmt.Errorf("%s: %w: %w", at, errQueryTemplate, err))
	}
	switch {
	case perCluster && q.Unscoped:
		errs = append(errs, fmt.Errorf("%s: %w", at, errUnscopedUsage))
	case perCluster && len(c.Clusters) == 0:
		errs = append(errs, fmt.Errorf("%s: %w", at, errNoClusters))
	case perCluster:
		if err := checkClusterScope(tmpl, c.validClusters()); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q: %w", at, q.Query, err))
		}
	case !q.Unscoped:
		errs = append(errs, fmt.Errorf("%s: %q: %w", at, q.Query, errUnscoped))
	default:
		if rendered, err := render(tmpl, ""); err == nil {
			if _, err := promqlParser.ParseExpr(rendered); err != nil {
				errs = append(errs, fmt.Errorf("%s: %q: %w: %w", at, q.Query, errPromQL, err))
			}
		}
	}
	if q.RawSamples {
		if rendered, err := render(tmpl, "cluster"); err == nil && !isVectorSelector(rendered) {
			errs = append(errs, fmt.Errorf("%s: %q: %w", at, q.Query, errNotSelector))
		}
	}
	return errs
}

// validClusters are the configured clusters whose names passed validation
// (the others are reported already).
func (c *Config) validClusters() []string {
	var out []string
	for _, cl := range c.Clusters {
		if topology.ValidateName(topology.KindCluster, cl) == nil {
			out = append(out, cl)
		}
	}
	return out
}

// schedule is a query's interval, step and catch-up bound after defaults.
type schedule struct {
	interval, step, maxCatchUp, chunk time.Duration
}

func (c *Config) effective(q QueryConfig) schedule {
	s := schedule{interval: c.Interval, maxCatchUp: c.MaxCatchUp, chunk: c.CatchUpChunk}
	if q.Interval > 0 {
		s.interval = q.Interval
	}
	s.step = s.interval
	if q.Step > 0 {
		s.step = q.Step
	}
	if q.MaxCatchUp > 0 {
		s.maxCatchUp = q.MaxCatchUp
	}
	return s
}
