// Package tenantheader is a client middleware extension that sets a request
// header (X-Scope-OrgID) on an exporter's outgoing gRPC and HTTP requests
// from the request's client metadata, where the project authorization
// processor puts the tenant of the resource it authorized. A request without
// exactly one valid tenant is refused with a permanent error and never sent:
// there is no default tenant, so nothing can land in a shared one.
package tenantheader // import "github.com/nerc-project/ai-telemetry-collector/extension/tenantheader"
