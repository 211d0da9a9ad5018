// Data only: the CustomResourceDefinitions the deploy tests validate the
// rendered objects against (internal/deploycheck, `make deploy-test`), read
// from these modules in the Go module cache. Nothing here is compiled or
// imported, so `go mod tidy` would drop the requirements: do not run it here.
// To move a pin: `go -C internal/tools/crds get <module>@<version>`.
module github.com/nerc-project/ai-telemetry-collector/internal/tools/crds

go 1.26.0

require (
	// OpenTelemetryCollector, TargetAllocator (opentelemetry.io): config/crd/bases.
	github.com/open-telemetry/opentelemetry-operator v0.148.0
	// PrometheusRule, AlertmanagerConfig (monitoring.coreos.com): example/prometheus-operator-crd-full.
	// v0.89.0 is the release opentelemetry-operator v0.148.0 builds with.
	github.com/prometheus-operator/prometheus-operator v0.89.0
	// GrafanaDashboard (grafana.integreatly.org): config/crd/bases.
	github.com/grafana/grafana-operator/v5 v5.18.0
	// Route (route.openshift.io): route/v1/zz_generated.crd-manifests. The commit
	// opentelemetry-operator v0.148.0 builds with.
	github.com/openshift/api v0.0.0-20260130140113-71e91db96ffc
)
