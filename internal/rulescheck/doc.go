// Package rulescheck holds the test that keeps the GPU usage rules in one
// piece: configs/prometheus/gpu-usage-rules.yaml is the only hand-edited copy;
// the PrometheusRule's spec.groups (deploy/prometheus/gpu-usage-prometheusrule.yaml)
// and the e2e variant with short `for:` (configs/prometheus/gpu-usage-rules.e2e.yaml)
// are derived from it. `go test ./internal/rulescheck/` fails when they drift;
// `go test ./internal/rulescheck/ -update` rewrites them.
package rulescheck // import "github.com/nerc-project/ai-telemetry-collector/internal/rulescheck"
