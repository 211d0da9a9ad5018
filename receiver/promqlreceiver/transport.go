package promqlreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/promqlreceiver"

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// errRedirect: a redirect the client refuses to follow. The authenticator
// adds its token to every request the transport carries, so following a hop
// sends the token to where it points.
var errRedirect = errors.New("redirect refused")

// maxRedirects is Go's own limit.
const maxRedirects = 10

// checkRedirect follows a redirect only on the endpoint's own host and port,
// and never from https to anything else: a hop to another host would hand
// it the token, one to http would send it in clear. http to http on the same
// host is followed: the endpoint was http already, which Validate allows only
// on loopback, without credentials, or with insecure_http_auth.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("%w: stopped after %d redirects", errRedirect, maxRedirects)
	}
	from, to := via[0].URL, req.URL
	if !strings.EqualFold(from.Hostname(), to.Hostname()) || effectivePort(from) != effectivePort(to) {
		return fmt.Errorf("%w: to another host %s (it would receive the token)", errRedirect, to.Host)
	}
	if prev := via[len(via)-1].URL; prev.Scheme == "https" && to.Scheme != "https" {
		return fmt.Errorf("%w: to %s://%s leaves https (the token would be sent in clear)", errRedirect, to.Scheme, to.Host)
	}
	return nil
}

func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// isLoopback: localhost or a loopback address, where plain http never leaves
// the machine (tests, a sidecar proxy).
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sendsCredentials: the client carries a token or password, from the
// authenticator or a static Authorization header.
func (c *Config) sendsCredentials() bool {
	if c.Auth.HasValue() {
		return true
	}
	for _, h := range c.Headers {
		if strings.EqualFold(h.Name, "Authorization") || strings.EqualFold(h.Name, "Proxy-Authorization") {
			return true
		}
	}
	return false
}

// plainHTTPCredentials: the endpoint is http on a host other than loopback
// and the client sends credentials, which would cross the network in clear.
func (c *Config) plainHTTPCredentials() bool {
	u, err := url.Parse(c.Endpoint)
	return err == nil && u.Scheme == "http" && !isLoopback(u.Hostname()) && c.sendsCredentials()
}
