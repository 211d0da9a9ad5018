package keycloakauth

import (
	"context"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/nerc-project/ai-telemetry-collector/extension/keycloakauth/internal/metadatatest"
	"github.com/nerc-project/ai-telemetry-collector/internal/testpeers"
)

// echoAuth is an upstream server that reports the Authorization header it got.
func echoAuth(t *testing.T) (*httptest.Server, *[]string) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

func TestRoundTripperPresentsCachedToken(t *testing.T) {
	f := newFakeKeycloak(t)
	e, _ := start(t, f.config())
	upstream, seen := echoAuth(t)
	rt, err := e.RoundTripper(http.DefaultTransport)
	require.NoError(t, err)
	hc := &http.Client{Transport: rt}

	for range 5 {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, upstream.URL, http.NoBody)
		require.NoError(t, err)
		resp, err := hc.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		assert.Empty(t, req.Header.Get("Authorization"), "the caller's request is not modified")
	}
	require.Len(t, *seen, 5)
	assert.Equal(t, int64(1), f.tokens.Load(), "one token for all requests")
	// The token presented is one the server side accepts.
	_, err = e.Authenticate(context.Background(), map[string][]string{"Authorization": {(*seen)[0]}})
	require.NoError(t, err)
	for _, h := range *seen {
		assert.Equal(t, (*seen)[0], h)
	}
}

func TestTokenRefreshCollapsesUnderConcurrency(t *testing.T) {
	f := newFakeKeycloak(t)
	e, _ := start(t, f.config())
	creds, err := e.PerRPCCredentials()
	require.NoError(t, err)
	assert.True(t, creds.RequireTransportSecurity())

	var wg sync.WaitGroup
	got := make([]string, 50)
	for i := range got {
		wg.Go(func() {
			md, err := creds.GetRequestMetadata(context.Background())
			assert.NoError(t, err)
			got[i] = md["authorization"]
		})
	}
	wg.Wait()
	assert.Equal(t, int64(1), f.tokens.Load())
	for _, h := range got {
		assert.Equal(t, got[0], h)
		assert.Contains(t, h, "Bearer ")
	}
}

func TestTokenReplacedBeforeExpiry(t *testing.T) {
	f := newFakeKeycloak(t)
	f.expires = 20 // shorter than the 30 s expiry margin: every use needs a new token
	e, _ := start(t, f.config())
	creds, err := e.PerRPCCredentials()
	require.NoError(t, err)
	for range 3 {
		_, err := creds.GetRequestMetadata(context.Background())
		require.NoError(t, err)
	}
	assert.Equal(t, int64(3), f.tokens.Load())
}

func TestTokenFailureBacksOffAndHidesSecret(t *testing.T) {
	f := newFakeKeycloak(t)
	cfg := f.config()
	cl := cfg.Client.Get()
	cl.ClientSecret = configopaque.String("wrong-secret-value")
	e, tel := start(t, cfg)
	creds, err := e.PerRPCCredentials()
	require.NoError(t, err)

	_, err = creds.GetRequestMetadata(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "unauthorized_client", "Keycloak's error code is kept")
	assert.NotContains(t, err.Error(), "wrong-secret-value")
	_, err = creds.GetRequestMetadata(context.Background())
	require.ErrorIs(t, err, errBackoff)
	assert.Equal(t, int64(1), f.tokens.Load(), "no second request during the backoff")
	assert.Equal(t, int64(1), count(t, tel, "keycloak_requests", attribute.String("kind", "token"), attribute.String("outcome", "error")))
}

func TestTokenRetriedAfterBackoff(t *testing.T) {
	f := newFakeKeycloak(t)
	f.down.Store(true)
	e, tel := start(t, f.config())
	_, err := e.source.token()
	require.Error(t, err)
	_, err = e.source.token()
	require.ErrorIs(t, err, errBackoff)
	assert.Equal(t, int64(1), count(t, tel, "keycloak_requests", attribute.String("kind", "token")), "no request during the backoff")

	f.down.Store(false)
	e.now = func() time.Time { return time.Now().Add(minBackoff + time.Second) } // the first backoff is over
	tok, err := e.source.token()
	require.NoError(t, err)
	assert.NotEmpty(t, tok)
	assert.Equal(t, int64(1), f.tokens.Load())
}

func TestRoundTripperFailsWithoutToken(t *testing.T) {
	f := newFakeKeycloak(t)
	f.down.Store(true)
	e, _ := start(t, f.config())
	upstream, seen := echoAuth(t)
	rt, err := e.RoundTripper(http.DefaultTransport)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, upstream.URL, http.NoBody)
	require.NoError(t, err)
	resp, err := rt.RoundTrip(req)
	if resp != nil {
		_ = resp.Body.Close()
	}
	require.Error(t, err)
	assert.Empty(t, *seen, "nothing is sent without a token")
}

func TestServerOnlyHasNoClientSide(t *testing.T) {
	f := newFakeKeycloak(t)
	cfg := f.config()
	cfg.Client = createDefaultConfig().(*Config).Client
	e, _ := start(t, cfg)
	_, err := e.RoundTripper(http.DefaultTransport)
	require.ErrorIs(t, err, errNoClient)
	_, err = e.PerRPCCredentials()
	require.ErrorIs(t, err, errNoClient)
}

func TestClientSecretFromFile(t *testing.T) {
	f := newFakeKeycloak(t)
	cfg := f.config()
	cl := cfg.Client.Get()
	cl.ClientSecret = ""
	cl.ClientSecretFile = filepath.Join(t.TempDir(), "client-secret")
	require.NoError(t, os.WriteFile(cl.ClientSecretFile, []byte(testSecret+"\n"), 0o600))
	e, _ := start(t, cfg)
	tok, err := e.source.token()
	require.NoError(t, err, "the secret read from the file, trailing newline dropped, is accepted")
	assert.NotEmpty(t, tok)

	cl.ClientSecretFile = filepath.Join(t.TempDir(), "absent")
	_, err = newKeycloakAuth(cfg, metadatatest.NewSettings(componenttest.NewTelemetry()))
	require.ErrorContains(t, err, "client_secret_file")
	assert.NotContains(t, err.Error(), testSecret)

	cl.ClientSecret = testSecret
	require.ErrorIs(t, cfg.Validate(), errTwoSecrets)
}

// recordingTransport stands in for the network: it records the Authorization
// header of each request that reaches it and answers 204.
type recordingTransport struct {
	mu   sync.Mutex
	seen []string
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.seen = append(r.seen, req.URL.String()+" "+req.Header.Get("Authorization"))
	r.mu.Unlock()
	return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Request: req}, nil
}

func TestRoundTripperSendsTokenOnlyOverHTTPS(t *testing.T) {
	tests := []struct {
		url          string
		insecureHTTP bool
		sent         bool
	}{
		{url: "https://gateway.example.org/v1/metrics", sent: true},
		{url: "http://127.0.0.1:4318/v1/metrics", sent: true},
		{url: "http://[::1]:4318/v1/metrics", sent: true},
		{url: "http://localhost:4318/v1/metrics", sent: true},
		{url: "http://gateway.example.org/v1/metrics", sent: false},
		{url: "http://10.0.0.1:4318/v1/metrics", sent: false},
		{url: "http://gateway.example.org/v1/metrics", insecureHTTP: true, sent: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s allow_http=%v", tt.url, tt.insecureHTTP), func(t *testing.T) {
			f := newFakeKeycloak(t)
			cfg := f.config()
			cfg.Client.Get().InsecureAllowHTTP = tt.insecureHTTP
			e, tel := start(t, cfg)
			base := &recordingTransport{}
			rt, err := e.RoundTripper(base)
			require.NoError(t, err)
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, tt.url, http.NoBody)
			require.NoError(t, err)
			resp, err := rt.RoundTrip(req)
			if !tt.sent {
				require.ErrorIs(t, err, errInsecureURL)
				assert.Contains(t, err.Error(), "client.insecure_allow_http", "the error says how to allow it")
				assert.Empty(t, base.seen, "nothing is sent")
				assert.Zero(t, f.tokens.Load(), "no token is even fetched")
				assert.Equal(t, int64(1), count(t, tel, "client_tokens_withheld", attribute.String("reason", "insecure_url")))
				return
			}
			require.NoError(t, err)
			_ = resp.Body.Close()
			require.Len(t, base.seen, 1)
			assert.Contains(t, base.seen[0], "Bearer ey")
		})
	}
}

func TestRoundTripperWithholdsTokenOnRedirectToHTTP(t *testing.T) {
	f := newFakeKeycloak(t)
	e, tel := start(t, f.config())
	// An https endpoint on loopback that redirects to plain http elsewhere.
	target := "http://gateway.example.org/v1/metrics"
	var seen []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("Authorization"))
		http.Redirect(w, r, target, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	base := &recordingTransport{}
	rt, err := e.RoundTripper(splitTransport{tls: srv.Client().Transport, other: base})
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL, http.NoBody)
	require.NoError(t, err)
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if resp != nil {
		_ = resp.Body.Close()
	}
	require.ErrorIs(t, err, errInsecureURL, "the http hop is refused")
	require.Len(t, seen, 1)
	assert.Contains(t, seen[0], "Bearer ", "the https hop had the token")
	assert.Empty(t, base.seen, "the http hop never left")
	assert.Equal(t, int64(1), count(t, tel, "client_tokens_withheld", attribute.String("reason", "insecure_url")))
}

// splitTransport sends https requests to the test server and any other to other.
type splitTransport struct{ tls, other http.RoundTripper }

func (s splitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "https" {
		return s.tls.RoundTrip(req)
	}
	return s.other.RoundTrip(req)
}

// grpcPeer is a real gRPC server on loopback (health service) that records
// the authorization metadata of each call.
func grpcPeer(t *testing.T, creds credentials.TransportCredentials) (string, func() []string) {
	var mu sync.Mutex
	var seen []string
	srv := grpc.NewServer(grpc.Creds(creds), grpc.UnaryInterceptor(
		func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			md, _ := metadata.FromIncomingContext(ctx)
			mu.Lock()
			seen = append(seen, strings.Join(md.Get("authorization"), ","))
			mu.Unlock()
			return handler(ctx, req)
		}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

func TestPerRPCCredentialsNeedTLS(t *testing.T) {
	pki := testpeers.WritePKI(t, t.TempDir())
	serverTLS, err := credentials.NewServerTLSFromFile(pki.CertFile, pki.KeyFile)
	require.NoError(t, err)
	clientTLS := credentials.NewClientTLSFromCert(pki.Roots, "")
	tests := []struct {
		name         string
		server       credentials.TransportCredentials
		client       credentials.TransportCredentials
		insecureHTTP bool
		sent         bool
	}{
		{name: "TLS", server: serverTLS, client: clientTLS, sent: true},
		{name: "plaintext, even on loopback", server: insecure.NewCredentials(), client: insecure.NewCredentials()},
		{name: "plaintext with insecure_allow_http", server: insecure.NewCredentials(), client: insecure.NewCredentials(), insecureHTTP: true, sent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeKeycloak(t)
			cfg := f.config()
			cfg.Client.Get().InsecureAllowHTTP = tt.insecureHTTP
			e, _ := start(t, cfg)
			addr, seen := grpcPeer(t, tt.server)
			creds, err := e.PerRPCCredentials()
			require.NoError(t, err)
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(tt.client), grpc.WithPerRPCCredentials(creds))
			if !tt.sent {
				require.Error(t, err, "gRPC refuses credentials that require TLS on a plaintext channel")
				assert.Zero(t, f.tokens.Load())
				assert.Empty(t, seen())
				return
			}
			require.NoError(t, err)
			t.Cleanup(func() { _ = conn.Close() })
			_, err = healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
			require.NoError(t, err)
			require.Len(t, seen(), 1)
			assert.Contains(t, seen()[0], "Bearer ey")
		})
	}
}

// TestPerRPCCredentialsCheckTheConnection covers a transport that completes a
// handshake below privacy and integrity: no token is fetched nor returned.
func TestPerRPCCredentialsCheckTheConnection(t *testing.T) {
	f := newFakeKeycloak(t)
	e, tel := start(t, f.config())
	creds, err := e.PerRPCCredentials()
	require.NoError(t, err)
	for level, ok := range map[credentials.SecurityLevel]bool{
		credentials.NoSecurity: false, credentials.IntegrityOnly: false, credentials.PrivacyAndIntegrity: true,
	} {
		ctx := credentials.NewContextWithRequestInfo(context.Background(), credentials.RequestInfo{
			AuthInfo: credentials.TLSInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: level}},
		})
		md, err := creds.GetRequestMetadata(ctx)
		if ok {
			require.NoError(t, err, level.String())
			assert.Contains(t, md["authorization"], "Bearer ")
			continue
		}
		require.ErrorIs(t, err, errInsecureTransport, level.String())
		assert.Nil(t, md)
	}
	assert.Equal(t, int64(1), f.tokens.Load(), "fetched for the secure connection only")
	assert.Equal(t, int64(2), count(t, tel, "client_tokens_withheld", attribute.String("reason", "insecure_transport")))
}

// TestKeycloakRequestsStayOnHTTPS: the keys are not fetched from a plain-http
// jwks_uri (they could be swapped in transit), and the client secret does not
// follow a redirect to plain http.
func TestKeycloakRequestsStayOnHTTPS(t *testing.T) {
	var hits []string
	var mu sync.Mutex
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits = append(hits, r.URL.Path)
		mu.Unlock()
		switch r.URL.Path {
		case "/realms/NERC/.well-known/openid-configuration":
			_, _ = fmt.Fprintf(w, `{"issuer":"https://%s/realms/NERC","jwks_uri":"http://keycloak.example.org/certs"}`, r.Host)
		default:
			http.Redirect(w, r, "http://keycloak.example.org"+r.URL.Path, http.StatusTemporaryRedirect)
		}
	}))
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))

	cfg := (&fakeKeycloak{srv: srv}).config()
	cfg.TLS.CAFile = caFile
	e, _ := start(t, cfg)
	require.ErrorIs(t, e.keys.refresh(context.Background()), errInsecureURL)
	_, err := e.source.token()
	require.ErrorIs(t, err, errInsecureURL)
	assert.NotContains(t, err.Error(), testSecret)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{
		"/realms/NERC/.well-known/openid-configuration", // at Start
		"/realms/NERC/.well-known/openid-configuration", // the refresh above
		"/realms/NERC/protocol/openid-connect/token",    // redirected, not followed
	}, hits)
}
