package keycloakauth // import "github.com/nerc-project/ai-telemetry-collector/extension/keycloakauth"

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// Reasons a request is refused: the errors callers get (a receiver answers
// 401 with the message) and, as the attribute reason, the rejection counter.
// None of them includes the token.
var (
	errMissingHeader   = errors.New("missing bearer token")
	errBadHeader       = errors.New("authorization header is not \"Bearer <token>\"")
	errMalformed       = errors.New("token is not a signed JWT")
	errAlgorithm       = errors.New("token signature algorithm not allowed")
	errKeysUnavailable = errors.New("keycloak signing keys not loaded yet")
	errUnknownKey      = errors.New("token signed with an unknown key")
	errSignature       = errors.New("token signature invalid")
	errIssuer          = errors.New("token issuer not accepted")
	errAudience        = errors.New("token audience not accepted")
	errExpired         = errors.New("token expired")
	errNotYetValid     = errors.New("token not valid yet")
	errIssuedInFuture  = errors.New("token issued in the future")
	errNoExpiry        = errors.New("token has no expiry")
	errParty           = errors.New("token issued to a client that is not accepted (azp)")
	errTokenType       = errors.New("not an access token")
	errNotServer       = errors.New("keycloakauth has no server side configured (server.audiences)")
	errTokenTooLarge   = errors.New("token larger than server.max_token_size")
	errMissingRole     = errors.New("token lacks a required role")
)

var reasons = map[error]string{
	errMissingHeader: "missing_token", errBadHeader: "bad_header", errMalformed: "malformed",
	errAlgorithm: "algorithm", errKeysUnavailable: "keys_unavailable", errUnknownKey: "unknown_key",
	errSignature: "signature", errIssuer: "issuer", errAudience: "audience", errExpired: "expired",
	errTokenTooLarge: "token_too_large", errMissingRole: "missing_role",
	errNotYetValid: "not_yet_valid", errIssuedInFuture: "issued_in_future", errNoExpiry: "no_expiry",
	errParty: "authorized_party", errTokenType: "token_type", errNotServer: "not_configured",
}

// everyAlgorithm parses any JWS, to tell "wrong algorithm" from "not a JWT".
var everyAlgorithm = []jose.SignatureAlgorithm{
	jose.HS256, jose.HS384, jose.HS512, jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384,
	jose.PS512, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

var (
	withCacheHit  = metric.WithAttributeSet(attribute.NewSet(attribute.String("cache", "hit")))
	withCacheMiss = metric.WithAttributeSet(attribute.NewSet(attribute.String("cache", "miss")))
)

// keycloakClaims are the claims of a Keycloak access token this extension reads.
type keycloakClaims struct {
	jwt.Claims
	Type              string   `json:"typ"`
	AuthorizedParty   string   `json:"azp"`
	PreferredUsername string   `json:"preferred_username"`
	Groups            []string `json:"groups"`
	RealmAccess       struct {
		Roles []string `json:"roles"`
	} `json:"realm_access"`
	ResourceAccess map[string]struct {
		Roles []string `json:"roles"`
	} `json:"resource_access"`
}

// Authenticate validates the bearer token and puts what it says in the
// context's client.Info. A token once validated is remembered (until it
// expires, at most token_cache_ttl, while its key is published), so only the
// first request of each token costs a signature check.
func (e *keycloakAuth) Authenticate(ctx context.Context, headers map[string][]string) (context.Context, error) {
	data, hit, err := e.authenticate(ctx, headers)
	if err != nil {
		why := reason(err)
		e.telemetry.KeycloakauthRequestsRejected.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", why)))
		e.logger.Debug("Request not authenticated", zap.String("reason", why))
		// The caller learns nothing but "unauthorized": whether a token's
		// signature held or Keycloak is reachable stays in the counter and
		// debug log.
		return ctx, rejection{cause: err}
	}
	if hit {
		e.telemetry.KeycloakauthRequestsAccepted.Add(ctx, 1, withCacheHit)
	} else {
		e.telemetry.KeycloakauthRequestsAccepted.Add(ctx, 1, withCacheMiss)
	}
	info := client.FromContext(ctx)
	info.Auth = data
	return client.NewContext(ctx, info), nil
}

// rejection is what Authenticate returns: a generic message for the client,
// with the specific reason kept for errors.Is.
type rejection struct{ cause error }

func (r rejection) Error() string { return "unauthorized" }

func (r rejection) Unwrap() error { return r.cause }

func reason(err error) string {
	for e, r := range reasons {
		if errors.Is(err, e) {
			return r
		}
	}
	return "other"
}

func (e *keycloakAuth) authenticate(ctx context.Context, headers map[string][]string) (*authData, bool, error) {
	if len(e.cfg.Server.Audiences) == 0 {
		return nil, false, errNotServer
	}
	raw, err := bearer(headers, e.cfg.Server.Header)
	if err != nil {
		return nil, false, err
	}
	if len(raw) > e.cfg.Server.MaxTokenSize {
		return nil, false, errTokenTooLarge
	}
	now := e.now()
	if c, ok := e.tokens.Get(raw); ok {
		if now.After(c.data.expiry.Add(e.cfg.Server.ClockSkew)) {
			e.tokens.Remove(raw)
			return nil, false, errExpired
		}
		// Honoured only while the key that verified it is still published
		// (a key Keycloak withdrew must stop validating its tokens at the
		// next refresh, not at their exp) and for at most token_cache_ttl;
		// otherwise the token is validated again from scratch.
		if key, ok := e.keys.get(c.data.kid); ok && key == c.key && now.Before(c.until) {
			return c.data, true, nil
		}
		e.tokens.Remove(raw)
	}
	data, key, err := e.validate(ctx, raw, now)
	if err != nil {
		return nil, false, err
	}
	e.tokens.Add(raw, cachedToken{data: data, key: key, until: now.Add(e.cfg.Server.TokenCacheTTL)})
	return data, false, nil
}

// cachedToken is a validated token: what it says, the key that verified it,
// and until when it is honoured without validating again.
type cachedToken struct {
	data  *authData
	key   *jose.JSONWebKey
	until time.Time
}

// bearer finds the header case-insensitively (HTTP canonicalizes, gRPC
// lowercases) and takes the token from its first value.
func bearer(headers map[string][]string, name string) (string, error) {
	var values []string
	for k, v := range headers {
		if strings.EqualFold(k, name) {
			values = v
			break
		}
	}
	if len(values) == 0 || values[0] == "" {
		return "", errMissingHeader
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	// IndexByte is vectorized; ContainsAny walks a kilobyte token byte by
	// byte and was most of a cached request's time.
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || strings.IndexByte(token, ' ') >= 0 || strings.IndexByte(token, '\t') >= 0 {
		return "", errBadHeader
	}
	return token, nil
}

func (e *keycloakAuth) validate(ctx context.Context, raw string, now time.Time) (*authData, *jose.JSONWebKey, error) {
	tok, err := jwt.ParseSigned(raw, e.cfg.Server.algorithms())
	if err != nil {
		if _, anyErr := jwt.ParseSigned(raw, everyAlgorithm); anyErr == nil {
			return nil, nil, errAlgorithm
		}
		return nil, nil, errMalformed
	}
	if len(tok.Headers) != 1 {
		return nil, nil, errMalformed
	}
	hdr := tok.Headers[0]
	key, ok := e.keys.lookup(ctx, hdr.KeyID)
	if !ok {
		if !e.keys.loaded() {
			return nil, nil, errKeysUnavailable
		}
		return nil, nil, errUnknownKey
	}
	if key.Algorithm != "" && key.Algorithm != hdr.Algorithm {
		return nil, nil, errAlgorithm
	}
	var claims keycloakClaims
	if err := tok.Claims(key.Key, &claims); err != nil {
		return nil, nil, errSignature
	}
	if err := e.checkClaims(&claims, now); err != nil {
		return nil, nil, err
	}
	data := newAuthData(raw, &claims)
	data.owner = e
	data.kid = hdr.KeyID
	for _, role := range e.cfg.Server.RequiredRoles {
		if !slices.Contains(data.roles, role) {
			return nil, nil, errMissingRole
		}
	}
	return data, key, nil
}

func (e *keycloakAuth) checkClaims(c *keycloakClaims, now time.Time) error {
	if c.Expiry == nil {
		return errNoExpiry
	}
	err := c.ValidateWithLeeway(jwt.Expected{
		Issuer:      e.cfg.expectedIssuer(),
		AnyAudience: e.cfg.Server.Audiences,
		Time:        now,
	}, e.cfg.Server.ClockSkew)
	switch {
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return errIssuer
	case errors.Is(err, jwt.ErrInvalidAudience):
		return errAudience
	case errors.Is(err, jwt.ErrExpired):
		return errExpired
	case errors.Is(err, jwt.ErrNotValidYet):
		return errNotYetValid
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return errIssuedInFuture
	case err != nil:
		return fmt.Errorf("%w: %w", errMalformed, err)
	}
	// Keycloak marks access tokens typ Bearer, ID and refresh tokens ID and
	// Refresh; only access tokens may be presented, and a token without typ
	// is not one Keycloak issued as an access token.
	if !strings.EqualFold(c.Type, "Bearer") {
		return errTokenType
	}
	if len(e.cfg.Server.AuthorizedParties) > 0 && !slices.Contains(e.cfg.Server.AuthorizedParties, c.AuthorizedParty) {
		return errParty
	}
	return nil
}

func newAuthData(raw string, c *keycloakClaims) *authData {
	roles := slices.Clone(c.RealmAccess.Roles)
	for clientID, access := range c.ResourceAccess {
		for _, r := range access.Roles {
			roles = append(roles, clientID+":"+r)
		}
	}
	slices.Sort(roles[len(c.RealmAccess.Roles):])
	return &authData{
		raw:       raw,
		tokenHash: sha256.Sum256([]byte(raw)),
		expiry:    c.Expiry.Time(),
		subject:   c.Subject,
		clientID:  c.AuthorizedParty,
		username:  c.PreferredUsername,
		roles:     roles,
		groups:    c.Groups,
	}
}
