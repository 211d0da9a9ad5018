package keycloakauth // import "github.com/nerc-project/ai-telemetry-collector/extension/keycloakauth"

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/nerc-project/ai-telemetry-collector/internal/authz"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// errTokenRefused: Keycloak does not accept, for authorization, a token this
// extension validated (the user's session ended, the token was revoked). It
// is a denial, not an outage: asking again will not help.
var errTokenRefused = errors.New("keycloak refuses the token for authorization")

// maxPermissionsResponse bounds Keycloak's list of granted resources: about
// 120 bytes each, room for some 70,000. A longer list is an error (fail
// closed), never read in part.
const maxPermissionsResponse = 8 << 20

// readScope is a caller's cached read scope, reused until expires.
type readScope struct {
	scope   gpustore.Scope
	expires time.Time
}

// grantedPermission is one entry of the UMA grant's answer in
// response_mode=permissions: a resource and the scopes granted on it.
type grantedPermission struct {
	ResourceName string   `json:"rsname"`
	Scopes       []string `json:"scopes"`
}

func readScopeAttrs(result, source string) metric.MeasurementOption {
	return metric.WithAttributeSet(attribute.NewSet(attribute.String("result", result), attribute.String("source", source)))
}

var (
	withScopeGrantedCache    = readScopeAttrs("granted", "cache")
	withScopeEmptyCache      = readScopeAttrs("empty", "cache")
	withScopeGrantedKeycloak = readScopeAttrs("granted", "keycloak")
	withScopeEmptyKeycloak   = readScopeAttrs("empty", "keycloak")
	withScopeRefused         = readScopeAttrs("refused", "keycloak")
	withScopeError           = readScopeAttrs("error", "keycloak")
	withScopeThrottled       = readScopeAttrs("throttled", "budget")
	withIgnoredInvalidName   = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "invalid_name")))
	withIgnoredUnmapped      = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "unmapped")))
)

// ReadScope says what the caller authenticated by this extension (in ctx)
// may read, from one UMA ticket grant in response_mode=permissions without a
// permission parameter: Keycloak evaluates every resource of the resource
// server for the caller and lists those granted, so a caller of 500 projects
// costs one request, not 500. A project's resource with read_scope grants
// the project, a cluster's or hub's with manager_scope all of it; any other
// grant is ignored (counted). Nothing granted (Keycloak's 403) is the zero
// Scope, not an error.
//
// The answer is cached per token (by hash) for decision_cache_ttl and never
// beyond the token's expiry; concurrent questions of one token share one
// request, charged to the caller's max_decisions_per_minute like Authorize's.
// When Keycloak cannot answer or the budget is spent, the error wraps
// authz.ErrUnavailable and nothing is cached; when Keycloak refuses the
// token, or it has expired, the error wraps authz.ErrDenied.
func (e *keycloakAuth) ReadScope(ctx context.Context) (gpustore.Scope, error) {
	if e.readScopes == nil {
		return gpustore.Scope{}, errNoAuthorization
	}
	data, ok := client.FromContext(ctx).Auth.(*authData)
	if !ok || data.owner != e {
		return gpustore.Scope{}, errNotAuthenticated
	}
	now := e.now()
	if now.After(data.expiry.Add(e.cfg.Server.ClockSkew)) {
		return gpustore.Scope{}, fmt.Errorf("%w: %w", authz.ErrDenied, errExpired)
	}
	if c, ok := e.readScopes.Get(data.tokenHash); ok && now.Before(c.expires) {
		if c.scope.Empty() {
			e.telemetry.KeycloakauthReadScopes.Add(ctx, 1, withScopeEmptyCache)
		} else {
			e.telemetry.KeycloakauthReadScopes.Add(ctx, 1, withScopeGrantedCache)
		}
		return cloneScope(c.scope), nil
	}
	// The shared call must not die with the first caller's context.
	v, err, _ := e.readFlight.Do(string(data.tokenHash[:]), func() (any, error) {
		// Charged here, once per question actually sent to Keycloak.
		if !e.budget(data).AllowN(e.now(), 1) {
			return nil, errDecisionBudget
		}
		callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.Timeout)
		defer cancel()
		granted, err := e.askPermissions(callCtx, data.raw)
		if err != nil {
			return nil, err
		}
		scope := e.scopeOf(callCtx, granted)
		// A scope never outlives the token it was granted to.
		expires := e.now().Add(e.cfg.Authorization.DecisionCacheTTL)
		if data.expiry.Before(expires) {
			expires = data.expiry
		}
		e.readScopes.Add(data.tokenHash, readScope{scope: scope, expires: expires})
		return scope, nil
	})
	switch {
	case errors.Is(err, errDecisionBudget):
		e.telemetry.KeycloakauthReadScopes.Add(ctx, 1, withScopeThrottled)
		return gpustore.Scope{}, fmt.Errorf("%w: %w (caller %s)", authz.ErrUnavailable, err, data.caller())
	case errors.Is(err, errTokenRefused):
		e.telemetry.KeycloakauthReadScopes.Add(ctx, 1, withScopeRefused)
		return gpustore.Scope{}, fmt.Errorf("%w: %w", authz.ErrDenied, err)
	case err != nil:
		e.telemetry.KeycloakauthReadScopes.Add(ctx, 1, withScopeError)
		return gpustore.Scope{}, fmt.Errorf("%w: %w: %w", authz.ErrUnavailable, errNoDecision, err)
	}
	scope, _ := v.(gpustore.Scope)
	if scope.Empty() {
		e.telemetry.KeycloakauthReadScopes.Add(ctx, 1, withScopeEmptyKeycloak)
	} else {
		e.telemetry.KeycloakauthReadScopes.Add(ctx, 1, withScopeGrantedKeycloak)
	}
	// Callers sharing one answer each get their own slices.
	return cloneScope(scope), nil
}

// askPermissions is the UMA ticket grant in permissions mode without a
// permission parameter: Keycloak answers 200 with every granted resource of
// the resource server, [{"rsid", "rsname", "scopes"}], or 403 when none is.
func (e *keycloakAuth) askPermissions(ctx context.Context, token string) (granted []grantedPermission, err error) {
	defer func() { e.countRequest(ctx, "uma_permissions", err) }()
	form := url.Values{
		"grant_type":    {"urn:ietf:params:oauth:grant-type:uma-ticket"},
		"audience":      {e.cfg.Authorization.ResourceServer},
		"response_mode": {"permissions"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.cfg.tokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body := io.LimitReader(resp.Body, maxPermissionsResponse)
	if resp.StatusCode == http.StatusOK {
		// A list cut by the limit does not decode: it fails whole.
		if err := json.NewDecoder(body).Decode(&granted); err != nil {
			return nil, fmt.Errorf("granted permissions: %w", err)
		}
		return granted, nil
	}
	var fail struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(body).Decode(&fail)
	switch {
	case resp.StatusCode == http.StatusForbidden:
		return nil, nil // nothing granted
	case resp.StatusCode == http.StatusUnauthorized,
		resp.StatusCode == http.StatusBadRequest && fail.Error == "invalid_grant":
		// Keycloak's answer to a token it does not accept (400
		// invalid_grant "Invalid bearer token").
		return nil, fmt.Errorf("%w (%d %s)", errTokenRefused, resp.StatusCode, fail.Error)
	}
	return nil, fmt.Errorf("%w %d (%s)", errKeycloakStatus, resp.StatusCode, fail.Error)
}

// scopeOf maps granted resources to what they let read; names that are not
// the topology's, and grants that give no reading, are ignored and counted.
func (e *keycloakAuth) scopeOf(ctx context.Context, granted []grantedPermission) gpustore.Scope {
	readScope, managerScope := e.cfg.Authorization.ReadScope, e.cfg.Authorization.ManagerScope
	hubs := map[string]struct{}{}
	clusters := map[gpustore.ClusterKey]struct{}{}
	projects := map[gpustore.ProjectKey]struct{}{}
	var invalid, unmapped int64
	for _, g := range granted {
		r, err := topology.ParseResource(g.ResourceName)
		if err != nil {
			invalid++
			e.logger.Debug("Granted resource ignored: not a topology name", zap.Error(err))
			continue
		}
		switch {
		case r.Kind == topology.ResourceProject && slices.Contains(g.Scopes, readScope):
			projects[gpustore.ProjectKey{Hub: r.Hub, Cluster: r.Cluster, Namespace: r.Namespace}] = struct{}{}
		case r.Kind == topology.ResourceCluster && slices.Contains(g.Scopes, managerScope):
			clusters[gpustore.ClusterKey{Hub: r.Hub, Cluster: r.Cluster}] = struct{}{}
		case r.Kind == topology.ResourceHub && slices.Contains(g.Scopes, managerScope):
			hubs[r.Hub] = struct{}{}
		default:
			unmapped++
		}
	}
	if invalid > 0 {
		e.telemetry.KeycloakauthReadScopeIgnoredResources.Add(ctx, invalid, withIgnoredInvalidName)
	}
	if unmapped > 0 {
		e.telemetry.KeycloakauthReadScopeIgnoredResources.Add(ctx, unmapped, withIgnoredUnmapped)
	}
	// Sorted, so equal grants give equal scopes whatever Keycloak's order.
	return gpustore.Scope{
		Hubs: sortedKeys(hubs, strings.Compare),
		Clusters: sortedKeys(clusters, func(a, b gpustore.ClusterKey) int {
			return cmp.Or(strings.Compare(a.Hub, b.Hub), strings.Compare(a.Cluster, b.Cluster))
		}),
		Projects: sortedKeys(projects, func(a, b gpustore.ProjectKey) int {
			return cmp.Or(strings.Compare(a.Hub, b.Hub), strings.Compare(a.Cluster, b.Cluster), strings.Compare(a.Namespace, b.Namespace))
		}),
	}
}

// sortedKeys is the set's members in order; nil for an empty set.
func sortedKeys[K comparable](set map[K]struct{}, compare func(a, b K) int) []K {
	if len(set) == 0 {
		return nil
	}
	keys := make([]K, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compare)
	return keys
}

// cloneScope copies the slices, so no caller can change a cached scope.
func cloneScope(s gpustore.Scope) gpustore.Scope {
	s.Hubs = slices.Clone(s.Hubs)
	s.Clusters = slices.Clone(s.Clusters)
	s.Projects = slices.Clone(s.Projects)
	return s
}
