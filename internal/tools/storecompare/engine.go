package main

import (
	"context"
	"errors"
	"time"
)

// errNoSuchEngine is returned for an engine name the program does not know.
var errNoSuchEngine = errors.New("no such engine")

// Engine is one candidate embedded database with the planned store's two
// tables. Each method uses the engine's fastest documented path.
type Engine interface {
	// Name is how results name the engine and its settings.
	Name() string
	// Open opens (creating) the database file at path.
	Open(ctx context.Context, path string) error
	// CreateRaw creates the raw samples table.
	CreateRaw(ctx context.Context) error
	// IngestBatch writes one scrape's samples in one transaction.
	IngestBatch(ctx context.Context, batch []Sample) error
	// LoadRollup creates the rollup table and bulk-loads it from t, once,
	// with whatever makes a bulk load fastest.
	LoadRollup(ctx context.Context, t *topology) error
	// Report is the monthly GPU-hours report by project of q.
	Report(ctx context.Context, q ReportQuery) ([]ReportRow, error)
	// Close checkpoints (so the file holds everything) and closes.
	Close() error
}

// ReportQuery is the report's window [From, To) and, when Namespace is not
// empty, the one project (hub, cluster, namespace) it is limited to.
type ReportQuery struct {
	From, To                time.Time
	Hub, Cluster, Namespace string
}

// newEngine makes the engine of a name: sqlite-modernc, sqlite-ncruces,
// duckdb (Appender) and the variants the results compare them with.
func newEngine(name string) (Engine, error) {
	switch name {
	case "sqlite-modernc":
		return &sqliteEngine{driver: "sqlite", label: name, sync: "FULL"}, nil
	case "sqlite-modernc-sync-normal":
		return &sqliteEngine{driver: "sqlite", label: name, sync: "NORMAL"}, nil
	case "sqlite-modernc-daily":
		return &sqliteEngine{driver: "sqlite", label: name, sync: "FULL", daily: true}, nil
	case "sqlite-ncruces":
		return &sqliteEngine{driver: "sqlite3", label: name, sync: "FULL"}, nil
	case "duckdb":
		return &duckEngine{label: name}, nil
	case "duckdb-insert":
		return &duckEngine{label: name, insert: true}, nil
	}
	return nil, errNoSuchEngine
}
