package keycloakauth

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/attribute"

	"github.com/nerc-project/ai-telemetry-collector/internal/authz"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

var (
	hubMoc     = topology.HubResource("moc")
	clusterOCP = topology.ClusterResource("moc", "nerc-ocp-prod")
	projectA   = gpustore.ProjectKey{Hub: "moc", Cluster: "nerc-ocp-prod", Namespace: "team-a"}
	projectB   = gpustore.ProjectKey{Hub: "moc", Cluster: "nerc-ocp-prod", Namespace: "team-b"}
)

func TestReadScopeMapsGrants(t *testing.T) {
	type grant struct {
		resource string
		scopes   []string
	}
	tests := []struct {
		name     string
		grants   []grant
		want     gpustore.Scope
		invalid  int64 // granted resources ignored as not the topology's
		unmapped int64 // granted resources whose kind and scopes give no reading
	}{
		{name: "nothing granted (403)"},
		{
			name:   "member of two projects",
			grants: []grant{{teamA, []string{"GET"}}, {teamB, []string{"GET"}}},
			want:   gpustore.Scope{Projects: []gpustore.ProjectKey{projectA, projectB}},
		},
		{
			name:   "cluster manager",
			grants: []grant{{clusterOCP, []string{"GETManager"}}},
			want:   gpustore.Scope{Clusters: []gpustore.ClusterKey{{Hub: "moc", Cluster: "nerc-ocp-prod"}}},
		},
		{
			name:   "hub manager, and a project by membership",
			grants: []grant{{hubMoc, []string{"GET", "GETManager"}}, {teamA, []string{"GET", "GETManager"}}},
			want:   gpustore.Scope{Hubs: []string{"moc"}, Projects: []gpustore.ProjectKey{projectA}},
		},
		{
			name: "the wrong scope on each kind reads nothing",
			grants: []grant{
				{teamA, []string{"GETManager"}}, {clusterOCP, []string{"GET"}}, {hubMoc, []string{"GET"}},
			},
			unmapped: 3,
		},
		{
			name: "node and GPU resources are recognised and ignored",
			grants: []grant{
				{topology.NodeResource("moc", "nerc-ocp-prod", "wrk-10"), []string{"GET", "GETManager"}},
				{topology.GPUDeviceResource("moc", "nerc-ocp-prod", "wrk-10", "0"), []string{"GET", "GETManager"}},
				{teamB, []string{"GET"}},
			},
			want:     gpustore.Scope{Projects: []gpustore.ProjectKey{projectB}},
			unmapped: 2,
		},
		{
			name: "names that are not the topology's are never trusted",
			grants: []grant{
				{"HUB", []string{"GET", "GETManager"}},
				{"Default Resource", []string{"GET"}},
				{"team-a-dashboard", []string{"GET"}},
				{"HUB-MOC-CLUSTER-nerc-ocp-prod", []string{"GETManager"}},
				{"HUB-moc-CLUSTER-nerc-ocp-prod-PROJECT-Team-B", []string{"GET"}},
				{"HUB-moc-CLUSTER-nerc-ocp-prod-PROJECT-team-a-PROJECT-team-b", []string{"GET"}},
				{"HUB-moc-CLUSTER-nerc-ocp-prod-PROJECT-", []string{"GET"}},
				{teamA, []string{"GET"}},
			},
			want:    gpustore.Scope{Projects: []gpustore.ProjectKey{projectA}},
			invalid: 7,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeKeycloak(t)
			e, tel := start(t, f.config())
			tok := f.sign(f.claims(5 * time.Minute))
			for _, g := range tt.grants {
				f.grant(tok, g.resource, g.scopes...)
			}
			scope, err := e.ReadScope(authenticated(t, e, tok))
			require.NoError(t, err)
			assert.Equal(t, tt.want, scope)
			assert.Equal(t, int64(1), f.umas.Load())
			assert.Equal(t, tt.invalid, count(t, tel, "read_scope_ignored_resources", attribute.String("reason", "invalid_name")))
			assert.Equal(t, tt.unmapped, count(t, tel, "read_scope_ignored_resources", attribute.String("reason", "unmapped")))
			result := "granted"
			if tt.want.Empty() {
				result = "empty"
			}
			assert.Equal(t, int64(1), count(t, tel, "read_scopes", attribute.String("result", result), attribute.String("source", "keycloak")))
			assert.Equal(t, int64(1), count(t, tel, "keycloak_requests",
				attribute.String("kind", "uma_permissions"), attribute.String("outcome", "ok")))
		})
	}
}

func TestReadScopeConfiguredScopes(t *testing.T) {
	f := newFakeKeycloak(t)
	cfg := f.config()
	cfg.Authorization.ReadScope, cfg.Authorization.ManagerScope = "view", "manage"
	e, _ := start(t, cfg)
	tok := f.sign(f.claims(5 * time.Minute))
	f.grant(tok, teamA, "GET")  // the default read scope, not this one's
	f.grant(tok, teamB, "view") // this one's
	f.grant(tok, clusterOCP, "GETManager")
	f.grant(tok, hubMoc, "manage")
	scope, err := e.ReadScope(authenticated(t, e, tok))
	require.NoError(t, err)
	assert.Equal(t, gpustore.Scope{Hubs: []string{"moc"}, Projects: []gpustore.ProjectKey{projectB}}, scope)
}

func TestReadScopeCachedPerToken(t *testing.T) {
	f := newFakeKeycloak(t)
	cfg := f.config()
	cfg.Authorization.DecisionCacheTTL = time.Minute
	e, tel := start(t, cfg)
	tok := f.sign(f.claims(time.Hour))
	f.grant(tok, teamA, "GET")
	nothing := f.sign(f.claims(time.Hour)) // another token, granted nothing
	ctx := authenticated(t, e, tok)

	want := gpustore.Scope{Projects: []gpustore.ProjectKey{projectA}}
	for range 10 {
		scope, err := e.ReadScope(ctx)
		require.NoError(t, err)
		require.Equal(t, want, scope)
	}
	assert.Equal(t, int64(1), f.umas.Load(), "one Keycloak request per token")
	assert.Equal(t, int64(9), count(t, tel, "read_scopes", attribute.String("result", "granted"), attribute.String("source", "cache")))

	for range 3 {
		scope, err := e.ReadScope(authenticated(t, e, nothing))
		require.NoError(t, err)
		require.True(t, scope.Empty())
	}
	assert.Equal(t, int64(2), f.umas.Load(), "an empty scope is cached too")

	// What a caller does with its scope does not reach the cache.
	scope, err := e.ReadScope(ctx)
	require.NoError(t, err)
	scope.Projects[0].Namespace = "team-b"
	scope, err = e.ReadScope(ctx)
	require.NoError(t, err)
	require.Equal(t, want, scope)

	f.grant(tok, teamB, "GET") // granted in Keycloak meanwhile
	e.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	scope, err = e.ReadScope(ctx)
	require.NoError(t, err)
	assert.Equal(t, gpustore.Scope{Projects: []gpustore.ProjectKey{projectA, projectB}}, scope, "after the TTL Keycloak is asked again")
	assert.Equal(t, int64(3), f.umas.Load())
}

func TestReadScopeNeverOutlivesToken(t *testing.T) {
	f := newFakeKeycloak(t)
	cfg := f.config()
	cfg.Server.ClockSkew = time.Minute
	cfg.Authorization.DecisionCacheTTL = time.Hour
	e, _ := start(t, cfg)
	tok := f.sign(f.claims(time.Minute))
	f.grant(tok, teamA, "GET")
	ctx := authenticated(t, e, tok)
	_, err := e.ReadScope(ctx)
	require.NoError(t, err)

	// Past exp but within the clock skew: the token still counts, its
	// cached scope does not.
	e.now = func() time.Time { return time.Now().Add(90 * time.Second) }
	_, err = e.ReadScope(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(2), f.umas.Load(), "the scope was cached until the token's exp, not for the TTL")

	e.now = func() time.Time { return time.Now().Add(3 * time.Minute) }
	_, err = e.ReadScope(ctx)
	require.ErrorIs(t, err, authz.ErrDenied)
	require.ErrorIs(t, err, errExpired)
	assert.Equal(t, int64(2), f.umas.Load(), "an expired token is not asked about")
}

func TestReadScopeKeycloakDown(t *testing.T) {
	f := newFakeKeycloak(t)
	e, tel := start(t, f.config())
	cached, uncached := f.sign(f.claims(time.Hour)), f.sign(f.claims(time.Hour))
	f.grant(cached, teamA, "GET")
	f.grant(uncached, teamB, "GET")
	cachedCtx, uncachedCtx := authenticated(t, e, cached), authenticated(t, e, uncached)
	_, err := e.ReadScope(cachedCtx)
	require.NoError(t, err)

	f.down.Store(true)
	scope, err := e.ReadScope(cachedCtx)
	require.NoError(t, err, "a cached scope keeps working")
	assert.Equal(t, []gpustore.ProjectKey{projectA}, scope.Projects)
	scope, err = e.ReadScope(uncachedCtx)
	require.ErrorIs(t, err, authz.ErrUnavailable, "fail closed, retryable")
	require.NotErrorIs(t, err, authz.ErrDenied)
	assert.True(t, scope.Empty())
	assert.NotContains(t, err.Error(), uncached)
	assert.Equal(t, int64(1), count(t, tel, "read_scopes", attribute.String("result", "error")))
	assert.Equal(t, int64(1), count(t, tel, "keycloak_requests", attribute.String("kind", "uma_permissions"), attribute.String("outcome", "error")))

	f.down.Store(false)
	scope, err = e.ReadScope(uncachedCtx)
	require.NoError(t, err, "errors are not cached")
	assert.Equal(t, []gpustore.ProjectKey{projectB}, scope.Projects)
}

func TestReadScopeKeycloakAnswers(t *testing.T) {
	// Keycloak answers the fake does not give: each fails closed.
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr error
	}{
		{"revoked token", http.StatusBadRequest, `{"error":"invalid_grant","error_description":"Invalid bearer token"}`, authz.ErrDenied},
		{"unauthorized", http.StatusUnauthorized, `{"error":"invalid_token"}`, authz.ErrDenied},
		{"unknown resource server", http.StatusBadRequest, `{"error":"invalid_request","error_description":"Unknown resource server id"}`, authz.ErrUnavailable},
		{"server error", http.StatusInternalServerError, `{"error":"unknown_error"}`, authz.ErrUnavailable},
		{"not a list", http.StatusOK, `{"result":true}`, authz.ErrUnavailable},
		{"truncated list", http.StatusOK, `[{"rsname":"` + teamA + `","scopes":["GET"]},{"rsn`, authz.ErrUnavailable},
		{"list beyond the bound", http.StatusOK, hugeList(), authz.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeKeycloak(t)
			cfg := f.config()
			var asked int
			keycloak := cfg.ServerURL
			proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/token") {
					asked++
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(tt.status)
					_, _ = w.Write([]byte(tt.body))
					return
				}
				http.Redirect(w, r, keycloak+r.URL.Path, http.StatusTemporaryRedirect)
			}))
			t.Cleanup(proxy.Close)
			cfg.ServerURL = proxy.URL
			cfg.Issuer = f.issuer()
			e, _ := start(t, cfg)
			ctx := authenticated(t, e, f.sign(f.claims(time.Hour)))
			for range 2 {
				scope, err := e.ReadScope(ctx)
				require.ErrorIs(t, err, tt.wantErr)
				assert.True(t, scope.Empty())
			}
			assert.Equal(t, 2, asked, "nothing is cached")
		})
	}
}

// hugeList is a valid permissions list longer than maxPermissionsResponse.
func hugeList() string {
	var b strings.Builder
	b.WriteString("[")
	for i := 0; b.Len() < maxPermissionsResponse+1; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"rsid":"%d","rsname":"%s","scopes":["GET"]}`, i,
			topology.ProjectResource("moc", "nerc-ocp-prod", fmt.Sprintf("p-%d", i)))
	}
	b.WriteString("]")
	return b.String()
}

func TestReadScopeRevokedTokenIsADenial(t *testing.T) {
	f := newFakeKeycloak(t)
	e, tel := start(t, f.config())
	tok := f.sign(f.claims(time.Hour))
	f.grant(tok, teamA, "GET")
	f.revoke(tok) // validated here, refused by Keycloak (the session ended)
	_, err := e.ReadScope(authenticated(t, e, tok))
	require.ErrorIs(t, err, authz.ErrDenied)
	require.ErrorIs(t, err, errTokenRefused)
	require.NotErrorIs(t, err, authz.ErrUnavailable, "asking again will not help")
	assert.Equal(t, int64(1), count(t, tel, "read_scopes", attribute.String("result", "refused")))
}

func TestReadScopeBudget(t *testing.T) {
	f := newFakeKeycloak(t)
	cfg := f.config()
	cfg.Authorization.MaxDecisionsPerMinute = 60
	cfg.Authorization.DecisionBurst = 2
	e, tel := start(t, cfg)
	clock := time.Now() // frozen: the budget refills only when the test says
	e.now = func() time.Time { return clock }
	tokens := make([]string, 3) // three tokens of one subject
	for i := range tokens {
		tokens[i] = f.sign(f.claims(time.Hour))
		f.grant(tokens[i], teamA, "GET")
		f.allow(tokens[i], teamA, true)
	}
	_, err := e.ReadScope(authenticated(t, e, tokens[0]))
	require.NoError(t, err)
	require.NoError(t, e.Authorize(authenticated(t, e, tokens[1]), teamA), "Authorize spends the same budget")
	_, err = e.ReadScope(authenticated(t, e, tokens[2]))
	require.ErrorIs(t, err, authz.ErrUnavailable)
	require.ErrorIs(t, err, errDecisionBudget)
	assert.Equal(t, int64(2), f.umas.Load(), "Keycloak is not asked beyond the budget")
	assert.Equal(t, int64(1), count(t, tel, "read_scopes", attribute.String("result", "throttled"), attribute.String("source", "budget")))

	_, err = e.ReadScope(authenticated(t, e, tokens[0]))
	require.NoError(t, err, "a cached scope costs nothing")

	clock = clock.Add(time.Second) // one question refilled
	_, err = e.ReadScope(authenticated(t, e, tokens[2]))
	require.NoError(t, err, "nothing was cached for the throttled question")
}

func TestReadScopeCollapsesConcurrentQuestions(t *testing.T) {
	f := newFakeKeycloak(t)
	f.umaArrived = make(chan struct{}, 100)
	f.umaRelease = make(chan struct{})
	e, _ := start(t, f.config())
	tok := f.sign(f.claims(5 * time.Minute))
	f.grant(tok, teamA, "GET")
	ctx := authenticated(t, e, tok)

	var wg, started sync.WaitGroup
	scopes := make([]gpustore.Scope, 50)
	for i := range scopes {
		started.Add(1)
		wg.Go(func() {
			started.Done()
			var err error
			scopes[i], err = e.ReadScope(ctx)
			assert.NoError(t, err)
		})
	}
	<-f.umaArrived // the first question reached Keycloak and waits there
	started.Wait()
	time.Sleep(50 * time.Millisecond) // let the others reach ReadScope; the count below can only be too low, never wrongly high
	close(f.umaRelease)
	wg.Wait()
	assert.Equal(t, int64(1), f.umas.Load())
	for i := range scopes {
		assert.Equal(t, []gpustore.ProjectKey{projectA}, scopes[i].Projects)
	}
	scopes[0].Projects[0].Namespace = "x"
	assert.Equal(t, "team-a", scopes[1].Projects[0].Namespace, "each caller has its own copy")
}

func TestReadScopeNeedsAuthentication(t *testing.T) {
	f := newFakeKeycloak(t)
	e, _ := start(t, f.config())
	_, err := e.ReadScope(context.Background())
	require.ErrorIs(t, err, errNotAuthenticated)
	_, err = e.ReadScope(client.NewContext(context.Background(), client.Info{Auth: fakeAuthData{}}))
	require.ErrorIs(t, err, errNotAuthenticated, "another authenticator's data is not trusted")
	other, _ := start(t, f.config())
	_, err = e.ReadScope(authenticated(t, other, f.sign(f.claims(time.Minute))))
	require.ErrorIs(t, err, errNotAuthenticated, "nor another keycloakauth's")
	assert.Zero(t, f.umas.Load())

	cfg := f.config()
	cfg.Authorization.Mode = ModeNone
	e, _ = start(t, cfg)
	_, err = e.ReadScope(authenticated(t, e, f.sign(f.claims(time.Minute))))
	require.ErrorIs(t, err, errNoAuthorization)
}

func TestLookupReadScoper(t *testing.T) {
	f := newFakeKeycloak(t)
	e, _ := start(t, f.config())
	id := component.MustNewIDWithName("keycloakauth", "site")
	r, err := authz.LookupReadScoper(hostWith{id: e}, id)
	require.NoError(t, err)
	assert.Same(t, e, r)
}

func TestFakeKeycloakPermissionsAsKeycloak(t *testing.T) {
	// The fake evaluates only the resources (and scopes) a permission
	// parameter names, as Keycloak does; ReadScope sends none.
	f := newFakeKeycloak(t)
	tok := f.sign(f.claims(time.Minute))
	f.grant(tok, teamA, "GET", "GETManager")
	f.grant(tok, teamB, "GET")
	for _, tt := range []struct {
		permissions []string
		want        string
	}{
		{nil, teamA + " " + teamB},
		{[]string{teamB}, teamB},
		{[]string{teamA + "#GETManager"}, teamA + ":GETManager"},
		{[]string{clusterOCP}, "403"},
	} {
		rec := httptest.NewRecorder()
		f.permissions(rec, tok, tt.permissions)
		body := rec.Body.String()
		switch tt.want {
		case "403":
			assert.Equal(t, http.StatusForbidden, rec.Code)
		default:
			assert.Equal(t, http.StatusOK, rec.Code)
			for _, w := range strings.Fields(tt.want) {
				resource, scope, _ := strings.Cut(w, ":")
				assert.Contains(t, body, `"rsname":"`+resource+`"`)
				if scope != "" {
					assert.NotContains(t, body, `"GET"`)
				}
			}
		}
	}
	rec := httptest.NewRecorder()
	f.permissions(rec, tok[:len(tok)-4]+"AAAA", nil)
	assert.Equal(t, http.StatusBadRequest, rec.Code, "a tampered token is not accepted")
}
