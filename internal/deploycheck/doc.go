// Package deploycheck holds the tests of the deployment: deploy/ (kustomize
// base and overlays) and the Containerfile.
//
// Without build tags (plain `go test ./...`) it checks what needs no tools:
// the generated patches deploy/overlays/{agent,gateway}/config.generated.yaml
// hold exactly configs/agent.yaml and configs/gateway.yaml (`go test
// ./internal/deploycheck/ -update` rewrites them), and the Containerfile
// copies the binary the builder writes and runs as non-root.
//
// With -tags deploy (`make deploy-test`, which passes KUSTOMIZE and
// OTELCOL_BINARY) it renders every overlay with kustomize and checks the
// objects: each OpenTelemetryCollector decodes strictly into the v1beta1
// fields used, its config validates with the built binary, and names, ports,
// environment variables, ConfigMaps, Secrets and volumes agree across
// objects; nothing looks like a real secret.
package deploycheck
