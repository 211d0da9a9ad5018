// Package keycloakauth is an authenticator extension for Keycloak realms.
//
// As a server authenticator it validates Keycloak access tokens locally (JWKS
// from the realm's discovery document, cached and refreshed in the background,
// kept when Keycloak is down) and, in authorization mode "resource", decides
// per Keycloak resource (UMA ticket grant, decisions cached) through the
// internal/authz interface. As a client authenticator it obtains tokens with
// the client-credentials grant and presents them over HTTP and gRPC.
package keycloakauth // import "github.com/nerc-project/ai-telemetry-collector/extension/keycloakauth"
