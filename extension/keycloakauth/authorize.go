package keycloakauth // import "github.com/nerc-project/ai-telemetry-collector/extension/keycloakauth"

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/nerc-project/ai-telemetry-collector/internal/authz"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

var (
	errNotAuthenticated = errors.New("no keycloakauth authentication in the request context")
	errNoAuthorization  = errors.New("keycloakauth authorization.mode is not resource")
	errNoDecision       = errors.New("no authorization decision from Keycloak")
)

// decisionKey identifies one decision: a token (by hash, so the cache holds no
// tokens) and a resource.
type decisionKey struct {
	token    [sha256.Size]byte
	resource string
}

// decision is a cached answer, reused until expires.
type decision struct {
	allowed bool
	expires time.Time
}

func decisionAttrs(decision, source string) metric.MeasurementOption {
	return metric.WithAttributeSet(attribute.NewSet(attribute.String("decision", decision), attribute.String("source", source)))
}

var (
	withAllowedCache    = decisionAttrs("allowed", "cache")
	withDeniedCache     = decisionAttrs("denied", "cache")
	withAllowedKeycloak = decisionAttrs("allowed", "keycloak")
	withDeniedKeycloak  = decisionAttrs("denied", "keycloak")
	withErrorKeycloak   = decisionAttrs("error", "keycloak")
	withDeniedInvalid   = decisionAttrs("denied", "invalid_resource")
)

// Authorize asks whether the caller authenticated by this extension (in ctx)
// holds the configured scope on resource. A resource name that could carry
// Keycloak's separators is denied without asking. Decisions are cached per (token,
// resource) for decision_cache_ttl, at most until the token expires;
// concurrent identical questions share one request to Keycloak. When Keycloak
// cannot answer, the request is refused (fail closed) and nothing is cached.
func (e *keycloakAuth) Authorize(ctx context.Context, resource string) error {
	if e.decisions == nil {
		return errNoAuthorization
	}
	data, ok := client.FromContext(ctx).Auth.(*authData)
	if !ok || data.owner != e {
		return errNotAuthenticated
	}
	// Keycloak reads "permission" up to the first '#' as the resource: a
	// name carrying one would be decided on its prefix (another project).
	if err := topology.ValidateResource(resource); err != nil {
		e.telemetry.KeycloakauthAuthorizationDecisions.Add(ctx, 1, withDeniedInvalid)
		return fmt.Errorf("%w: %w", authz.ErrDenied, err)
	}
	now := e.now()
	if now.After(data.expiry.Add(e.cfg.Server.ClockSkew)) {
		return fmt.Errorf("%w: %w", authz.ErrDenied, errExpired)
	}
	key := decisionKey{token: data.tokenHash, resource: resource}
	if d, ok := e.decisions.Get(key); ok && now.Before(d.expires) {
		if d.allowed {
			e.telemetry.KeycloakauthAuthorizationDecisions.Add(ctx, 1, withAllowedCache)
			return nil
		}
		e.telemetry.KeycloakauthAuthorizationDecisions.Add(ctx, 1, withDeniedCache)
		return fmt.Errorf("%w on %s", authz.ErrDenied, resource)
	}
	// The shared call must not die with the first caller's context.
	v, err, _ := e.inflight.Do(string(key.token[:])+"\x00"+resource, func() (any, error) {
		callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.Timeout)
		defer cancel()
		allowed, err := e.askKeycloak(callCtx, data.raw, resource)
		if err != nil {
			return false, err
		}
		// A decision never outlives the token it was made for.
		expires := e.now().Add(e.cfg.Authorization.DecisionCacheTTL)
		if data.expiry.Before(expires) {
			expires = data.expiry
		}
		e.decisions.Add(key, decision{allowed: allowed, expires: expires})
		return allowed, nil
	})
	if err != nil {
		e.telemetry.KeycloakauthAuthorizationDecisions.Add(ctx, 1, withErrorKeycloak)
		return fmt.Errorf("%w on %s: %w", errNoDecision, resource, err)
	}
	if allowed, _ := v.(bool); allowed {
		e.telemetry.KeycloakauthAuthorizationDecisions.Add(ctx, 1, withAllowedKeycloak)
		return nil
	}
	e.telemetry.KeycloakauthAuthorizationDecisions.Add(ctx, 1, withDeniedKeycloak)
	return fmt.Errorf("%w on %s", authz.ErrDenied, resource)
}

// askKeycloak is the UMA ticket grant in decision mode: Keycloak evaluates the
// resource server's policies for the token's subject and answers
// {"result": true} (200) or 403.
func (e *keycloakAuth) askKeycloak(ctx context.Context, token, resource string) (allowed bool, err error) {
	defer func() { e.countRequest(ctx, "uma", err) }()
	form := url.Values{
		"grant_type":    {"urn:ietf:params:oauth:grant-type:uma-ticket"},
		"audience":      {e.cfg.Authorization.ResourceServer},
		"permission":    {resource + "#" + e.cfg.Authorization.Scope},
		"response_mode": {"decision"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.cfg.tokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.httpClient.Do(req)
	if err != nil {
		return false, err
	}
	defer func() { _ = resp.Body.Close() }()
	var body struct {
		Result bool   `json:"result"`
		Error  string `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, maxKeycloakResponse)).Decode(&body)
	switch {
	case resp.StatusCode == http.StatusOK:
		return body.Result, nil
	case resp.StatusCode == http.StatusForbidden, resp.StatusCode == http.StatusUnauthorized:
		return false, nil
	case resp.StatusCode == http.StatusBadRequest && body.Error == "invalid_resource":
		// The resource does not exist in Keycloak: nobody holds it.
		return false, nil
	}
	return false, fmt.Errorf("%w %d (%s)", errKeycloakStatus, resp.StatusCode, body.Error)
}
