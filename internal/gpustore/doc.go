// Package gpustore is the GPU model the AI Telemetry site reads and the
// embedded store writes: hubs, clusters, nodes, GPU devices, MIG slices,
// research projects, usage sessions and the GPU-hours reports, behind one
// Reader interface with two backends (embedded: a SQLite file; clickhouse: the
// tables the contrib clickhouse exporter writes plus deploy/clickhouse). Like
// Jaeger v2's storage API, the query side (extension/gpuqueryextension)
// depends only on this package, never on a backend.
//
// Every read takes a Scope, the set of projects and clusters the caller may
// see, and the backend applies it inside its query: rows outside it are never
// read, so a backend cannot leak them by a filtering bug after the fact.
//
// The GPU-hours definitions (sample interval, cap, busy ratio, idle
// threshold) are docs/dashboards.md's; the constants below are the one place
// both backends take them from.
package gpustore // import "github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
