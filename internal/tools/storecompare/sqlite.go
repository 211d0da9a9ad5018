package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	_ "github.com/ncruces/go-sqlite3/driver" // database/sql driver "sqlite3" (wasm2go, pure Go)
	_ "modernc.org/sqlite"                   // database/sql driver "sqlite" (C translated to Go)
)

// sqliteEngine is SQLite through a pure-Go database/sql driver, the same
// SQL for both drivers. Times are integers (unix seconds for hour, unix
// nanoseconds otherwise); the rollup is a WITHOUT ROWID table clustered by
// its merge key, project first, as ClickHouse's ORDER BY sorts it.
type sqliteEngine struct {
	driver, label, sync string
	// daily reports from a second rollup, GPU-hours by project and UTC day
	// (built from the hourly one by buildDaily), instead of the hourly one.
	daily     bool
	db        *sql.DB
	insertRaw *sql.Stmt
}

var _ Engine = (*sqliteEngine)(nil)

func (e *sqliteEngine) Name() string { return e.label }

func (e *sqliteEngine) Open(ctx context.Context, path string) error {
	db, err := sql.Open(e.driver, "file:"+path)
	if err != nil {
		return err
	}
	// One connection: pragmas are per connection, and SQLite has one
	// writer anyway.
	db.SetMaxOpenConns(1)
	e.db = db
	return e.exec(ctx,
		"PRAGMA journal_mode=WAL",
		"PRAGMA synchronous="+e.sync,
		"PRAGMA cache_size=-65536", // 64 MiB
		"PRAGMA temp_store=MEMORY",
	)
}

func (e *sqliteEngine) exec(ctx context.Context, stmts ...string) error {
	for _, s := range stmts {
		if _, err := e.db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

func (e *sqliteEngine) CreateRaw(ctx context.Context) error {
	err := e.exec(ctx, `CREATE TABLE samples (
		time INTEGER NOT NULL, hub TEXT NOT NULL, cluster TEXT NOT NULL, node TEXT NOT NULL,
		hw_id TEXT NOT NULL, namespace TEXT NOT NULL, pod TEXT NOT NULL, allocated INTEGER NOT NULL,
		fraction REAL NOT NULL, busy REAL, fb_used INTEGER, power REAL, temp INTEGER, xid INTEGER,
		model TEXT NOT NULL, mig_profile TEXT NOT NULL)`,
		// Retention deletes and window reads go by time.
		`CREATE INDEX samples_time ON samples (time)`)
	if err != nil {
		return err
	}
	e.insertRaw, err = e.db.PrepareContext(ctx, `INSERT INTO samples VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
	return err
}

func (e *sqliteEngine) IngestBatch(ctx context.Context, batch []Sample) error {
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	st := tx.StmtContext(ctx, e.insertRaw)
	for i := range batch {
		s := &batch[i]
		alloc := int64(0)
		if s.Allocated {
			alloc = 1
		}
		if _, err := st.ExecContext(ctx, s.Time, s.Hub, s.Cluster, s.Node, s.HWID, s.Namespace, s.Pod, alloc,
			s.Fraction, s.Busy, s.FBUsed, s.Power, s.Temp, s.XID, s.Model, s.Profile); err != nil {
			_ = tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

func (e *sqliteEngine) LoadRollup(ctx context.Context, t *topology) error {
	err := e.exec(ctx, `CREATE TABLE rollup (
		hour INTEGER NOT NULL, hub TEXT NOT NULL, cluster TEXT NOT NULL, node TEXT NOT NULL,
		hw_id TEXT NOT NULL, namespace TEXT NOT NULL, pod TEXT NOT NULL, samples INTEGER NOT NULL,
		first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, fraction REAL NOT NULL,
		busy_sum REAL NOT NULL, project_pi TEXT NOT NULL, model TEXT NOT NULL, profile TEXT NOT NULL,
		PRIMARY KEY (hub, cluster, namespace, hour, node, hw_id, pod)) WITHOUT ROWID`,
		// A one-off generation, not what is measured: no journal.
		"PRAGMA journal_mode=OFF", "PRAGMA synchronous=OFF")
	if err != nil {
		return err
	}
	const perTx = 200_000
	var (
		tx *sql.Tx
		st *sql.Stmt
		n  int
	)
	ins, err := e.db.PrepareContext(ctx, `INSERT INTO rollup VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	err = t.eachRollupKeyOrder(func(r *RollupRow) error {
		if tx == nil {
			var err error
			if tx, err = e.db.BeginTx(ctx, nil); err != nil {
				return err
			}
			st = tx.StmtContext(ctx, ins)
		}
		if _, err := st.ExecContext(ctx, r.Hour, r.Hub, r.Cluster, r.Node, r.HWID, r.Namespace, r.Pod, r.Samples,
			r.FirstSeen, r.LastSeen, r.Fraction, r.BusySum, r.PI, r.Model, r.Profile); err != nil {
			return err
		}
		if n++; n%perTx == 0 {
			err := tx.Commit()
			tx = nil
			return err
		}
		return nil
	})
	if tx != nil {
		if err == nil {
			err = tx.Commit()
		} else {
			_ = tx.Rollback()
		}
	}
	if err != nil {
		return err
	}
	return e.exec(ctx, "ANALYZE", "PRAGMA journal_mode=WAL", "PRAGMA synchronous="+e.sync)
}

// The report: the sample interval of a series-hour is (last - first) /
// (samples - 1), capped at 900 s, 30 s for a lone sample.
const (
	sqliteReportSelect = `SELECT strftime('%Y-%m', hour, 'unixepoch') AS month, hub, cluster, namespace,
	       SUM(samples * dt * fraction) / 3600, SUM(busy_sum * dt * fraction) / 3600
	FROM (SELECT hour, hub, cluster, namespace, samples, fraction, busy_sum,
	             CASE WHEN samples > 1 THEN MIN((last_seen - first_seen) / 1e9 / (samples - 1), 900) ELSE 30 END AS dt
	      FROM rollup WHERE hour >= ? AND hour < ?`
	sqliteReportAll     = sqliteReportSelect + `) GROUP BY month, hub, cluster, namespace ORDER BY month, hub, cluster, namespace`
	sqliteReportProject = sqliteReportSelect + ` AND hub = ? AND cluster = ? AND namespace = ?)
	GROUP BY month, hub, cluster, namespace ORDER BY month, hub, cluster, namespace`
)

func (e *sqliteEngine) Report(ctx context.Context, q ReportQuery) ([]ReportRow, error) {
	var (
		rows *sql.Rows
		err  error
	)
	switch {
	case e.daily && (q.From.Unix()%86400 != 0 || q.To.Unix()%86400 != 0):
		return nil, errUnaligned
	case e.daily && q.Namespace == "":
		rows, err = e.db.QueryContext(ctx, sqliteDailyAll, q.From.Unix(), q.To.Unix())
	case e.daily:
		rows, err = e.db.QueryContext(ctx, sqliteDailyProject, q.From.Unix(), q.To.Unix(), q.Hub, q.Cluster, q.Namespace)
	case q.Namespace == "":
		rows, err = e.db.QueryContext(ctx, sqliteReportAll, q.From.Unix(), q.To.Unix())
	default:
		rows, err = e.db.QueryContext(ctx, sqliteReportProject, q.From.Unix(), q.To.Unix(), q.Hub, q.Cluster, q.Namespace)
	}
	if err != nil {
		return nil, err
	}
	return scanReport(rows)
}

// errUnaligned: the daily rollup answers windows of whole UTC days only
// (a store would add the hourly rollup's partial days at the edges).
var errUnaligned = errors.New("window not aligned to UTC days")

const (
	// Grouped in the key's order (hub, cluster, namespace, month), so
	// SQLite streams the groups and sorts only the result.
	sqliteDailyReport = `SELECT month, hub, cluster, namespace, SUM(gpu_hours), SUM(used_hours)
	FROM rollup_daily WHERE day >= ? AND day < ?`
	sqliteDailyAll     = sqliteDailyReport + ` GROUP BY hub, cluster, namespace, month ORDER BY month, hub, cluster, namespace`
	sqliteDailyProject = sqliteDailyReport + ` AND hub = ? AND cluster = ? AND namespace = ?
	GROUP BY hub, cluster, namespace, month ORDER BY month, hub, cluster, namespace`
)

// buildDaily fills this (new) database's daily rollup from the hourly
// rollup in the SQLite file at hourly.
func (e *sqliteEngine) buildDaily(ctx context.Context, hourly string) error {
	if _, err := e.db.ExecContext(ctx, "ATTACH DATABASE ? AS src", "file:"+hourly); err != nil {
		return err
	}
	// The day's UTC month is stored with it, in the key, so that the report
	// calls no strftime per row and groups in key order.
	return e.exec(ctx, `CREATE TABLE rollup_daily (
		hub TEXT NOT NULL, cluster TEXT NOT NULL, namespace TEXT NOT NULL, month TEXT NOT NULL,
		day INTEGER NOT NULL, gpu_hours REAL NOT NULL, used_hours REAL NOT NULL,
		PRIMARY KEY (hub, cluster, namespace, month, day)) WITHOUT ROWID`,
		`INSERT INTO rollup_daily
		SELECT hub, cluster, namespace, strftime('%Y-%m', day, 'unixepoch'), day, a, u
		FROM (SELECT hub, cluster, namespace, hour - hour % 86400 AS day,
		             SUM(samples * dt * fraction) / 3600 AS a, SUM(busy_sum * dt * fraction) / 3600 AS u
		      FROM (SELECT hour, hub, cluster, namespace, samples, fraction, busy_sum,
		                   CASE WHEN samples > 1 THEN MIN((last_seen - first_seen) / 1e9 / (samples - 1), 900) ELSE 30 END AS dt
		            FROM src.rollup)
		      GROUP BY hub, cluster, namespace, day)`,
		"DETACH DATABASE src", "ANALYZE")
}

func scanReport(rows *sql.Rows) ([]ReportRow, error) {
	defer rows.Close()
	var out []ReportRow
	for rows.Next() {
		var r ReportRow
		if err := rows.Scan(&r.Month, &r.Hub, &r.Cluster, &r.Namespace, &r.GPUHours, &r.UsedHours); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (e *sqliteEngine) Close() error {
	if e.db == nil {
		return nil
	}
	if e.insertRaw != nil {
		_ = e.insertRaw.Close()
	}
	_, err := e.db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	if cerr := e.db.Close(); err == nil {
		err = cerr
	}
	return err
}

func (e *sqliteEngine) sqlDB() *sql.DB { return e.db }
