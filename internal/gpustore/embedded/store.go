package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver (CGO_ENABLED=0 builds)

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

var _ gpustore.Store = (*Store)(nil)

// retentionEvery bounds how often writes run the retention deletes.
const retentionEvery = time.Minute

// migrations is the schema history: entry i brings a database from version
// i to i+1. Append only; never edit an applied entry.
var migrations = []string{
	// 1: raw samples (series dictionary + one row per time and series),
	// the hourly rollup of deploy/clickhouse/002, the latest-state tables
	// and the usage sessions.
	`
CREATE TABLE series (
	id           INTEGER PRIMARY KEY,
	hub          TEXT NOT NULL,
	cluster      TEXT NOT NULL,
	node         TEXT NOT NULL,
	namespace    TEXT NOT NULL,
	pod          TEXT NOT NULL,
	hw_id        TEXT NOT NULL,
	parent       TEXT NOT NULL,
	gpu_index    TEXT NOT NULL,
	model        TEXT NOT NULL,
	profile      TEXT NOT NULL,
	allocated    INTEGER NOT NULL,
	fraction     REAL NOT NULL,
	project_name TEXT NOT NULL,
	project_pi   TEXT NOT NULL,
	UNIQUE (hub, cluster, node, namespace, pod, hw_id, parent, gpu_index, model, profile,
	        allocated, fraction, project_name, project_pi)
);
-- One row per DCGM sample time (ns) and series; NULL where the field was not
-- in the sample. busy = coalesce(prof, util / 100, 0) as gpu_samples. The
-- values are NUMERIC: whole numbers (MiB, %, °C, XID codes) are stored as
-- integers, 0 to 3 bytes on disk instead of a REAL's 8.
CREATE TABLE samples (
	ts      INTEGER NOT NULL,
	series  INTEGER NOT NULL,
	prof    NUMERIC,
	util    NUMERIC,
	fb_used NUMERIC,
	fb_free NUMERIC,
	power   NUMERIC,
	temp    NUMERIC,
	xid     NUMERIC,
	PRIMARY KEY (ts, series)
) WITHOUT ROWID;
-- gpu_hours_hourly: per hour (unix s) and series-hour key.
CREATE TABLE hourly (
	hour         INTEGER NOT NULL,
	hub          TEXT NOT NULL,
	cluster      TEXT NOT NULL,
	node         TEXT NOT NULL,
	namespace    TEXT NOT NULL,
	pod          TEXT NOT NULL,
	hw_id        TEXT NOT NULL,
	allocated    INTEGER NOT NULL,
	project_name TEXT NOT NULL,
	project_pi   TEXT NOT NULL,
	model        TEXT NOT NULL,
	profile      TEXT NOT NULL,
	fraction     REAL NOT NULL,
	samples      INTEGER NOT NULL,
	first_seen   INTEGER,
	last_seen    INTEGER,
	last_any     INTEGER NOT NULL, -- time of the point the anyLast columns are from
	prof_sum     REAL NOT NULL,
	prof_n       INTEGER NOT NULL,
	util_sum     REAL NOT NULL,
	util_n       INTEGER NOT NULL,
	PRIMARY KEY (hour, hub, cluster, node, namespace, pod, hw_id, allocated)
) WITHOUT ROWID;
-- The last sample of each device (GPU or slice) per namespace that held it
-- ('' for samples no pod held): managers read the latest row of a device,
-- a project the latest of its own.
CREATE TABLE device_last (
	hub        TEXT NOT NULL,
	cluster    TEXT NOT NULL,
	node       TEXT NOT NULL,
	hw_id      TEXT NOT NULL,
	namespace  TEXT NOT NULL,
	pod        TEXT NOT NULL,
	parent     TEXT NOT NULL,
	gpu_index  TEXT NOT NULL,
	model      TEXT NOT NULL,
	profile    TEXT NOT NULL,
	fraction   REAL NOT NULL,
	allocated  INTEGER NOT NULL,
	busy       REAL NOT NULL,
	xid        REAL NOT NULL,
	ts         INTEGER NOT NULL,
	first_seen INTEGER NOT NULL,
	idle_since INTEGER,
	idle_whole INTEGER NOT NULL, -- the last write's rows were all idle under one pod
	PRIMARY KEY (hub, cluster, node, hw_id, namespace)
) WITHOUT ROWID;
CREATE TABLE projects (
	hub              TEXT NOT NULL,
	cluster          TEXT NOT NULL,
	namespace        TEXT NOT NULL,
	id               TEXT NOT NULL,
	name             TEXT NOT NULL,
	pi               TEXT NOT NULL,
	field_of_science TEXT NOT NULL,
	gpu_quota        REAL,
	gpu_allocation   REAL,
	gpu_requests     REAL,
	first_seen       INTEGER NOT NULL,
	last_seen        INTEGER NOT NULL,
	PRIMARY KEY (hub, cluster, namespace)
) WITHOUT ROWID;
-- Usage sessions by (trace id, id of the final span); end NULL while open.
CREATE TABLE sessions (
	trace_id  TEXT NOT NULL,
	span_id   TEXT NOT NULL,
	kind      TEXT NOT NULL,
	hub       TEXT NOT NULL,
	cluster   TEXT NOT NULL,
	node      TEXT NOT NULL,
	namespace TEXT NOT NULL,
	pod       TEXT NOT NULL,
	device    TEXT NOT NULL,
	parent    TEXT NOT NULL,
	profile   TEXT NOT NULL,
	fraction  REAL NOT NULL,
	start     INTEGER NOT NULL,
	end       INTEGER,
	PRIMARY KEY (trace_id, span_id)
) WITHOUT ROWID;
CREATE INDEX sessions_start ON sessions (start);
`,
	// 2: the daily table of the rollup report (daily.go).
	dailyMigration,
	// 3: the days' covered hours and the monthly tables (monthly.go).
	monthlyMigration,
	// 4: reads of a project or a device by its own rows (what the pages of
	// 1,000 GPUs need, docs/site-load.md): its series, then a range of
	// samples per series, instead of every series' samples in the window;
	// its hourly rows; sessions overlapping a window are those that end
	// after its start (an open one never ends: noEnd). Project indexes lead
	// with the namespace: a hub's or cluster's read keeps the time-ordered
	// primary key (by hub first, SQLite would walk every hour of the hub).
	`
CREATE INDEX series_hw_id ON series (hw_id);
CREATE INDEX series_parent ON series (parent);
CREATE INDEX samples_series ON samples (series, ts);
CREATE INDEX hourly_project ON hourly (namespace, hub, cluster, hour);
CREATE INDEX hourly_gpu ON hourly (substr(hw_id, 1, instr(hw_id || '/', '/') - 1), hour);
CREATE INDEX sessions_stop ON sessions (coalesce(end, ` + noEnd + `));
CREATE INDEX sessions_project_stop ON sessions (namespace, hub, cluster, coalesce(end, ` + noEnd + `));
CREATE INDEX sessions_device_stop ON sessions (device, coalesce(end, ` + noEnd + `));
CREATE INDEX sessions_parent_stop ON sessions (parent, coalesce(end, ` + noEnd + `));
`,
	// 5: samples_series covers the samples' values, so that a project's or
	// a device's samples are read in series order from the index alone; by
	// (series, ts) only, every sample cost a lookup of its row by the
	// primary key (ts, series), a random page each: three quarters of a
	// project page's CPU on the 1,000-GPU fleet (docs/benchmarks.md).
	`
DROP INDEX samples_series;
CREATE INDEX samples_series ON samples (series, ts, prof, util, fb_used, fb_free, power, temp, xid);
`,
}

// noEnd is an open session's end in the sessions_*_stop indexes; reads
// spell the same expression so that SQLite uses them.
const noEnd = "9223372036854775807"

// Store is the embedded backend: one SQLite file, one writer connection and
// a pool of read-only connections (WAL: readers never wait for the writer).
type Store struct {
	cfg Config
	w   *sql.DB // one connection: SQLite has one writer anyway
	r   *sql.DB

	mu            sync.Mutex // serializes writes and guards what follows
	closed        bool
	series        map[seriesKey]int64 // series ids committed to the file
	lastRetention time.Time
	// hourlyOnly makes rollup reports ignore the daily and monthly tables (tests compare
	// both paths).
	hourlyOnly bool
}

// Open opens (creating and migrating) the store at cfg.Path.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	dsn := func(readOnly bool) string {
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_pragma", "foreign_keys(OFF)")
		if readOnly {
			q.Add("_pragma", "query_only(1)")
		}
		q.Set("_txlock", "immediate")
		return "file:" + cfg.Path + "?" + q.Encode()
	}
	w, err := sql.Open("sqlite", dsn(false))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", cfg.Path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	s := &Store{cfg: cfg, w: w, series: map[seriesKey]int64{}}
	if err := s.migrate(ctx); err != nil {
		_ = w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn(true))
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("open %s: %w", cfg.Path, err)
	}
	r.SetMaxOpenConns(4)
	s.r = r
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", s.cfg.Path, err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate %s: %w", s.cfg.Path, err)
	}
	var v int
	err = tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return fmt.Errorf("migrate %s: %w", s.cfg.Path, err)
		}
	case err != nil:
		return fmt.Errorf("migrate %s: %w", s.cfg.Path, err)
	}
	if v > len(migrations) {
		return fmt.Errorf("%s: version %d, this build knows %d: %w", s.cfg.Path, v, len(migrations), errUnknownMigration)
	}
	for i := v; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrate %s to version %d: %w", s.cfg.Path, i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, len(migrations)); err != nil {
		return fmt.Errorf("migrate %s: %w", s.cfg.Path, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate %s: %w", s.cfg.Path, err)
	}
	return nil
}

// Close closes the file; later calls fail.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	werr := s.w.Close()
	rerr := s.r.Close()
	if werr != nil {
		return werr
	}
	return rerr
}

func (s *Store) now() time.Time { return s.cfg.Now() }

// retention deletes what is older than the retentions, at most once per
// retentionEvery; called with s.mu held after a write.
func (s *Store) retention(ctx context.Context) error {
	now := s.now()
	if d := now.Sub(s.lastRetention); !s.lastRetention.IsZero() && d >= 0 && d < retentionEvery {
		return nil
	}
	s.lastRetention = now
	raw := now.Add(-s.cfg.RawRetention).UnixNano()
	roll := now.Add(-s.cfg.RollupRetention)
	cut := roll.Truncate(time.Hour).Unix()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, st := range []struct {
		q   string
		arg int64
	}{
		{`DELETE FROM samples WHERE ts < ?`, raw},
		{`DELETE FROM hourly WHERE hour < ?`, cut},
		// a day or month that lost hours is no longer the sum of its hours
		{`DELETE FROM daily WHERE day < ?`, cut},
		{`DELETE FROM daily_state WHERE day < ?`, cut},
		{`DELETE FROM monthly WHERE month < ?`, cut},
		{`DELETE FROM monthly_projects WHERE month < ?`, cut},
		{`DELETE FROM monthly_state WHERE month < ?`, cut},
		{`DELETE FROM device_last WHERE ts < ?`, roll.UnixNano()},
		{`DELETE FROM projects WHERE last_seen < ?`, roll.UnixNano()},
		{`DELETE FROM sessions WHERE coalesce(end, ` + noEnd + `) < ?1 OR (end IS NULL AND start < ?1)`, roll.UnixNano()},
	} {
		if _, err := tx.ExecContext(ctx, st.q, st.arg); err != nil {
			return fmt.Errorf("retention: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	_, err = s.roll(ctx, cut, daysPerPass, monthsPerPass)
	return err
}

// roll is one pass over the daily and monthly tables: up to days days and
// months months recomputed; it returns how many.
func (s *Store) roll(ctx context.Context, cut int64, days, months int) (int, error) {
	closed, ok, err := s.closedHours(ctx)
	if err != nil {
		return 0, fmt.Errorf("rollups: %w", err)
	}
	if !ok {
		return 0, nil
	}
	nd, err := s.rollDays(ctx, closed, days)
	if err != nil {
		return nd, err
	}
	nm, err := s.rollMonths(ctx, closed, cut, months)
	return nd + nm, err
}
