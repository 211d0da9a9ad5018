package keycloakauth // import "github.com/nerc-project/ai-telemetry-collector/extension/keycloakauth"

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"
)

// Authorization modes.
const (
	// ModeNone: a valid token is enough.
	ModeNone = "none"
	// ModeResource: callers also ask Authorize(ctx, resource) (internal/authz),
	// answered by Keycloak's authorization services (UMA ticket grant).
	ModeResource = "resource"
)

var (
	errNoServerURL      = errors.New("server_url must be an http or https URL")
	errNoRealm          = errors.New("realm must be set")
	errNoSide           = errors.New("set server.audiences (to validate tokens) or client (to present tokens), or both")
	errBadAlgorithm     = errors.New("signature algorithm not allowed (asymmetric algorithms only)")
	errNoAlgorithms     = errors.New("at least one signature algorithm must be allowed")
	errNonPositive      = errors.New("must be positive")
	errNoClientID       = errors.New("client_id must be set")
	errNoClientSecret   = errors.New("client_secret or client_secret_file must be set")
	errTwoSecrets       = errors.New("set client_secret or client_secret_file, not both")
	errBadMode          = errors.New(`mode must be "none" or "resource"`)
	errNoResourceServer = errors.New("resource_server must be set in mode resource")
	errNoScope          = errors.New("scope must be set in mode resource")
	errNoReadScope      = errors.New("read_scope and manager_scope must be set in mode resource")
	errModeNeedsServer  = errors.New("mode resource needs server.audiences")
	errTooLong          = errors.New("above the maximum")
	errInsecureServer   = errors.New("server_url is plain http to a host that is not loopback: tokens and client secrets would travel in clear text (use https, or set insecure_allow_http)")
)

// Upper bounds: a larger clock_skew accepts long-expired tokens, a larger
// token_cache_ttl keeps honouring a token long after it was last checked.
const (
	maxClockSkew     = 5 * time.Minute
	maxTokenCacheTTL = time.Hour
)

// Config is the keycloakauth extension's configuration.
type Config struct {
	// ServerURL is Keycloak's base URL, e.g. https://keycloak.example.org.
	ServerURL string `mapstructure:"server_url"`
	// Realm is the Keycloak realm (NERC).
	Realm string `mapstructure:"realm"`
	// Issuer is the iss tokens must carry. Default: {server_url}/realms/{realm};
	// set it when the collector reaches Keycloak under another name than the
	// one Keycloak puts in tokens (its frontend URL).
	Issuer string `mapstructure:"issuer"`
	// TLS for the connections to Keycloak.
	TLS configtls.ClientConfig `mapstructure:"tls"`
	// Timeout of each request to Keycloak.
	Timeout time.Duration `mapstructure:"timeout"`
	// InsecureAllowHTTP allows a plain-http server_url (and jwks_uri, and
	// redirects) to a host that is not loopback. Off by default: access
	// tokens and the client secret travel to Keycloak.
	InsecureAllowHTTP bool `mapstructure:"insecure_allow_http"`

	// Server validates incoming tokens (receivers' auth.authenticator).
	Server ServerConfig `mapstructure:"server"`
	// Client obtains tokens and presents them (exporters' auth.authenticator).
	Client configoptional.Optional[ClientConfig] `mapstructure:"client"`
	// Authorization decides per Keycloak resource (server side).
	Authorization AuthorizationConfig `mapstructure:"authorization"`
}

// ServerConfig is the validation of incoming access tokens.
type ServerConfig struct {
	// Audiences: a token must name at least one in aud. Required to validate.
	Audiences []string `mapstructure:"audiences"`
	// AuthorizedParties: when set, the token's azp (the client it was issued
	// to) must be one of them.
	AuthorizedParties []string `mapstructure:"authorized_parties"`
	// SignatureAlgorithms allowed in the token header (default RS256).
	SignatureAlgorithms []string `mapstructure:"signature_algorithms"`
	// ClockSkew tolerated on exp, nbf and iat.
	ClockSkew time.Duration `mapstructure:"clock_skew"`
	// JWKSRefreshInterval: keys are refetched in the background this often.
	JWKSRefreshInterval time.Duration `mapstructure:"jwks_refresh_interval"`
	// JWKSMinRefetchInterval: a token with an unknown kid refetches the keys
	// at most this often, so garbage tokens cannot flood Keycloak.
	JWKSMinRefetchInterval time.Duration `mapstructure:"jwks_min_refetch_interval"`
	// TokenCacheSize bounds the validated tokens remembered.
	TokenCacheSize int `mapstructure:"token_cache_size"`
	// TokenCacheTTL: a validated token is checked again (signature, key,
	// claims) at least this often, even when its exp is later.
	TokenCacheTTL time.Duration `mapstructure:"token_cache_ttl"`
	// Header carrying "Bearer <token>" (default authorization).
	Header string `mapstructure:"header"`
	// RequiredRoles: a token must hold every one of them, realm roles by
	// name and client roles as "{client}:{role}".
	RequiredRoles []string `mapstructure:"required_roles"`
	// MaxTokenSize bounds the bearer token read, in bytes; larger ones are
	// refused before any parsing.
	MaxTokenSize int `mapstructure:"max_token_size"`
}

// ClientConfig is the client-credentials grant the client side uses.
type ClientConfig struct {
	ClientID     string              `mapstructure:"client_id"`
	ClientSecret configopaque.String `mapstructure:"client_secret"`
	// ClientSecretFile holds the secret instead (a mounted Secret); it is
	// read when the collector starts.
	ClientSecretFile string `mapstructure:"client_secret_file"`
	// Scopes requested (optional).
	Scopes []string `mapstructure:"scopes"`
	// ExpiryMargin: a token is replaced this long before it expires.
	ExpiryMargin time.Duration `mapstructure:"expiry_margin"`
	// MaxBackoff caps the wait between failed token requests.
	MaxBackoff time.Duration `mapstructure:"max_backoff"`
	// InsecureAllowHTTP lets the token go over plain http to any host and
	// over gRPC without TLS. Off by default: the token is only added to https
	// requests, http requests to a loopback address, and gRPC calls over TLS.
	InsecureAllowHTTP bool `mapstructure:"insecure_allow_http"`
}

// AuthorizationConfig is the per-resource decision (mode resource).
type AuthorizationConfig struct {
	// Mode is none (default) or resource.
	Mode string `mapstructure:"mode"`
	// ResourceServer is the client id of the Keycloak client holding the
	// authorization settings (the UMA audience).
	ResourceServer string `mapstructure:"resource_server"`
	// Scope is the authorization scope asked for on the resource (GET for NERC).
	Scope string `mapstructure:"scope"`
	// DecisionCacheTTL: how long an allow or deny is reused per (token, resource).
	DecisionCacheTTL time.Duration `mapstructure:"decision_cache_ttl"`
	// DecisionCacheSize bounds the remembered decisions, and separately the
	// resources Keycloak said do not exist (remembered for all tokens).
	DecisionCacheSize int `mapstructure:"decision_cache_size"`
	// MaxDecisionsPerMinute is each caller's (token subject's) budget of
	// questions to Keycloak; cached answers are free. Beyond it Authorize
	// fails with a retryable error, so one writer cannot flood Keycloak.
	MaxDecisionsPerMinute int `mapstructure:"max_decisions_per_minute"`
	// DecisionBurst: questions a caller may ask at once before the
	// per-minute rate applies.
	DecisionBurst int `mapstructure:"decision_burst"`
	// ReadScope is the scope on a project's resource that lets its holder
	// read the project (ReadScope, the site's read side).
	ReadScope string `mapstructure:"read_scope"`
	// ManagerScope is the scope on a cluster's or a hub's resource that
	// lets its holder read all of it.
	ManagerScope string `mapstructure:"manager_scope"`
}

var _ component.Config = (*Config)(nil)

// allowedAlgorithms are the asymmetric algorithms Keycloak signs with; HMAC and
// "none" are never accepted, so a public key can never be used as a secret.
var allowedAlgorithms = map[string]jose.SignatureAlgorithm{
	"RS256": jose.RS256, "RS384": jose.RS384, "RS512": jose.RS512,
	"PS256": jose.PS256, "PS384": jose.PS384, "PS512": jose.PS512,
	"ES256": jose.ES256, "ES384": jose.ES384, "ES512": jose.ES512,
	"EdDSA": jose.EdDSA,
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	switch u, err := url.Parse(c.ServerURL); {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs = append(errs, fmt.Errorf("server_url %q: %w", c.ServerURL, errNoServerURL))
	case !c.InsecureAllowHTTP && !secureURL(u):
		errs = append(errs, fmt.Errorf("server_url %q: %w", c.ServerURL, errInsecureServer))
	}
	if strings.TrimSpace(c.Realm) == "" {
		errs = append(errs, errNoRealm)
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout: %w", errNonPositive))
	}
	if len(c.Server.Audiences) == 0 && !c.Client.HasValue() {
		errs = append(errs, errNoSide)
	}
	errs = append(errs, c.Server.validate()...)
	if cl := c.Client.Get(); cl != nil {
		errs = append(errs, cl.validate()...)
	}
	errs = append(errs, c.Authorization.validate(len(c.Server.Audiences) > 0)...)
	return errors.Join(errs...)
}

func (s *ServerConfig) validate() []error {
	var errs []error
	if len(s.SignatureAlgorithms) == 0 {
		errs = append(errs, fmt.Errorf("server.signature_algorithms: %w", errNoAlgorithms))
	}
	for _, a := range s.SignatureAlgorithms {
		if _, ok := allowedAlgorithms[a]; !ok {
			errs = append(errs, fmt.Errorf("server.signature_algorithms %q: %w", a, errBadAlgorithm))
		}
	}
	for name, d := range map[string]time.Duration{
		"jwks_refresh_interval":     s.JWKSRefreshInterval,
		"jwks_min_refetch_interval": s.JWKSMinRefetchInterval,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("server.%s: %w", name, errNonPositive))
		}
	}
	if s.ClockSkew < 0 {
		errs = append(errs, fmt.Errorf("server.clock_skew: %w", errNonPositive))
	}
	if s.ClockSkew > maxClockSkew {
		errs = append(errs, fmt.Errorf("server.clock_skew %s: %w %s", s.ClockSkew, errTooLong, maxClockSkew))
	}
	if s.TokenCacheSize <= 0 {
		errs = append(errs, fmt.Errorf("server.token_cache_size: %w", errNonPositive))
	}
	if s.TokenCacheTTL <= 0 {
		errs = append(errs, fmt.Errorf("server.token_cache_ttl: %w", errNonPositive))
	}
	if s.TokenCacheTTL > maxTokenCacheTTL {
		errs = append(errs, fmt.Errorf("server.token_cache_ttl %s: %w %s", s.TokenCacheTTL, errTooLong, maxTokenCacheTTL))
	}
	if s.Header == "" {
		errs = append(errs, fmt.Errorf("server.header: %w", errNonPositive))
	}
	if s.MaxTokenSize <= 0 {
		errs = append(errs, fmt.Errorf("server.max_token_size: %w", errNonPositive))
	}
	return errs
}

func (c *ClientConfig) validate() []error {
	var errs []error
	if c.ClientID == "" {
		errs = append(errs, fmt.Errorf("client: %w", errNoClientID))
	}
	switch {
	case c.ClientSecret == "" && c.ClientSecretFile == "":
		errs = append(errs, fmt.Errorf("client: %w", errNoClientSecret))
	case c.ClientSecret != "" && c.ClientSecretFile != "":
		errs = append(errs, fmt.Errorf("client: %w", errTwoSecrets))
	}
	if c.ExpiryMargin < 0 {
		errs = append(errs, fmt.Errorf("client.expiry_margin: %w", errNonPositive))
	}
	if c.MaxBackoff <= 0 {
		errs = append(errs, fmt.Errorf("client.max_backoff: %w", errNonPositive))
	}
	return errs
}

func (a *AuthorizationConfig) validate(hasServer bool) []error {
	switch a.Mode {
	case ModeNone:
		return nil
	case ModeResource:
	default:
		return []error{fmt.Errorf("authorization.mode %q: %w", a.Mode, errBadMode)}
	}
	var errs []error
	if !hasServer {
		errs = append(errs, errModeNeedsServer)
	}
	if a.ResourceServer == "" {
		errs = append(errs, fmt.Errorf("authorization: %w", errNoResourceServer))
	}
	if a.Scope == "" {
		errs = append(errs, fmt.Errorf("authorization: %w", errNoScope))
	}
	if a.ReadScope == "" || a.ManagerScope == "" {
		errs = append(errs, fmt.Errorf("authorization: %w", errNoReadScope))
	}
	if a.DecisionCacheTTL <= 0 {
		errs = append(errs, fmt.Errorf("authorization.decision_cache_ttl: %w", errNonPositive))
	}
	if a.DecisionCacheSize <= 0 {
		errs = append(errs, fmt.Errorf("authorization.decision_cache_size: %w", errNonPositive))
	}
	if a.MaxDecisionsPerMinute <= 0 {
		errs = append(errs, fmt.Errorf("authorization.max_decisions_per_minute: %w", errNonPositive))
	}
	if a.DecisionBurst <= 0 {
		errs = append(errs, fmt.Errorf("authorization.decision_burst: %w", errNonPositive))
	}
	return errs
}

// secureURL says whether a token may travel to u: https, or http to a
// loopback address (tests, a sidecar). "localhost" counts as loopback.
func secureURL(u *url.URL) bool {
	switch u.Scheme {
	case "https":
		return true
	case "http":
		host := u.Hostname()
		if strings.EqualFold(host, "localhost") {
			return true
		}
		ip := net.ParseIP(host)
		return ip != nil && ip.IsLoopback()
	}
	return false
}

// realmURL is {server_url}/realms/{realm}, the prefix of every endpoint.
func (c *Config) realmURL() string {
	return strings.TrimRight(c.ServerURL, "/") + "/realms/" + url.PathEscape(c.Realm)
}

func (c *Config) expectedIssuer() string {
	if c.Issuer != "" {
		return c.Issuer
	}
	return c.realmURL()
}

func (c *Config) tokenURL() string { return c.realmURL() + "/protocol/openid-connect/token" }

func (c *Config) discoveryURL() string { return c.realmURL() + "/.well-known/openid-configuration" }

func (s *ServerConfig) algorithms() []jose.SignatureAlgorithm {
	algs := make([]jose.SignatureAlgorithm, 0, len(s.SignatureAlgorithms))
	for _, a := range s.SignatureAlgorithms {
		algs = append(algs, allowedAlgorithms[a])
	}
	return algs
}
