package keycloakauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/otel/attribute"
)

func TestAuthenticateAccepts(t *testing.T) {
	f := newFakeKeycloak(t)
	e, tel := start(t, f.config())
	tok := f.sign(f.claims(5 * time.Minute))

	ctx, err := e.Authenticate(context.Background(), bearerHeader(tok))
	require.NoError(t, err)
	auth := client.FromContext(ctx).Auth
	require.NotNil(t, auth)
	assert.Equal(t, "7d1c-service-account", auth.GetAttribute(AttrSubject))
	assert.Equal(t, testClientID, auth.GetAttribute(AttrClientID))
	assert.Equal(t, "service-account-"+testClientID, auth.GetAttribute(AttrUsername))
	assert.Equal(t, []string{"offline_access", "account:view-profile"}, auth.GetAttribute(AttrRoles))
	assert.Equal(t, []string{"team-a-writers"}, auth.GetAttribute(AttrGroups))
	assert.Equal(t, []string{"team-a-writers"}, auth.GetAttribute(AttrMembership))
	assert.Nil(t, auth.GetAttribute("raw"), "the token itself is never an attribute")
	for _, name := range auth.GetAttributeNames() {
		assert.NotNil(t, auth.GetAttribute(name), name)
	}

	// gRPC metadata keys are lower case; the second use is a cache hit.
	_, err = e.Authenticate(context.Background(), map[string][]string{"authorization": {"bearer " + tok}})
	require.NoError(t, err)
	assert.Equal(t, int64(1), count(t, tel, "requests_accepted", attribute.String("cache", "miss")))
	assert.Equal(t, int64(1), count(t, tel, "requests_accepted", attribute.String("cache", "hit")))
	assert.Equal(t, int64(1), f.discoveries.Load())
	assert.Equal(t, int64(1), f.jwksFetches.Load())
}

func TestAuthenticateRejects(t *testing.T) {
	f := newFakeKeycloak(t)
	cfg := f.config()
	cfg.Server.AuthorizedParties = []string{testClientID}
	e, tel := start(t, cfg)
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)

	with := func(change func(c map[string]any)) string {
		c := f.claims(5 * time.Minute)
		change(c)
		return f.sign(c)
	}
	now := time.Now()
	valid := f.sign(f.claims(5 * time.Minute))
	parts := strings.Split(valid, ".")

	tests := []struct {
		name    string
		headers map[string][]string
		want    error
		reason  string
	}{
		{"no header", map[string][]string{}, errMissingHeader, "missing_token"},
		{"empty header", map[string][]string{"Authorization": {""}}, errMissingHeader, "missing_token"},
		{"basic scheme", map[string][]string{"Authorization": {"Basic dXNlcjpwYXNz"}}, errBadHeader, "bad_header"},
		{"no token", map[string][]string{"Authorization": {"Bearer "}}, errBadHeader, "bad_header"},
		{"space in the token", map[string][]string{"Authorization": {"Bearer " + parts[0] + " " + parts[1]}}, errBadHeader, "bad_header"},
		{"tab in the token", map[string][]string{"Authorization": {"Bearer " + parts[0] + "\t" + parts[1]}}, errBadHeader, "bad_header"},
		{"not a JWT", bearerHeader("not-a-jwt"), errMalformed, "malformed"},
		{"unsigned (alg none)", bearerHeader("eyJhbGciOiJub25lIn0." + parts[1] + "."), errMalformed, "malformed"},
		{"HMAC with a guessable secret", bearerHeader(signWith(t, jose.HS256, []byte("0123456789abcdef0123456789abcdef"), "k1", f.claims(time.Minute))), errAlgorithm, "algorithm"},
		{"ES256 not allow-listed", bearerHeader(signWith(t, jose.ES256, ecKey, "k1", f.claims(time.Minute))), errAlgorithm, "algorithm"},
		{"unknown kid", bearerHeader(signWith(t, jose.RS256, otherKey, "k-unknown", f.claims(time.Minute))), errUnknownKey, "unknown_key"},
		{"encryption key's kid", bearerHeader(signWith(t, jose.RS256, otherKey, "enc-key", f.claims(time.Minute))), errUnknownKey, "unknown_key"},
		{"forged with another key", bearerHeader(signWith(t, jose.RS256, otherKey, "k1", f.claims(time.Minute))), errSignature, "signature"},
		{"tampered payload", bearerHeader(parts[0] + "." + strings.TrimSuffix(parts[1], parts[1][len(parts[1])-2:]) + "AA." + parts[2]), errSignature, "signature"},
		{"other issuer", bearerHeader(with(func(c map[string]any) { c["iss"] = "https://keycloak.example.org/realms/master" })), errIssuer, "issuer"},
		{"other audience", bearerHeader(with(func(c map[string]any) { c["aud"] = "account" })), errAudience, "audience"},
		{"expired", bearerHeader(with(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })), errExpired, "expired"},
		{"not valid yet", bearerHeader(with(func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() })), errNotYetValid, "not_yet_valid"},
		{"issued in the future", bearerHeader(with(func(c map[string]any) { c["iat"] = now.Add(time.Hour).Unix() })), errIssuedInFuture, "issued_in_future"},
		{"no expiry", bearerHeader(with(func(c map[string]any) { delete(c, "exp") })), errNoExpiry, "no_expiry"},
		{"other client (azp)", bearerHeader(with(func(c map[string]any) { c["azp"] = "someone-else" })), errParty, "authorized_party"},
		{"ID token", bearerHeader(with(func(c map[string]any) { c["typ"] = "ID" })), errTokenType, "token_type"},
		{"refresh token", bearerHeader(with(func(c map[string]any) { c["typ"] = "Refresh" })), errTokenType, "token_type"},
		{"no typ", bearerHeader(with(func(c map[string]any) { delete(c, "typ") })), errTokenType, "token_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := count(t, tel, "requests_rejected", attribute.String("reason", tt.reason))
			ctx := context.Background()
			got, err := e.Authenticate(ctx, tt.headers)
			require.ErrorIs(t, err, tt.want)
			assert.Equal(t, "unauthorized", err.Error(), "the caller learns nothing more")
			assert.Nil(t, client.FromContext(got).Auth)
			assert.Equal(t, before+1, count(t, tel, "requests_rejected", attribute.String("reason", tt.reason)))
			for _, v := range tt.headers["Authorization"] {
				if _, tok, ok := strings.Cut(v, " "); ok && len(tok) > 8 {
					assert.NotContains(t, err.Error(), tok, "errors never carry the token")
				}
			}
		})
	}
	// Within jwks_min_refetch_interval, unknown kids caused no refetch.
	assert.Equal(t, int64(1), f.jwksFetches.Load())
	_, err = e.Authenticate(context.Background(), bearerHeader(valid))
	require.NoError(t, err, "the valid token still passes")
}

func TestAuthenticateClockSkew(t *testing.T) {
	f := newFakeKeycloak(t)
	cfg := f.config()
	cfg.Server.ClockSkew = time.Minute
	e, _ := start(t, cfg)
	c := f.claims(time.Minute)
	c["exp"] = time.Now().Add(-30 * time.Second).Unix() // within the skew
	_, err := e.Authenticate(context.Background(), bearerHeader(f.sign(c)))
	require.NoError(t, err)
	c["exp"] = time.Now().Add(-90 * time.Second).Unix()
	_, err = e.Authenticate(context.Background(), bearerHeader(f.sign(c)))
	require.ErrorIs(t, err, errExpired)
}

func TestCachedTokenExpires(t *testing.T) {
	f := newFakeKeycloak(t)
	cfg := f.config()
	cfg.Server.ClockSkew = 0
	e, tel := start(t, cfg)
	tok := f.sign(f.claims(time.Minute))
	_, err := e.Authenticate(context.Background(), bearerHeader(tok))
	require.NoError(t, err)

	e.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	_, err = e.Authenticate(context.Background(), bearerHeader(tok))
	require.ErrorIs(t, err, errExpired, "the cache never outlives the token")
	assert.Equal(t, int64(1), count(t, tel, "requests_rejected", attribute.String("reason", "expired")))
	_, err = e.Authenticate(context.Background(), bearerHeader(tok))
	require.ErrorIs(t, err, errExpired)
}

func TestTokenCacheIsBounded(t *testing.T) {
	f := newFakeKeycloak(t)
	cfg := f.config()
	cfg.Server.TokenCacheSize = 2
	e, tel := start(t, cfg)
	toks := []string{f.sign(f.claims(time.Minute)), f.sign(f.claims(time.Minute)), f.sign(f.claims(time.Minute))}
	for _, tok := range toks {
		_, err := e.Authenticate(context.Background(), bearerHeader(tok))
		require.NoError(t, err)
	}
	assert.Equal(t, 2, e.tokens.Len())
	_, err := e.Authenticate(context.Background(), bearerHeader(toks[0]))
	require.NoError(t, err, "an evicted token is validated again")
	assert.Equal(t, int64(4), count(t, tel, "requests_accepted", attribute.String("cache", "miss")))
}

func TestKeyRotationRefetchIsRateLimited(t *testing.T) {
	f := newFakeKeycloak(t)
	cfg := f.config()
	cfg.Server.JWKSMinRefetchInterval = time.Millisecond
	e, _ := start(t, cfg)
	old := f.sign(f.claims(time.Minute))
	_, err := e.Authenticate(context.Background(), bearerHeader(old))
	require.NoError(t, err)

	f.rotate("k2")
	rotated := f.sign(f.claims(time.Minute))
	require.Eventually(t, func() bool { // after the 1 ms refetch interval
		_, err = e.Authenticate(context.Background(), bearerHeader(rotated))
		return err == nil
	}, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, int64(1), f.discoveries.Load(), "discovery is read once")

	// Unknown kids no longer refetch once the interval is long.
	e.cfg.Server.JWKSMinRefetchInterval = time.Hour
	fetches := f.jwksFetches.Load()
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	for i := range 20 {
		_, err := e.Authenticate(context.Background(), bearerHeader(signWith(t, jose.RS256, otherKey, "garbage-"+string(rune('a'+i)), f.claims(time.Minute))))
		require.ErrorIs(t, err, errUnknownKey)
	}
	assert.Equal(t, fetches, f.jwksFetches.Load())
}

func TestKeycloakDownKeepsKeys(t *testing.T) {
	f := newFakeKeycloak(t)
	cfg := f.config()
	cfg.Server.JWKSMinRefetchInterval = time.Millisecond
	e, tel := start(t, cfg)
	ctx := context.Background()
	cached := f.sign(f.claims(time.Minute))
	_, err := e.Authenticate(ctx, bearerHeader(cached))
	require.NoError(t, err)

	f.down.Store(true)
	require.Error(t, e.keys.refresh(ctx), "the background refresh fails")
	_, err = e.Authenticate(ctx, bearerHeader(cached))
	require.NoError(t, err, "a cached token still passes")
	_, err = e.Authenticate(ctx, bearerHeader(f.sign(f.claims(time.Minute))))
	require.NoError(t, err, "a new token signed with a kept key is validated locally")
	f.rotate("k2")
	time.Sleep(2 * time.Millisecond) // past jwks_min_refetch_interval, so the refetch is tried
	_, err = e.Authenticate(ctx, bearerHeader(f.sign(f.claims(time.Minute))))
	require.ErrorIs(t, err, errUnknownKey, "a key Keycloak cannot confirm fails closed")
	assert.Positive(t, count(t, tel, "keycloak_requests", attribute.String("kind", "jwks"), attribute.String("outcome", "error")))

	f.down.Store(false)
	require.Eventually(t, func() bool {
		_, err = e.Authenticate(ctx, bearerHeader(f.sign(f.claims(time.Minute))))
		return err == nil
	}, 5*time.Second, 5*time.Millisecond, "recovers once Keycloak is back")
}

func TestStartWhileKeycloakDown(t *testing.T) {
	f := newFakeKeycloak(t)
	f.down.Store(true)
	cfg := f.config()
	cfg.Server.JWKSMinRefetchInterval = time.Millisecond
	e, tel := start(t, cfg) // Start does not fail: the collector comes up
	ctx := context.Background()
	tok := f.sign(f.claims(time.Minute))
	_, err := e.Authenticate(ctx, bearerHeader(tok))
	require.ErrorIs(t, err, errKeysUnavailable)
	assert.Equal(t, int64(1), count(t, tel, "requests_rejected", attribute.String("reason", "keys_unavailable")))

	f.down.Store(false)
	require.Eventually(t, func() bool {
		_, err = e.Authenticate(ctx, bearerHeader(tok))
		return err == nil
	}, 5*time.Second, 5*time.Millisecond)
}

func TestDiscoveryIssuerMismatch(t *testing.T) {
	f := newFakeKeycloak(t)
	cfg := f.config()
	cfg.ServerURL = strings.Replace(f.srv.URL, "127.0.0.1", "localhost", 1) // same server, other name
	e, _ := start(t, cfg)
	_, err := e.Authenticate(context.Background(), bearerHeader(f.sign(f.claims(time.Minute))))
	require.ErrorIs(t, err, errKeysUnavailable)
	require.ErrorIs(t, e.keys.refresh(context.Background()), errIssuerMismatch)

	// With the issuer configured, reaching Keycloak under another name works.
	cfg = f.config()
	cfg.ServerURL = strings.Replace(f.srv.URL, "127.0.0.1", "localhost", 1)
	cfg.Issuer = f.issuer()
	e, _ = start(t, cfg)
	_, err = e.Authenticate(context.Background(), bearerHeader(f.sign(f.claims(time.Minute))))
	require.NoError(t, err)
}

func TestClientOnlyRefusesToAuthenticate(t *testing.T) {
	f := newFakeKeycloak(t)
	cfg := f.config()
	cfg.Server.Audiences = nil
	cfg.Authorization.Mode = ModeNone
	e, _ := start(t, cfg)
	_, err := e.Authenticate(context.Background(), bearerHeader(f.sign(f.claims(time.Minute))))
	require.ErrorIs(t, err, errNotServer)
	assert.Zero(t, f.jwksFetches.Load(), "a client-only extension never fetches keys")
}

func TestAuthenticateRequiredRolesAndTokenSize(t *testing.T) {
	f := newFakeKeycloak(t)
	cfg := f.config()
	cfg.Server.RequiredRoles = []string{"offline_access", "account:view-profile"}
	cfg.Server.MaxTokenSize = 4096
	e, tel := start(t, cfg)

	_, err := e.Authenticate(context.Background(), bearerHeader(f.sign(f.claims(time.Minute))))
	require.NoError(t, err, "realm role and client role (client:role) both held")

	c := f.claims(time.Minute)
	c["resource_access"] = map[string]any{}
	_, err = e.Authenticate(context.Background(), bearerHeader(f.sign(c)))
	require.ErrorIs(t, err, errMissingRole)
	assert.Equal(t, int64(1), count(t, tel, "requests_rejected", attribute.String("reason", "missing_role")))

	c = f.claims(time.Minute)
	c["padding"] = strings.Repeat("x", 8192)
	_, err = e.Authenticate(context.Background(), bearerHeader(f.sign(c)))
	require.ErrorIs(t, err, errTokenTooLarge)
	assert.Equal(t, "unauthorized", err.Error())
}

// TestAuthenticateRefusesHMACWithThePublicKey is the classic algorithm
// confusion: an attacker signs HS256 with the realm's public key as the secret.
func TestAuthenticateRefusesHMACWithThePublicKey(t *testing.T) {
	f := newFakeKeycloak(t)
	e, _ := start(t, f.config())
	der, err := x509.MarshalPKIXPublicKey(f.key.Public())
	require.NoError(t, err)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	for _, secret := range [][]byte{der, pemKey} {
		forged := signWith(t, jose.HS256, secret, f.kid, f.claims(time.Minute))
		_, err := e.Authenticate(context.Background(), bearerHeader(forged))
		require.ErrorIs(t, err, errAlgorithm)
	}
}

func TestCachedTokenNeedsItsKey(t *testing.T) {
	tests := []struct {
		name   string
		change func(f *fakeKeycloak)
		want   error
		reason string
	}{
		{"key removed from the key set", func(f *fakeKeycloak) { f.rotate("k2") }, errUnknownKey, "unknown_key"},
		{"other key material under the same kid", func(f *fakeKeycloak) { f.rotate("k1") }, errSignature, "signature"},
		{"key set unchanged", func(*fakeKeycloak) {}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeKeycloak(t)
			e, tel := start(t, f.config())
			tok := f.sign(f.claims(time.Hour))
			_, err := e.Authenticate(context.Background(), bearerHeader(tok))
			require.NoError(t, err)

			tt.change(f)
			require.NoError(t, e.keys.refresh(context.Background())) // the background refresh
			_, err = e.Authenticate(context.Background(), bearerHeader(tok))
			if tt.want == nil {
				require.NoError(t, err)
				assert.Equal(t, int64(1), count(t, tel, "requests_accepted", attribute.String("cache", "hit")),
					"a refresh that keeps the key keeps the cache")
				return
			}
			require.ErrorIs(t, err, tt.want, "a cached token is not honoured once its key is gone")
			assert.Equal(t, int64(1), count(t, tel, "requests_rejected", attribute.String("reason", tt.reason)))
			_, err = e.Authenticate(context.Background(), bearerHeader(tok))
			require.ErrorIs(t, err, tt.want, "nor later")
		})
	}
}

func TestCachedTokenRevalidatedAfterTTL(t *testing.T) {
	f := newFakeKeycloak(t)
	cfg := f.config()
	cfg.Server.TokenCacheTTL = time.Minute
	e, tel := start(t, cfg)
	tok := f.sign(f.claims(time.Hour))
	for range 2 {
		_, err := e.Authenticate(context.Background(), bearerHeader(tok))
		require.NoError(t, err)
	}
	assert.Equal(t, int64(1), count(t, tel, "requests_accepted", attribute.String("cache", "miss")))

	e.now = func() time.Time { return time.Now().Add(2 * time.Minute) } // past the TTL, well before exp
	_, err := e.Authenticate(context.Background(), bearerHeader(tok))
	require.NoError(t, err)
	assert.Equal(t, int64(2), count(t, tel, "requests_accepted", attribute.String("cache", "miss")), "validated again")
	_, err = e.Authenticate(context.Background(), bearerHeader(tok))
	require.NoError(t, err)
	assert.Equal(t, int64(2), count(t, tel, "requests_accepted", attribute.String("cache", "hit")), "and cached again")
}
