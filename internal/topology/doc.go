// Package topology is the one vocabulary every component of this project shares:
// the attribute names of the GPU topology (hub, cluster, node, GPU device, MIG
// slice, research project), the parsing of DCGM exporter label dialects into
// that topology, and the Keycloak resource names that guard it.
//
// Components never parse DCGM labels or spell attribute names themselves; they
// call this package, so a span from the Alertmanager receiver and a data point
// from the GPU model processor describe the same GPU with the same attributes.
package topology // import "github.com/nerc-project/ai-telemetry-collector/internal/topology"
