package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/duckdb/duckdb-go/v2"
)

// duckEngine is DuckDB through duckdb-go (cgo, libduckdb linked
// statically). Times are TIMESTAMPs; no indexes (DuckDB's zone maps serve
// the time windows, and an ART index would only slow the appends).
// Writes go through the Appender, DuckDB's documented bulk path, or, for
// the insert variant, a prepared INSERT in a transaction like SQLite's.
type duckEngine struct {
	label     string
	insert    bool
	connector *duckdb.Connector
	db        *sql.DB
	conn      driver.Conn
	app       *duckdb.Appender
	insertRaw *sql.Stmt
}

var _ Engine = (*duckEngine)(nil)

func (e *duckEngine) Name() string { return e.label }

func (e *duckEngine) Open(ctx context.Context, path string) error {
	c, err := duckdb.NewConnector(path, nil)
	if err != nil {
		return err
	}
	e.connector = c
	e.db = sql.OpenDB(c)
	e.conn, err = c.Connect(ctx)
	return err
}

func (e *duckEngine) exec(ctx context.Context, stmts ...string) error {
	for _, s := range stmts {
		if _, err := e.db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

func (e *duckEngine) CreateRaw(ctx context.Context) error {
	err := e.exec(ctx, `CREATE TABLE samples (
		time TIMESTAMP NOT NULL, hub VARCHAR NOT NULL, cluster VARCHAR NOT NULL, node VARCHAR NOT NULL,
		hw_id VARCHAR NOT NULL, namespace VARCHAR NOT NULL, pod VARCHAR NOT NULL, allocated BOOLEAN NOT NULL,
		fraction DOUBLE NOT NULL, busy DOUBLE, fb_used BIGINT, power DOUBLE, temp INTEGER, xid INTEGER,
		model VARCHAR NOT NULL, mig_profile VARCHAR NOT NULL)`)
	if err != nil {
		return err
	}
	if e.insert {
		e.insertRaw, err = e.db.PrepareContext(ctx, `INSERT INTO samples VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
		return err
	}
	e.app, err = duckdb.NewAppenderFromConn(e.conn, "", "samples")
	return err
}

func (e *duckEngine) IngestBatch(ctx context.Context, batch []Sample) error {
	if e.insert {
		tx, err := e.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		st := tx.StmtContext(ctx, e.insertRaw)
		for i := range batch {
			s := &batch[i]
			if _, err := st.ExecContext(ctx, time.Unix(0, s.Time).UTC(), s.Hub, s.Cluster, s.Node, s.HWID, s.Namespace,
				s.Pod, s.Allocated, s.Fraction, s.Busy, s.FBUsed, s.Power, int32(s.Temp), int32(s.XID), s.Model, s.Profile); err != nil {
				_ = tx.Rollback()
				return err
			}
		}
		return tx.Commit()
	}
	for i := range batch {
		s := &batch[i]
		if err := e.app.AppendRow(time.Unix(0, s.Time).UTC(), s.Hub, s.Cluster, s.Node, s.HWID, s.Namespace,
			s.Pod, s.Allocated, s.Fraction, s.Busy, s.FBUsed, s.Power, int32(s.Temp), int32(s.XID), s.Model, s.Profile); err != nil {
			return err
		}
	}
	// A flush appends the rows in one transaction of their own.
	return e.app.FlushWithCancel(ctx)
}

func (e *duckEngine) LoadRollup(ctx context.Context, t *topology) error {
	err := e.exec(ctx, `CREATE TABLE rollup (
		hour TIMESTAMP NOT NULL, hub VARCHAR NOT NULL, cluster VARCHAR NOT NULL, node VARCHAR NOT NULL,
		hw_id VARCHAR NOT NULL, namespace VARCHAR NOT NULL, pod VARCHAR NOT NULL, samples BIGINT NOT NULL,
		first_seen TIMESTAMP NOT NULL, last_seen TIMESTAMP NOT NULL, fraction DOUBLE NOT NULL,
		busy_sum DOUBLE NOT NULL, project_pi VARCHAR NOT NULL, model VARCHAR NOT NULL, profile VARCHAR NOT NULL)`)
	if err != nil {
		return err
	}
	app, err := duckdb.NewAppenderFromConn(e.conn, "", "rollup")
	if err != nil {
		return err
	}
	// Hour by hour, as the live store would append them.
	err = t.eachRollupTimeOrder(func(r *RollupRow) error {
		return app.AppendRow(time.Unix(r.Hour, 0).UTC(), r.Hub, r.Cluster, r.Node, r.HWID, r.Namespace, r.Pod, r.Samples,
			time.Unix(0, r.FirstSeen).UTC(), time.Unix(0, r.LastSeen).UTC(), r.Fraction, r.BusySum, r.PI, r.Model, r.Profile)
	})
	if cerr := app.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return e.exec(ctx, "CHECKPOINT")
}

const (
	duckReportSelect = `SELECT strftime(date_trunc('month', hour), '%Y-%m') AS month, hub, cluster, namespace,
	       sum(samples * dt * fraction) / 3600, sum(busy_sum * dt * fraction) / 3600
	FROM (SELECT hour, hub, cluster, namespace, samples, fraction, busy_sum,
	             CASE WHEN samples > 1 THEN least((epoch_us(last_seen) - epoch_us(first_seen)) / 1e6 / (samples - 1), 900) ELSE 30 END AS dt
	      FROM rollup WHERE hour >= ? AND hour < ?`
	duckReportAll     = duckReportSelect + `) GROUP BY ALL ORDER BY month, hub, cluster, namespace`
	duckReportProject = duckReportSelect + ` AND hub = ? AND cluster = ? AND namespace = ?)
	GROUP BY ALL ORDER BY month, hub, cluster, namespace`
)

func (e *duckEngine) Report(ctx context.Context, q ReportQuery) ([]ReportRow, error) {
	var (
		rows *sql.Rows
		err  error
	)
	from, to := q.From.UTC(), q.To.UTC()
	if q.Namespace == "" {
		rows, err = e.db.QueryContext(ctx, duckReportAll, from, to)
	} else {
		rows, err = e.db.QueryContext(ctx, duckReportProject, from, to, q.Hub, q.Cluster, q.Namespace)
	}
	if err != nil {
		return nil, err
	}
	return scanReport(rows)
}

func (e *duckEngine) Close() error {
	var errs []error
	if e.app != nil {
		errs = append(errs, e.app.Close())
	}
	if e.insertRaw != nil {
		errs = append(errs, e.insertRaw.Close())
	}
	if e.db != nil {
		_, err := e.db.Exec("CHECKPOINT")
		errs = append(errs, err)
	}
	if e.conn != nil {
		errs = append(errs, e.conn.Close())
	}
	if e.db != nil {
		errs = append(errs, e.db.Close())
	}
	if e.connector != nil {
		errs = append(errs, e.connector.Close())
	}
	return errors.Join(errs...)
}

func (e *duckEngine) sqlDB() *sql.DB { return e.db }
