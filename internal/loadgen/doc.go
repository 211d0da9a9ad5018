// Package loadgen is the open-loop load generator behind `make load`: it posts
// Alertmanager webhook notifications at a constant arrival rate, records each
// request's latency from the time it was scheduled (not from when it was
// actually sent, so a stalled server cannot hide its stall: no coordinated
// omission), and afterwards counts, in the collector's OTLP JSON output, that
// every alert the server accepted became exactly one span.
//
// Every alert of a run is a distinct GPU usage session (its own fingerprint),
// so an alert's span can be told apart from every other's. The wiring to the
// real collector, Keycloak and TLS is in test/load.
package loadgen // import "github.com/nerc-project/ai-telemetry-collector/internal/loadgen"
