// Package gpumodelprocessor turns NVIDIA DCGM exporter metrics into the model
// researchers and managers think in: hub, AI cluster, AI node, GPU device, GPU
// slice and research project, with the project's metadata and GPU allocation.
// Label dialects are read by the shared internal/topology package.
package gpumodelprocessor // import "github.com/nerc-project/ai-telemetry-collector/processor/gpumodelprocessor"
