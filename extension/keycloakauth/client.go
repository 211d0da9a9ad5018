package keycloakauth // import "github.com/nerc-project/ai-telemetry-collector/extension/keycloakauth"

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"google.golang.org/grpc/credentials"
)

var (
	errNoClient = errors.New("keycloakauth has no client side configured (client)")
	errBackoff  = errors.New("token request failed recently; waiting before the next attempt")
)

const minBackoff = time.Second

// tokenSource hands out the client-credentials token, fetching a new one
// shortly (expiry_margin) before it expires. Callers wait on one mutex, so a
// refresh under concurrency is one request; after a failure, requests fail
// fast until an exponential backoff has passed, so an outage is not hammered.
type tokenSource struct {
	e   *keycloakAuth
	cfg *ClientConfig
	src oauth2.TokenSource

	mu       sync.Mutex
	failures int
	retryAt  time.Time
	lastErr  error
}

func newTokenSource(e *keycloakAuth, cfg *ClientConfig) (*tokenSource, error) {
	secret := string(cfg.ClientSecret)
	if cfg.ClientSecretFile != "" {
		raw, err := os.ReadFile(cfg.ClientSecretFile)
		if err != nil {
			// The path is configuration, never the secret itself.
			return nil, fmt.Errorf("client.client_secret_file: %w", err)
		}
		secret = strings.TrimRight(string(raw), "\r\n")
		if secret == "" {
			return nil, fmt.Errorf("client.client_secret_file %s: %w", cfg.ClientSecretFile, errNoClientSecret)
		}
	}
	cc := &clientcredentials.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: secret,
		TokenURL:     e.cfg.tokenURL(),
		Scopes:       cfg.Scopes,
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	t := &tokenSource{e: e, cfg: cfg}
	// The HTTP client is read at each fetch: Start sets its TLS transport.
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, e.httpClient)
	t.src = oauth2.ReuseTokenSourceWithExpiry(nil, countingSource{e: e, src: cc.TokenSource(ctx)}, cfg.ExpiryMargin)
	return t, nil
}

// countingSource counts each real request to the token endpoint.
type countingSource struct {
	e   *keycloakAuth
	src oauth2.TokenSource
}

func (c countingSource) Token() (*oauth2.Token, error) {
	tok, err := c.src.Token()
	c.e.countRequest(context.Background(), "token", err)
	return tok, err
}

func (t *tokenSource) token() (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now := t.e.now(); now.Before(t.retryAt) {
		return "", fmt.Errorf("%w: %w", errBackoff, t.lastErr)
	}
	tok, err := t.src.Token()
	if err != nil {
		t.failures++
		wait := min(minBackoff<<min(t.failures-1, 16), t.cfg.MaxBackoff)
		t.retryAt = t.e.now().Add(wait)
		t.lastErr = redact(err)
		return "", fmt.Errorf("keycloak client credentials: %w", t.lastErr)
	}
	t.failures, t.retryAt, t.lastErr = 0, time.Time{}, nil
	return tok.AccessToken, nil
}

// redact keeps Keycloak's error code (e.g. invalid_client, unauthorized_client)
// but drops the response body, which is never needed in a log.
func redact(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		code := re.ErrorCode
		if code == "" && re.Response != nil {
			code = re.Response.Status
		}
		return fmt.Errorf("token endpoint refused: %s", code)
	}
	return err
}

// RoundTripper adds the token to each HTTP request (extensionauth.HTTPClient)
// whose URL is https, or http to a loopback address; any other request fails
// before a token is fetched or sent (client.insecure_allow_http allows it).
// Redirects come back through RoundTrip, so each hop is checked.
func (e *keycloakAuth) RoundTripper(base http.RoundTripper) (http.RoundTripper, error) {
	if e.source == nil {
		return nil, errNoClient
	}
	return &roundTripper{base: base, e: e}, nil
}

type roundTripper struct {
	base http.RoundTripper
	e    *keycloakAuth
}

func (r *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	fail := func(err error) (*http.Response, error) {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	if !r.e.source.cfg.InsecureAllowHTTP && !secureURL(req.URL) {
		r.e.telemetry.KeycloakauthClientTokensWithheld.Add(req.Context(), 1, withInsecureURL)
		return fail(fmt.Errorf("keycloakauth: no token for %s://%s: %w (use https, or set client.insecure_allow_http)",
			req.URL.Scheme, req.URL.Host, errInsecureURL))
	}
	tok, err := r.e.source.token()
	if err != nil {
		return fail(err)
	}
	req2 := req.Clone(req.Context())
	req2.Header.Set("Authorization", "Bearer "+tok)
	return r.base.RoundTrip(req2)
}

var (
	errInsecureTransport = errors.New("refusing to send the token over a gRPC connection without TLS (use TLS, or set client.insecure_allow_http)")
	withInsecureURL      = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "insecure_url")))
	withInsecureConn     = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "insecure_transport")))
)

// PerRPCCredentials adds the token to each gRPC call (extensionauth.GRPCClient).
func (e *keycloakAuth) PerRPCCredentials() (credentials.PerRPCCredentials, error) {
	if e.source == nil {
		return nil, errNoClient
	}
	return perRPC{e: e}, nil
}

type perRPC struct{ e *keycloakAuth }

func (p perRPC) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	// gRPC itself refuses a connection without TLS when the credentials
	// require it; this also covers a transport that reports less than
	// privacy and integrity after the handshake.
	if ri, ok := credentials.RequestInfoFromContext(ctx); ok && p.RequireTransportSecurity() && ri.AuthInfo != nil {
		if err := credentials.CheckSecurityLevel(ri.AuthInfo, credentials.PrivacyAndIntegrity); err != nil {
			p.e.telemetry.KeycloakauthClientTokensWithheld.Add(ctx, 1, withInsecureConn)
			return nil, fmt.Errorf("%w: %w", errInsecureTransport, err)
		}
	}
	tok, err := p.e.source.token()
	if err != nil {
		return nil, err
	}
	return map[string]string{"authorization": "Bearer " + tok}, nil
}

// RequireTransportSecurity: tokens never travel in clear text over gRPC,
// unless client.insecure_allow_http says so.
func (p perRPC) RequireTransportSecurity() bool { return !p.e.source.cfg.InsecureAllowHTTP }
