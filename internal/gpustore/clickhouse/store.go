// Package clickhouse is the ClickHouse backend of internal/gpustore: it reads
// the tables the contrib clickhouse exporter writes (otel_metrics_gauge,
// otel_traces) and deploy/clickhouse's view and rollups (gpu_samples,
// gpu_hours_hourly, gpu_topology), the same source the Grafana dashboards
// read. Every query is a .sql file under sql/ taking ClickHouse query
// parameters ({name:Type}); no SQL is ever built from input, and the scope is
// a parameter of every query. It does not write: the exporter does.
package clickhouse // import "github.com/nerc-project/ai-telemetry-collector/internal/gpustore/clickhouse"

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

//go:embed sql/*.sql
var sqlFiles embed.FS

var _ gpustore.Store = (*Store)(nil)

// query is one embedded .sql file and the parameters it takes.
type query struct {
	name   string
	text   string
	params []string
}

// paramRE finds {name:Type} parameters; comments are stripped first.
var paramRE = regexp.MustCompile(`\{(\w+):`)

func loadQueries() (map[string]query, error) {
	out := map[string]query{}
	entries, err := fs.ReadDir(sqlFiles, "sql")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		b, err := sqlFiles.ReadFile(path.Join("sql", e.Name()))
		if err != nil {
			return nil, err
		}
		q := query{name: strings.TrimSuffix(e.Name(), ".sql"), text: string(b)}
		seen := map[string]bool{}
		for _, line := range strings.Split(q.text, "\n") {
			line, _, _ = strings.Cut(line, "--")
			for _, m := range paramRE.FindAllStringSubmatch(line, -1) {
				if !seen[m[1]] {
					seen[m[1]] = true
					q.params = append(q.params, m[1])
				}
			}
		}
		sort.Strings(q.params)
		out[q.name] = q
	}
	return out, nil
}

// Store reads ClickHouse.
type Store struct {
	conn    driver.Conn
	cfg     Config
	queries map[string]query
	now     func() time.Time
}

// Open connects to ClickHouse and pings it.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	opts, err := ch.ParseDSN(cfg.Endpoint)
	if err != nil {
		// ParseDSN's errors may quote the DSN; it carries no credentials (Validate).
		return nil, fmt.Errorf("%w: endpoint: %w", ErrConfig, err)
	}
	opts.Auth.Database = cfg.Database
	if cfg.Username != "" {
		opts.Auth.Username = cfg.Username
	}
	opts.Auth.Password = string(cfg.Password)
	opts.DialTimeout = cfg.DialTimeout
	if cfg.TLS != nil {
		tc, err := cfg.TLS.LoadTLSConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: tls: %w", ErrConfig, err)
		}
		opts.TLS = tc
	}
	queries, err := loadQueries()
	if err != nil {
		return nil, err
	}
	conn, err := ch.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: open: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if err := conn.Ping(pctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("clickhouse: ping %s: %w", opts.Addr, err)
	}
	return &Store{conn: conn, cfg: cfg, queries: queries, now: time.Now}, nil
}

// Close closes the connections.
func (s *Store) Close() error { return s.conn.Close() }

// WriteMetrics is refused: the contrib clickhouse exporter writes ClickHouse.
func (s *Store) WriteMetrics(context.Context, pmetric.Metrics) error { return gpustore.ErrReadOnly }

// WriteTraces is refused: the contrib clickhouse exporter writes ClickHouse.
func (s *Store) WriteTraces(context.Context, ptrace.Traces) error { return gpustore.ErrReadOnly }

// errMissingParam is a programming error: a .sql file takes a parameter
// the Go side does not set.
var errMissingParam = errors.New("clickhouse: query parameter not set")

// run executes the named query with the parameters it takes, as ClickHouse
// query parameters (never in the SQL text), and returns each row by column.
func (s *Store) run(ctx context.Context, name string, p params) ([]record, error) {
	q, ok := s.queries[name]
	if !ok {
		return nil, fmt.Errorf("clickhouse: no query %s", name)
	}
	args, err := q.bind(p)
	if err != nil {
		return nil, err
	}
	rows, err := s.conn.Query(ch.Context(ctx, ch.WithParameters(args)), q.text)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %s: %w", name, err)
	}
	defer func() { _ = rows.Close() }()
	out, err := scanAll(rows)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %s: %w", name, err)
	}
	return out, nil
}

func (q query) bind(p params) (ch.Parameters, error) {
	args := ch.Parameters{}
	for _, n := range q.params {
		v, ok := p[n]
		if !ok {
			return nil, fmt.Errorf("%w: %s in %s.sql", errMissingParam, n, q.name)
		}
		args[n] = v
	}
	return args, nil
}
