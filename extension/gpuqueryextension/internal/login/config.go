// Package login is the site's OpenID Connect login: the authorization code
// flow with PKCE against Keycloak (golang.org/x/oauth2, ID tokens checked
// by go-oidc), server-side sessions behind an HttpOnly cookie, CSRF tokens
// for anything that is not a GET, refresh before expiry, idle and absolute
// timeouts, and RP-initiated logout.
package login // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/login"

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"
)

// Config is gpu_query's login block.
type Config struct {
	// IssuerURL is the OpenID Connect issuer: Keycloak's realm URL
	// (https://keycloak.example.org/realms/nerc).
	IssuerURL string `mapstructure:"issuer_url"`
	// PublicURL is the site's address as browsers reach it; the callback
	// is PublicURL/callback, and the cookies are Secure when it is https.
	PublicURL string `mapstructure:"public_url"`
	// ClientID and ClientSecret are the confidential client the site logs
	// users in as. Its access tokens must name the resource server the API
	// authorizes against in their audience (an audience mapper).
	ClientID     string              `mapstructure:"client_id"`
	ClientSecret configopaque.String `mapstructure:"client_secret"`
	// IdPHint is sent as kc_idp_hint: Keycloak skips its own login page and
	// sends the user to that identity provider (NERC: github).
	IdPHint string `mapstructure:"idp_hint"`
	// Scopes asked besides openid.
	Scopes []string `mapstructure:"scopes"`
	// IdleTimeout ends a session not used for this long (default 30m);
	// AbsoluteTimeout ends every session this long after login (default 12h).
	IdleTimeout     time.Duration `mapstructure:"idle_timeout"`
	AbsoluteTimeout time.Duration `mapstructure:"absolute_timeout"`
	// MaxSessions bounds the sessions held in memory (default 10000); the
	// least recently used is ended when a login would exceed it.
	MaxSessions int `mapstructure:"max_sessions"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Defaults.
const (
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultAbsoluteTimeout = 12 * time.Hour
	DefaultMaxSessions     = 10000
)

// withDefaults fills the settings left zero.
func (c Config) withDefaults() Config {
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.AbsoluteTimeout == 0 {
		c.AbsoluteTimeout = DefaultAbsoluteTimeout
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	return c
}

var (
	errIssuer = errors.New("login::issuer_url: must be an https URL (http only on a loopback host)")
	// ErrPublicURL: the site's address is not https (or loopback http).
	ErrPublicURL = errors.New("login::public_url: must be an https URL without path, query or fragment (http only on a loopback host)")
	errClient    = errors.New("login::client_id and login::client_secret: must be set (a confidential client)")
	errTimeouts  = errors.New("login::idle_timeout and login::absolute_timeout: must not be negative, idle at most absolute")
	errMax       = errors.New("login::max_sessions: must not be negative")
)

// Validate checks the block.
func (c *Config) Validate() error {
	d := c.withDefaults()
	var errs []error
	if u, err := url.Parse(c.IssuerURL); err != nil || !secureOrLoopback(u) {
		errs = append(errs, errIssuer)
	}
	if u, err := url.Parse(c.PublicURL); err != nil || !secureOrLoopback(u) || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		errs = append(errs, ErrPublicURL)
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		errs = append(errs, errClient)
	}
	if c.IdleTimeout < 0 || c.AbsoluteTimeout < 0 || d.IdleTimeout > d.AbsoluteTimeout {
		errs = append(errs, errTimeouts)
	}
	if c.MaxSessions < 0 {
		errs = append(errs, errMax)
	}
	return errors.Join(errs...)
}

// secureOrLoopback: https, or http to a loopback address (tests, a laptop).
func secureOrLoopback(u *url.URL) bool {
	switch {
	case u.Host == "":
		return false
	case u.Scheme == "https":
		return true
	case u.Scheme != "http":
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (c *Config) base() string {
	u, _ := url.Parse(c.PublicURL) // validated
	return fmt.Sprintf("%s://%s", u.Scheme, u.Host)
}

func (c *Config) secure() bool {
	u, _ := url.Parse(c.PublicURL)
	return u.Scheme == "https"
}
