//go:generate mdatagen metadata.yaml

// Package gpuqueryextension serves the AI Telemetry site's model API (hubs,
// clusters, nodes, GPUs, MIG slices, projects, sessions and the GPU-hours,
// idle and utilization reports) as JSON, CSV and NGSI-LD, reading a
// gpustore.Reader that another extension (gpu_storage) provides, the way
// Jaeger v2's jaeger_query reads jaeger_storage. Every request is scoped by
// the auth extension's authz.ReadScoper; the OpenAPI document it serves at
// /api/openapi.json is the one its tests validate every response against.
package gpuqueryextension // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension"
