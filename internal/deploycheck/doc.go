// Package deploycheck holds the tests of the deployment: deploy/ (kustomize
// base and overlays) and the Containerfile.
//
// Without build tags (plain `go test ./...`) it checks what needs no tools:
// the generated patches deploy/overlays/{agent,gateway,site}/config.generated.yaml
// hold exactly configs/agent.yaml, gateway.yaml and site.yaml (`go test
// ./internal/deploycheck/ -update` rewrites them), the Containerfile
// copies the binary the builder writes and runs as non-root, every shipped
// collector config (the image's default included) authorizes per project
// (the site's gpu_query authenticates and scopes every read),
// and the checks of transport, NetworkPolicies and RBAC refuse what they must
// (network_unit_test.go).
//
// With -tags deploy (`make deploy-test`, which passes KUSTOMIZE and
// OTELCOL_BINARY) it renders every kustomization under deploy/ and checks the
// objects: each custom resource against its operator's real CRD (read from
// the modules internal/tools/crds pins; crdschema_test.go), built-in kinds by
// strict decoding; each OpenTelemetryCollector's config is its configs/ file
// plus the overlay's config-*.yaml operations and validates with the built
// binary; per-project authorization sits where it can work; ClickHouse is
// dialled over TLS; NetworkPolicies restrict both directions and let out what
// the config dials; each collector ServiceAccount reads exactly what its
// config needs; names, ports,
// environment variables, ConfigMaps, Secrets and volumes agree across
// objects; the NERC overlays grant what the gateway asks, and the site's
// Keycloak pieces agree with its config; nothing looks like a real secret.
package deploycheck
