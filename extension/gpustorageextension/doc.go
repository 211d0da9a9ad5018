// Package gpustorageextension holds one GPU store (internal/gpustore) for
// the components that read or write it, as Jaeger v2's jaeger_storage holds
// trace stores for jaeger_query and the storage exporter: the
// gpu_storage_exporter writes the embedded store from the pipelines, the
// gpu_query extension serves the site from it (or from ClickHouse). Opening
// the store once here means one SQLite writer per file, however many
// components use it.
//
//go:generate mdatagen metadata.yaml
package gpustorageextension // import "github.com/nerc-project/ai-telemetry-collector/extension/gpustorageextension"
