package gpuqueryextension // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension"

import (
	"errors"
	"net/url"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"

	"github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/login"
)

// Config defines the configuration of the gpu_query extension.
type Config struct {
	// HTTP is the server (endpoint localhost:8080 by default), under its
	// own key as in Jaeger v2's jaeger_query: its auth block
	// (authenticator: keycloakauth) authenticates callers before a handler
	// runs, and would collide with Auth below if squashed.
	HTTP confighttp.ServerConfig `mapstructure:"http"`

	// Storage names the extension providing the store (gpustore.Provider).
	Storage component.ID `mapstructure:"storage"`

	// Auth names the extension deciding each caller's read scope
	// (authz.ReadScoper, keycloakauth). Required unless InsecureLocalMode.
	Auth *component.ID `mapstructure:"auth"`

	// InsecureLocalMode serves everything to everyone, without
	// authentication: for a laptop, never a site. It must be set
	// explicitly, and only without Auth.
	InsecureLocalMode bool `mapstructure:"insecure_local_mode"`

	// TraceURL links a session's page to its trace in a trace viewer
	// (Grafana's Tempo explore, Jaeger UI): "{traceId}" is replaced by the
	// session's trace id. Empty: no link.
	TraceURL string `mapstructure:"trace_url"`

	// Login serves the pages on a site: browsers log in through Keycloak
	// (OpenID Connect), and the API accepts their session as well as bearer
	// tokens. It authenticates in the handler, with the auth extension as
	// the authenticator, so it replaces http::auth (which would refuse a
	// browser's request before the login could answer it).
	Login *login.Config `mapstructure:"login"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ component.Config = (*Config)(nil)

var (
	errNoStorage     = errors.New("storage: must name the extension providing the GPU store")
	errNoAuth        = errors.New("auth: must name the extension deciding read scopes (or set insecure_local_mode: true for a local, unauthenticated API)")
	errAuthAndLocal  = errors.New("insecure_local_mode: cannot be combined with auth")
	errNoEndpoint    = errors.New("http::endpoint: must be set")
	errLocalWithAuth = errors.New("insecure_local_mode: cannot be combined with http::auth (an authenticator)")
	errTraceURL      = errors.New(`trace_url: must be an http(s) URL holding "{traceId}"`)
	errLoginLocal    = errors.New("login: cannot be combined with insecure_local_mode (local mode has no login)")
	errLoginHTTPAuth = errors.New("login: replaces http::auth (the login authenticates API calls with the auth extension): remove http::auth")
)

// Validate checks the configuration: secure by default, so a configuration
// naming no auth extension is refused unless local mode is asked for.
func (c *Config) Validate() error {
	var errs []error
	if c.Storage == (component.ID{}) {
		errs = append(errs, errNoStorage)
	}
	switch {
	case c.Auth == nil && !c.InsecureLocalMode:
		// secure by default: serving without authorization must be asked for
		errs = append(errs, errNoAuth)
	case c.Auth != nil && c.InsecureLocalMode:
		errs = append(errs, errAuthAndLocal)
	case c.InsecureLocalMode && c.HTTP.Auth.HasValue():
		errs = append(errs, errLocalWithAuth)
	}
	if c.HTTP.NetAddr.Endpoint == "" {
		errs = append(errs, errNoEndpoint)
	}
	if c.Login != nil {
		switch {
		case c.InsecureLocalMode:
			errs = append(errs, errLoginLocal)
		case c.HTTP.Auth.HasValue():
			errs = append(errs, errLoginHTTPAuth)
		}
		errs = append(errs, c.Login.Validate())
	}
	if c.TraceURL != "" {
		u, err := url.Parse(strings.ReplaceAll(c.TraceURL, "{traceId}", "0"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || !strings.Contains(c.TraceURL, "{traceId}") {
			errs = append(errs, errTraceURL)
		}
	}
	return errors.Join(errs...)
}
