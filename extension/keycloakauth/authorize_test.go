package keycloakauth

import (
	"context"
	"fmt"
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
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

var (
	teamA = topology.ProjectResource("moc", "nerc-ocp-prod", "team-a")
	teamB = topology.ProjectResource("moc", "nerc-ocp-prod", "team-b")
)

func authenticated(t *testing.T, e *keycloakAuth, tok string) context.Context {
	t.Helper()
	ctx, err := e.Authenticate(context.Background(), bearerHeader(tok))
	require.NoError(t, err)
	return ctx
}

func TestAuthorizeDecisions(t *testing.T) {
	f := newFakeKeycloak(t)
	e, tel := start(t, f.config())
	tok := f.sign(f.claims(5 * time.Minute))
	f.allow(tok, teamA, true)
	f.allow(tok, teamB, false)
	ctx := authenticated(t, e, tok)

	require.NoError(t, e.Authorize(ctx, teamA))
	require.ErrorIs(t, e.Authorize(ctx, teamB), authz.ErrDenied)
	require.ErrorIs(t, e.Authorize(ctx, topology.ProjectResource("moc", "nerc-ocp-prod", "unknown")), authz.ErrDenied,
		"a resource Keycloak does not know is denied")
	assert.Equal(t, int64(3), f.umas.Load())

	// Cached: no more requests, same answers.
	for range 10 {
		require.NoError(t, e.Authorize(ctx, teamA))
		require.ErrorIs(t, e.Authorize(ctx, teamB), authz.ErrDenied)
	}
	assert.Equal(t, int64(3), f.umas.Load())
	assert.Equal(t, int64(10), count(t, tel, "authorization_decisions", attribute.String("decision", "allowed"), attribute.String("source", "cache")))
	assert.Equal(t, int64(10), count(t, tel, "authorization_decisions", attribute.String("decision", "denied"), attribute.String("source", "cache")))
	assert.Equal(t, int64(3), count(t, tel, "keycloak_requests", attribute.String("kind", "uma"), attribute.String("outcome", "ok")))

	// Another token is decided on its own.
	other := f.sign(f.claims(5 * time.Minute))
	require.ErrorIs(t, e.Authorize(authenticated(t, e, other), teamA), authz.ErrDenied)
}

func TestAuthorizeFailsClosedWhenKeycloakIsDown(t *testing.T) {
	f := newFakeKeycloak(t)
	e, tel := start(t, f.config())
	tok := f.sign(f.claims(5 * time.Minute))
	f.allow(tok, teamA, true)
	f.allow(tok, teamB, true)
	ctx := authenticated(t, e, tok)
	require.NoError(t, e.Authorize(ctx, teamA))

	f.down.Store(true)
	require.NoError(t, e.Authorize(ctx, teamA), "a cached decision still holds")
	err := e.Authorize(ctx, teamB)
	require.ErrorIs(t, err, errNoDecision, "no decision: refused")
	assert.NotErrorIs(t, err, authz.ErrDenied, "but not reported as a denial")
	assert.NotContains(t, err.Error(), tok)
	assert.Equal(t, int64(1), count(t, tel, "authorization_decisions", attribute.String("decision", "error")))

	f.down.Store(false)
	require.NoError(t, e.Authorize(ctx, teamB), "errors are not cached")
}

func TestAuthorizeCacheExpires(t *testing.T) {
	f := newFakeKeycloak(t)
	cfg := f.config()
	cfg.Authorization.DecisionCacheTTL = time.Minute
	e, _ := start(t, cfg)
	tok := f.sign(f.claims(time.Hour))
	f.allow(tok, teamA, true)
	ctx := authenticated(t, e, tok)
	require.NoError(t, e.Authorize(ctx, teamA))
	require.NoError(t, e.Authorize(ctx, teamA))
	assert.Equal(t, int64(1), f.umas.Load())

	f.allow(tok, teamA, false) // permission revoked in Keycloak
	e.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	require.ErrorIs(t, e.Authorize(ctx, teamA), authz.ErrDenied, "after the TTL Keycloak is asked again")
	assert.Equal(t, int64(2), f.umas.Load())
}

func TestAuthorizeNeverOutlivesToken(t *testing.T) {
	f := newFakeKeycloak(t)
	cfg := f.config()
	// The token is accepted until exp+skew, but a decision is cached only
	// until exp: two minutes in, the token is still valid (exp ~1 min, skew
	// 3 min), the hour's decision_cache_ttl has not run out, and only the
	// clamp to exp makes the cached allow stale.
	cfg.Server.ClockSkew = 3 * time.Minute
	cfg.Authorization.DecisionCacheTTL = time.Hour
	e, _ := start(t, cfg)
	tok := f.sign(f.claims(time.Minute))
	f.allow(tok, teamA, true)
	ctx := authenticated(t, e, tok)
	require.NoError(t, e.Authorize(ctx, teamA))
	require.NoError(t, e.Authorize(ctx, teamA))
	require.Equal(t, int64(1), f.umas.Load(), "the second answer came from the cache")

	f.allow(tok, teamA, false) // permission revoked in Keycloak
	e.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	err := e.Authorize(ctx, teamA)
	require.ErrorIs(t, err, authz.ErrDenied, "the cached allow must not outlive the token's exp")
	require.NotErrorIs(t, err, errExpired, "the token itself is still within exp+clock_skew")
	assert.Equal(t, int64(2), f.umas.Load(), "past exp Keycloak is asked again")
}

func TestAuthorizeCollapsesConcurrentQuestions(t *testing.T) {
	f := newFakeKeycloak(t)
	f.umaArrived = make(chan struct{}, 100)
	f.umaRelease = make(chan struct{})
	e, _ := start(t, f.config())
	tok := f.sign(f.claims(5 * time.Minute))
	f.allow(tok, teamA, true)
	ctx := authenticated(t, e, tok)

	var wg sync.WaitGroup
	var started sync.WaitGroup
	for range 50 {
		started.Add(1)
		wg.Go(func() {
			started.Done()
			assert.NoError(t, e.Authorize(ctx, teamA))
		})
	}
	<-f.umaArrived // the first question reached Keycloak and waits there
	started.Wait()
	time.Sleep(50 * time.Millisecond) // let the others reach Authorize; the count below can only be too low, never wrongly high
	close(f.umaRelease)
	wg.Wait()
	assert.Equal(t, int64(1), f.umas.Load())
}

func TestAuthorizeNeedsAuthentication(t *testing.T) {
	f := newFakeKeycloak(t)
	e, _ := start(t, f.config())
	require.ErrorIs(t, e.Authorize(context.Background(), teamA), errNotAuthenticated)
	// Someone else's auth data (another authenticator) is not trusted.
	ctx := client.NewContext(context.Background(), client.Info{Auth: fakeAuthData{}})
	require.ErrorIs(t, e.Authorize(ctx, teamA), errNotAuthenticated)
	// Nor is a token another keycloakauth instance validated (another realm).
	other, _ := start(t, f.config())
	require.ErrorIs(t, e.Authorize(authenticated(t, other, f.sign(f.claims(time.Minute))), teamA), errNotAuthenticated)
	assert.Zero(t, f.umas.Load())

	cfg := f.config()
	cfg.Authorization.Mode = ModeNone
	e, _ = start(t, cfg)
	require.ErrorIs(t, e.Authorize(authenticated(t, e, f.sign(f.claims(time.Minute))), teamA), errNoAuthorization)
}

type fakeAuthData struct{}

func (fakeAuthData) GetAttribute(string) any     { return "x" }
func (fakeAuthData) GetAttributeNames() []string { return nil }

func TestLookupAuthorizer(t *testing.T) {
	f := newFakeKeycloak(t)
	e, _ := start(t, f.config())
	id := component.MustNewIDWithName("keycloakauth", "gateway")
	a, err := authz.Lookup(hostWith{id: e}, id)
	require.NoError(t, err)
	assert.Same(t, e, a)
	_, err = authz.Lookup(hostWith{}, id)
	require.Error(t, err)
}

// injected is issue 14's separator injection: a cluster name carrying
// "#GET#" makes Keycloak read the permission as team-a's while the data would
// be stored as team-b's.
var injected = topology.ProjectResource("moc", "nerc-ocp-prod-PROJECT-team-a#GET#", "team-b")

func TestFakeKeycloakParsesPermissionAsKeycloak(t *testing.T) {
	tests := []struct {
		permission string
		resource   string
		scopes     []string
	}{
		{"HUB-moc#GET", "HUB-moc", []string{"GET"}},
		{"HUB-moc", "HUB-moc", nil},
		{"HUB-moc#", "HUB-moc", nil},
		{"HUB-moc#GET,POST", "HUB-moc", []string{"GET", "POST"}},
		{injected + "#GET", "HUB-moc-CLUSTER-nerc-ocp-prod-PROJECT-team-a", []string{"GET"}},
		{"#GET", "", []string{"GET"}},
	}
	for _, tt := range tests {
		t.Run(tt.permission, func(t *testing.T) {
			resource, scopes := parsePermission(tt.permission)
			assert.Equal(t, tt.resource, resource)
			assert.Equal(t, tt.scopes, scopes)
		})
	}
}

func TestAuthorizeRefusesSeparatorInjection(t *testing.T) {
	f := newFakeKeycloak(t)
	e, tel := start(t, f.config())
	tok := f.sign(f.claims(5 * time.Minute))
	f.allow(tok, teamA, true) // team-a only
	ctx := authenticated(t, e, tok)

	// Without the check, Keycloak (the fake parses as it does) would allow it.
	ans, err := e.askKeycloak(ctx, tok, injected)
	require.NoError(t, err)
	require.Equal(t, answerAllowed, ans, "Keycloak decides on the part before the first '#'")
	require.Equal(t, int64(1), f.umas.Load())

	err = e.Authorize(ctx, injected)
	require.ErrorIs(t, err, authz.ErrDenied)
	require.ErrorIs(t, err, topology.ErrInvalidResource)
	assert.Equal(t, int64(1), f.umas.Load(), "Keycloak is not asked")
	assert.Equal(t, int64(1), count(t, tel, "authorization_decisions",
		attribute.String("decision", "denied"), attribute.String("source", "invalid_resource")))
}

func TestAuthorizeRefusesInvalidResourceNames(t *testing.T) {
	f := newFakeKeycloak(t)
	e, tel := start(t, f.config())
	tok := f.sign(f.claims(5 * time.Minute))
	ctx := authenticated(t, e, tok)
	for name, resource := range map[string]string{
		"hash":          injected,
		"comma (scope)": teamA + ",POST",
		"empty":         "",
		"space":         "HUB-moc team-b",
		"control":       "HUB-moc\x00",
		"slash":         "HUB-moc/../x",
		"too long":      topology.ProjectResource("moc", strings.Repeat("c", 600), strings.Repeat("n", 600)),
	} {
		t.Run(name, func(t *testing.T) {
			f.allow(tok, resource, true)
			err := e.Authorize(ctx, resource)
			require.ErrorIs(t, err, authz.ErrDenied)
			require.ErrorIs(t, err, topology.ErrInvalidResource)
		})
	}
	assert.Zero(t, f.umas.Load())
	assert.Equal(t, int64(7), count(t, tel, "authorization_decisions", attribute.String("source", "invalid_resource")))
}

func TestAuthorizeBudgetPerCaller(t *testing.T) {
	f := newFakeKeycloak(t)
	cfg := f.config()
	cfg.Authorization.MaxDecisionsPerMinute = 60 // one a second
	cfg.Authorization.DecisionBurst = 3
	e, tel := start(t, cfg)
	clock := time.Now() // frozen: the budget refills only when the test says
	e.now = func() time.Time { return clock }
	projects := make([]string, 5)
	for i := range projects {
		projects[i] = topology.ProjectResource("moc", "nerc-ocp-prod", fmt.Sprintf("team-%d", i))
	}
	tok := f.sign(f.claims(time.Hour))
	sameCaller := f.sign(f.claims(time.Hour)) // another token of the same subject
	otherCaller := f.claims(time.Hour)
	otherCaller["sub"] = "another-subject"
	noSub := f.claims(time.Hour)
	delete(noSub, "sub")
	tokens := map[string]string{"tok": tok, "same": sameCaller, "other": f.sign(otherCaller), "nosub": f.sign(noSub)}
	for _, tk := range tokens {
		for _, p := range projects {
			f.allow(tk, p, true)
		}
	}
	ctx := authenticated(t, e, tok)
	for _, p := range projects[:3] {
		require.NoError(t, e.Authorize(ctx, p))
	}
	err := e.Authorize(ctx, projects[3])
	require.ErrorIs(t, err, errDecisionBudget)
	require.NotErrorIs(t, err, authz.ErrDenied, "not a denial: the sender retries")
	require.ErrorIs(t, authz.NewDecisions(e, 64).Decide(ctx, projects[3]), authz.ErrUnavailable)
	assert.Equal(t, int64(3), f.umas.Load(), "Keycloak is not asked beyond the budget")
	assert.Equal(t, int64(2), count(t, tel, "authorization_decisions",
		attribute.String("decision", "throttled"), attribute.String("source", "budget")))

	for range 10 {
		require.NoError(t, e.Authorize(ctx, projects[0]), "cached answers cost nothing")
	}
	require.ErrorIs(t, e.Authorize(authenticated(t, e, sameCaller), projects[0]), errDecisionBudget,
		"a new token of the same subject shares its budget")
	require.NoError(t, e.Authorize(authenticated(t, e, tokens["other"]), projects[3]), "another subject has its own")
	require.NoError(t, e.Authorize(authenticated(t, e, tokens["nosub"]), projects[3]), "no sub: the client (azp) is the caller")

	clock = clock.Add(time.Second) // one decision refilled
	require.NoError(t, e.Authorize(ctx, projects[3]))
	require.ErrorIs(t, e.Authorize(ctx, projects[4]), errDecisionBudget)
}

func TestAuthorizeUnknownResourceCachedForAllTokens(t *testing.T) {
	f := newFakeKeycloak(t)
	cfg := f.config()
	cfg.Authorization.DecisionCacheTTL = time.Minute
	e, tel := start(t, cfg)
	unknown := topology.ProjectResource("moc", "nerc-ocp-prod", "no-such-project")
	for range 5 {
		ctx := authenticated(t, e, f.sign(f.claims(time.Hour))) // a new token each time
		require.ErrorIs(t, e.Authorize(ctx, unknown), authz.ErrDenied)
	}
	assert.Equal(t, int64(1), f.umas.Load(), "invalid_resource is remembered for every token")
	assert.Equal(t, int64(4), count(t, tel, "authorization_decisions",
		attribute.String("decision", "denied"), attribute.String("source", "cache")))

	e.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	tok := f.sign(f.claims(time.Hour))
	f.allow(tok, unknown, true) // the project was created in Keycloak since
	require.NoError(t, e.Authorize(authenticated(t, e, tok), unknown), "after the TTL Keycloak is asked again")
	assert.Equal(t, int64(2), f.umas.Load())
}
