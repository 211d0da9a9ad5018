// Package gpustorageexporter writes the gpumodel processor's enriched DCGM
// metrics and the Alertmanager receiver's session spans into the GPU store
// of a gpu_storage extension (the embedded backend), like Jaeger v2's
// storage exporter. Its sending queue takes bursts, so a slow or full disk
// never blocks the pipeline: a failed write is counted, logged and retried
// by the exporter helper, then dropped.
//
//go:generate mdatagen metadata.yaml
package gpustorageexporter // import "github.com/nerc-project/ai-telemetry-collector/exporter/gpustorageexporter"
