// Package embedded is the embedded backend of internal/gpustore: one SQLite
// file through modernc.org/sqlite (pure Go, so CGO_ENABLED=0 builds keep
// working; DuckDB's Go driver needs cgo). WAL mode, one writer connection
// and a pool of read-only ones.
//
// What it keeps, per write and in one transaction:
//   - raw rows: one per DCGM sample time, GPU or slice (hw.id) and pod, the
//     fields of deploy/clickhouse/001-gpu-samples.sql's gpu_samples pivoted
//     into columns, with the attributes in a series dictionary;
//   - the hourly rollup with the semantics of gpu_hours_hourly
//     (deploy/clickhouse/002-gpu-hours-hourly.sql);
//   - the latest sample of each device per namespace that held it (managers
//     read a device's latest row, a project its own latest), and projects
//     with their metadata;
//   - usage sessions from the Alertmanager receiver's spans.
//
// Raw rows are kept for raw_retention, rollups, sessions and entities for
// rollup_retention; writes run the deletes at most once a minute, and in
// the same pass recompute the hourly rollup's sums per day and per month
// (daily.go, monthly.go; long reports read them) where writes made them
// stale or new hours closed.
//
// Every read applies its Scope in the SQL with bound parameters; a
// project's or a GPU's reads go by indexes on its own rows (migrations 4 and 5,
// docs/benchmarks.md "Site pages at 1,000 GPUs"). Known limits: Idle over a
// window and Utilization read raw rows only (nothing past raw_retention),
// and so does a session's busy ratio; rollup reports of a project scope (or
// a namespace or device filter) and week steps read the hourly or daily
// rows, not the monthly ones (docs/benchmarks.md, "Embedded GPU store").
package embedded // import "github.com/nerc-project/ai-telemetry-collector/internal/gpustore/embedded"
