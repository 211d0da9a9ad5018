package keycloakauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/otel/attribute"

	"github.com/nerc-project/ai-telemetry-collector/extension/keycloakauth/internal/metadatatest"
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
