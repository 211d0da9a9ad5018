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
	"golang.org/x/time/rate"

	"github.com/nerc-project/ai-telemetry-collector/internal/authz"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

var (
	errNotAuthenticated = errors.New("no keycloakauth authentication in the request context")
	errNoAuthorization  = errors.New("keycloakauth authorization.mode is not resource")
	errNoDecision       = errors.New("no authorization decision from Keycloak")
	// errDecisionBudget is not a denial: the caller answers 503/UNAVAILABLE
	// and the sender retries once the budget has refilled.
	errDecisionBudget = errors.New("caller's budget of Keycloak decisions (authorization.max_decisions_per_minute) spent, retry later")
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

// answer is what Keycloak said about a (token, resource).
type answer int

const (
	answerDenied answer = iota
	answerAllowed
	// answerUnknown: the resource does not exist (invalid_resource), for
	// every token alike.
	answerUnknown
)

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
	withThrottled       = decisionAttrs("throttled", "budget")
)

// Authorize asks whether the caller authenticated by this extension (in ctx)
// holds the configured scope on resource. A resource name that could carry
// Keycloak's separators is denied without asking. Decisions are cached per
// (token, resource) for decision_cache_ttl, at most until the token expires,
// and a resource Keycloak does not know is remembered as such for every
// token; concurrent identical questions share one request to Keycloak, and
// each caller may ask at most max_decisions_per_minute (cached answers are
// free). When Keycloak cannot answer or the budget is spent, the request is
// refused (fail closed) with an error that is not a denial, and nothing is
// cached.
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
	if until, ok := e.unknown.Get(resource); ok && now.Before(until) {
		e.telemetry.KeycloakauthAuthorizationDecisions.Add(ctx, 1, withDeniedCache)
		return fmt.Errorf("%w on %s (no such resource)", authz.ErrDenied, resource)
	}
	// The shared call must not die with the first caller's context.
	v, err, _ := e.inflight.Do(string(key.token[:])+"\x00"+resource, func() (any, error) {
		// Charged here, once per question actually sent to Keycloak.
		if !e.budget(data).AllowN(e.now(), 1) {
			return answerDenied, errDecisionBudget
		}
		callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.Timeout)
		defer cancel()
		ans, err := e.askKeycloak(callCtx, data.raw, resource)
		if err != nil {
			return answerDenied, err
		}
		expires := e.now().Add(e.cfg.Authorization.DecisionCacheTTL)
		if ans == answerUnknown {
			e.unknown.Add(resource, expires)
			return ans, nil
		}
		// A decision never outlives the token it was made for.
		if data.expiry.Before(expires) {
			expires = data.expiry
		}
		e.decisions.Add(key, decision{allowed: ans == answerAllowed, expires: expires})
		return ans, nil
	})
	switch {
	case errors.Is(err, errDecisionBudget):
		e.telemetry.KeycloakauthAuthorizationDecisions.Add(ctx, 1, withThrottled)
		return fmt.Errorf("%w (caller %s)", err, data.caller())
	case err != nil:
		e.telemetry.KeycloakauthAuthorizationDecisions.Add(ctx, 1, withErrorKeycloak)
		return fmt.Errorf("%w on %s: %w", errNoDecision, resource, err)
	}
	if ans, _ := v.(answer); ans == answerAllowed {
		e.telemetry.KeycloakauthAuthorizationDecisions.Add(ctx, 1, withAllowedKeycloak)
		return nil
	}
	e.telemetry.KeycloakauthAuthorizationDecisions.Add(ctx, 1, withDeniedKeycloak)
	return fmt.Errorf("%w on %s", authz.ErrDenied, resource)
}

// budget is the caller's limiter of questions to Keycloak. Callers are
// remembered in an LRU as large as the token cache; one evicted and seen
// again starts with a full burst.
func (e *keycloakAuth) budget(data *authData) *rate.Limiter {
	caller := data.caller()
	if lim, ok := e.budgets.Get(caller); ok {
		return lim
	}
	a := e.cfg.Authorization
	lim := rate.NewLimiter(rate.Limit(float64(a.MaxDecisionsPerMinute)/60), a.DecisionBurst)
	// Two first questions of one caller racing here may each get a limiter;
	// the last one stays. That grants at most one extra burst, once.
	e.budgets.Add(caller, lim)
	return lim
}

// askKeycloak is the UMA ticket grant in decision mode: Keycloak evaluates the
// resource server's policies for the token's subject and answers
// {"result": true} (200) or 403.
func (e *keycloakAuth) askKeycloak(ctx context.Context, token, resource string) (ans answer, err error) {
	defer func() { e.countRequest(ctx, "uma", err) }()
	form := url.Values{
		"grant_type":    {"urn:ietf:params:oauth:grant-type:uma-ticket"},
		"audience":      {e.cfg.Authorization.ResourceServer},
		"permission":    {resource + "#" + e.cfg.Authorization.Scope},
		"response_mode": {"decision"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.cfg.tokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		return answerDenied, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.httpClient.Do(req)
	if err != nil {
		return answerDenied, err
	}
	defer func() { _ = resp.Body.Close() }()
	var body struct {
		Result bool   `json:"result"`
		Error  string `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, maxKeycloakResponse)).Decode(&body)
	switch {
	case resp.StatusCode == http.StatusOK && body.Result:
		return answerAllowed, nil
	case resp.StatusCode == http.StatusOK, resp.StatusCode == http.StatusForbidden, resp.StatusCode == http.StatusUnauthorized:
		return answerDenied, nil
	case resp.StatusCode == http.StatusBadRequest && body.Error == "invalid_resource":
		// The resource does not exist in Keycloak: nobody holds it.
		return answerUnknown, nil
	}
	return answerDenied, fmt.Errorf("%w %d (%s)", errKeycloakStatus, resp.StatusCode, body.Error)
}
