// Package projectauthzprocessor authorizes OTLP data per research project: each
// resource (ResourceSpans, ResourceMetrics, ResourceLogs) is kept only when the
// caller authenticated on the receiver may write data guarded by the Keycloak
// resource of its project (else cluster, else hub), as decided by an extension
// implementing internal/authz.
//
// It must run before any batching processor: the decision is made for the
// caller found in the incoming context, which batching drops.
package projectauthzprocessor // import "github.com/nerc-project/ai-telemetry-collector/processor/projectauthzprocessor"
