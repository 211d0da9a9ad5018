// Package fileexporter appends OTLP JSON export requests to a local file, one
// request per line, in the encoding upstream's file exporter writes. It stands in
// for upstream's exporter, whose module cannot be built at the pinned versions.
package fileexporter // import "github.com/nerc-project/ai-telemetry-collector/exporter/fileexporter"
