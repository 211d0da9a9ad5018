package gpuqueryextension

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"

	"github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/metadata"
	"github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/metadatatest"
	"github.com/nerc-project/ai-telemetry-collector/internal/authz"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// TestEntitiesScoped: each list answers what the caller's scope holds and
// no more (the scope reaches the store), and one entity outside the scope
// is 404 like an absent one.
func TestEntitiesScoped(t *testing.T) {
	tests := []struct {
		name   string
		scope  gpustore.Scope
		path   string
		status int
		count  int // items of a list, -1 for a single entity
	}{
		{"all sees every hub", scopeAll, "/api/v1/hubs", 200, 2},
		{"member sees no hub", scopeTeamA, "/api/v1/hubs", 200, 0},
		{"manager sees its hub", scopeManager, "/api/v1/hubs", 200, 1},
		{"manager sees its cluster", scopeManager, "/api/v1/clusters", 200, 1},
		{"manager gets its cluster", scopeManager, "/api/v1/clusters/moc/nerc-ocp-prod", 200, -1},
		{"member cannot get the cluster", scopeTeamA, "/api/v1/clusters/moc/nerc-ocp-prod", 404, -1},
		{"absent cluster", scopeAll, "/api/v1/clusters/moc/nope", 404, -1},
		{"manager lists nodes", scopeManager, "/api/v1/nodes", 200, 1},
		{"member sees the GPUs its pods hold", scopeTeamA, "/api/v1/devices", 200, 2},
		{"all sees every GPU", scopeAll, "/api/v1/devices", 200, 3},
		{"device filter", scopeAll, "/api/v1/devices?device=" + gpuWhole, 200, 1},
		{"node filter", scopeAll, "/api/v1/devices?cluster=x-cluster&node=wrk-1", 200, 1},
		{"member gets its GPU", scopeTeamA, "/api/v1/devices/" + gpuWhole, 200, -1},
		{"member cannot get another's GPU", scopeTeamA, "/api/v1/devices/" + gpuOther, 404, -1},
		{"member sees its slice only", scopeTeamA, "/api/v1/slices", 200, 1},
		{"manager sees both slices", scopeManager, "/api/v1/slices?device=" + gpuMIG, 200, 2},
		{"member sees its project", scopeTeamA, "/api/v1/projects", 200, 1},
		{"member gets its project", scopeTeamA, "/api/v1/projects/moc/nerc-ocp-prod/team-a", 200, -1},
		{"member cannot get team-b", scopeTeamA, "/api/v1/projects/moc/nerc-ocp-prod/team-b", 404, -1},
		{"sessions", scopeTeamA, "/api/v1/sessions?namespace=team-a", 200, 1},
		{"sessions of another", scopeTeamA, "/api/v1/sessions?namespace=team-b", 200, 0},
		{"zero scope sees nothing", gpustore.Scope{}, "/api/v1/devices", 200, 0},
		{"entity window", scopeAll, "/api/v1/devices?window=1h", 200, 3},
		{"entity window before anything was seen", scopeAll, "/api/v1/devices?window=lastmonth", 200, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newTestAPI(t, fixture(), fixedScope(tt.scope), false)
			r := api.get(tt.path)
			require.Equal(t, tt.status, r.status, "%s", r.body)
			if tt.status != 200 {
				assert.Equal(t, mediaProblem, r.header.Get("Content-Type"))
				return
			}
			assert.Equal(t, mediaJSON, r.header.Get("Content-Type"))
			if tt.count >= 0 {
				assert.Len(t, r.items(t), tt.count, "%s", r.body)
			}
		})
	}
}

// TestPagination: limit and offset reach the store; a full page links the
// next one, a short page does not.
func TestPagination(t *testing.T) {
	api := newTestAPI(t, fixture(), fixedScope(scopeAll), false)
	r := api.get("/api/v1/devices?limit=2")
	require.Equal(t, 200, r.status)
	m := r.json(t)
	assert.Len(t, m["items"], 2)
	assert.EqualValues(t, 2, m["limit"])
	assert.EqualValues(t, 0, m["offset"])
	next, ok := m["next"].(string)
	require.True(t, ok, "a full page links the next: %s", r.body)
	u, err := url.Parse(next)
	require.NoError(t, err)
	assert.Equal(t, "2", u.Query().Get("offset"))

	r = api.get(next)
	require.Equal(t, 200, r.status)
	assert.Len(t, r.items(t), 1)
	assert.NotContains(t, r.json(t), "next")

	r = api.get("/api/v1/devices")
	assert.EqualValues(t, defaultLimit, r.json(t)["limit"])
}

// TestBadParams: every refused parameter is a 400 problem naming it, and
// nothing reaches the store.
func TestBadParams(t *testing.T) {
	tests := []struct {
		path, param string
	}{
		{"/api/v1/devices?hub=MOC", "hub"},
		{"/api/v1/devices?cluster=x%27%3B%20DROP%20TABLE%20samples%3B--", "cluster"},
		{"/api/v1/devices?namespace=team_a", "namespace"},
		{"/api/v1/devices?node=" + strings.Repeat("a", 300), "node"},
		{"/api/v1/devices?device=" + url.QueryEscape("GPU-1' OR '1'='1"), "device"},
		{"/api/v1/devices?device=nvidia0", "device"},
		{"/api/v1/devices?limit=0", "limit"},
		{"/api/v1/devices?limit=1001", "limit"},
		{"/api/v1/devices?limit=ten", "limit"},
		{"/api/v1/devices?offset=-1", "offset"},
		{"/api/v1/devices?hub=moc&hub=other", "hub"},
		{"/api/v1/devices?colour=red", "colour"},
		{"/api/v1/hubs?device=" + gpuMIG, "device"},
		{"/api/v1/devices/not-a-uuid", "id"},
		{"/api/v1/projects/moc/nerc-ocp-prod/Team_A", "namespace"},
		{"/api/v1/reports/gpu-hours", "window"},
		{"/api/v1/reports/gpu-hours?window=2000-01-01T00:00:00Z,2100-01-01T00:00:00Z", "window"},
		{"/api/v1/reports/gpu-hours?window=36500d", "window"},
		{"/api/v1/reports/gpu-hours?window=2026-12-01T00:00:00Z,2026-11-01T00:00:00Z", "window"},
		{"/api/v1/reports/gpu-hours?window=month:2026-13", "window"},
		{"/api/v1/reports/gpu-hours?window=yesterday;select", "window"},
		{"/api/v1/reports/gpu-hours?window=lastmonth&step=1s", "step"},
		{"/api/v1/reports/gpu-hours?window=2026-01-01T12:00:00Z,2027-02-05T12:00:00Z&step=day", "step"},
		{"/api/v1/reports/gpu-hours?window=lastmonth&aggregate=project,colour", "aggregate"},
		{"/api/v1/reports/gpu-hours?window=lastmonth&aggregate=project,project", "aggregate"},
		{"/api/v1/reports/gpu-hours?window=lastmonth&aggregate=project;drop", "aggregate"},
		{"/api/v1/reports/gpu-hours?window=lastmonth&source=cache", "source"},
		{"/api/v1/reports/utilization?window=24h", "device"},
		{"/api/v1/reports/utilization?device=" + gpuWhole + "&points=2001", "points"},
		{"/ngsi-ld/v1/entities", "type"},
		{"/ngsi-ld/v1/entities?type=Car", "type"},
		{"/ngsi-ld/v1/entities?type=GpuDevice&q=hw.model==A100", "q"},
		{"/ngsi-ld/v1/entities?type=GpuDevice&q=k8s.namespace.name==TEAM", "q"},
		{"/ngsi-ld/v1/entities?id=urn:ngsi-ld:GpuDevice:c:n", "id"},
		{"/ngsi-ld/v1/entities/urn:ngsi-ld:Car:1", "id"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			store := fixture()
			store.err = errors.New("the store must not be read")
			api := newTestAPI(t, store, fixedScope(scopeAll), false)
			r := api.get(tt.path)
			require.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)
			p := r.json(t)
			assert.Equal(t, problemTypeBase+reasonInvalidParam, p["type"])
			assert.EqualValues(t, 400, p["status"])
			assert.NotEmpty(t, p["detail"])
			params, _ := p["invalid-params"].([]any)
			require.Len(t, params, 1, "%s", r.body)
			assert.Equal(t, tt.param, params[0].(map[string]any)["name"])
		})
	}
}

// TestWindows: the forms OpenCost's window takes, resolved against the clock.
func TestWindows(t *testing.T) {
	d := func(y int, m time.Month, day int) time.Time { return time.Date(y, m, day, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		in       string
		from, to time.Time
	}{
		{"2026-11-01T00:00:00Z,2026-12-01T00:00:00Z", d(2026, 11, 1), d(2026, 12, 1)},
		{"2026-11-01T01:00:00+01:00,2026-11-02T00:00:00Z", d(2026, 11, 1), d(2026, 11, 2)},
		{"7d", testNow.Add(-7 * 24 * time.Hour), testNow},
		{"24h", testNow.Add(-24 * time.Hour), testNow},
		{"30m", testNow.Add(-30 * time.Minute), testNow},
		{"2w", testNow.Add(-14 * 24 * time.Hour), testNow},
		{"today", d(2026, 12, 2), d(2026, 12, 3)},
		{"yesterday", d(2026, 12, 1), d(2026, 12, 2)},
		{"week", d(2026, 11, 30), d(2026, 12, 7)}, // 2026-12-02 is a Wednesday
		{"lastweek", d(2026, 11, 23), d(2026, 11, 30)},
		{"month", d(2026, 12, 1), d(2027, 1, 1)},
		{"lastmonth", d(2026, 11, 1), d(2026, 12, 1)},
		{"month:2026-02", d(2026, 2, 1), d(2026, 3, 1)},
		{"400d", testNow.Add(-gpustore.MaxWindow), testNow},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			w, err := parseWindow(tt.in, testNow)
			require.NoError(t, err)
			assert.Equal(t, tt.from, w.From)
			assert.Equal(t, tt.to, w.To)
		})
	}
	for _, bad := range []string{"", "401d", "0d", "7y", "-7d", "now", "month:26-11", "2026-11-01,2026-12-01", "2026-11-01T00:00:00Z"} {
		_, err := parseWindow(bad, testNow)
		assert.Error(t, err, bad)
	}
}

// TestGPUHoursReport: the parsed query reaches the store; JSON carries the
// window; ETag and If-None-Match give 304.
func TestGPUHoursReport(t *testing.T) {
	store := fixture()
	api := newTestAPI(t, store, fixedScope(scopeManager), false)
	path := "/api/v1/reports/gpu-hours?window=lastmonth&aggregate=project,pi&step=month&source=rollup"
	r := api.get(path)
	require.Equal(t, 200, r.status, "%s", r.body)
	q := store.lastHours
	assert.Equal(t, []string{gpustore.KeyProject, gpustore.KeyPI}, q.Aggregate)
	assert.Equal(t, gpustore.StepMonth, q.Step)
	assert.Equal(t, gpustore.SourceRollup, q.Source)
	assert.Equal(t, scopeManager, q.Scope)
	assert.Equal(t, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), q.Window.From)
	m := r.json(t)
	assert.Len(t, m["items"], 2)
	assert.Equal(t, map[string]any{"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}, m["window"])

	etag := r.header.Get("ETag")
	require.NotEmpty(t, etag)
	assert.Contains(t, r.header.Get("Cache-Control"), "private")
	again := api.get(path, "If-None-Match", etag)
	assert.Equal(t, http.StatusNotModified, again.status)
	assert.Empty(t, again.body)
	assert.Equal(t, etag, again.header.Get("ETag"))
	assert.Equal(t, http.StatusNotModified, api.get(path, "If-None-Match", `"x", W/`+etag).status)
	assert.Equal(t, http.StatusOK, api.get(path, "If-None-Match", `"other"`).status)

	// another caller's answer differs, and so does its ETag
	member := newTestAPI(t, fixture(), fixedScope(scopeTeamA), false)
	mr := member.get(path)
	require.Equal(t, 200, mr.status)
	assert.Len(t, mr.items(t), 1)
	assert.NotEqual(t, etag, mr.header.Get("ETag"))
}

// TestReportsCSV: every report answers CSV with a header row; the monthly
// GPU-hours per project and PI has the columns an invoicing script reads,
// exact numbers, and a PI that looks like a formula defused.
func TestReportsCSV(t *testing.T) {
	api := newTestAPI(t, fixture(), fixedScope(scopeAll), false)
	r := api.get("/api/v1/reports/gpu-hours?window=month:2026-11&aggregate=project,pi&step=month", "Accept", "text/csv")
	require.Equal(t, 200, r.status, "%s", r.body)
	assert.True(t, strings.HasPrefix(r.header.Get("Content-Type"), "text/csv"))
	assert.NotEmpty(t, r.header.Get("ETag"))
	want := "start,end,hub,cluster,project,pi,allocated_gpu_hours,used_gpu_hours,idle_gpu_hours,devices\n" +
		"2026-11-01T00:00:00Z,2026-12-01T00:00:00Z,moc,nerc-ocp-prod,team-a,alice@example.edu,120.5,100.25,20.25,2\n" +
		"2026-11-01T00:00:00Z,2026-12-01T00:00:00Z,moc,nerc-ocp-prod,team-b,\"'=HYPERLINK(\"\"http://x\"\")\",10,1,9,1\n"
	assert.Equal(t, want, string(r.body))

	for _, path := range []string{"/api/v1/reports/idle", "/api/v1/reports/utilization?device=" + gpuWhole} {
		r := api.get(path, "Accept", "text/csv")
		require.Equal(t, 200, r.status, "%s %s", path, r.body)
		lines := strings.Split(strings.TrimSpace(string(r.body)), "\n")
		assert.Len(t, lines, 2, "header and one row: %s", r.body)
	}
	// CSV without a limit reads up to MaxLimit rows, so an invoice is whole
	assert.Equal(t, 200, api.get("/api/v1/reports/gpu-hours?window=lastmonth", "Accept", "text/csv").status)
	assert.Equal(t, gpustore.MaxLimit, api.store.lastHours.Limit)
}

// TestFormatParameter: format= chooses the media type over Accept (a link
// cannot set Accept), CSV comes as an attachment named after the report, and
// a format a route does not serve is refused by name.
func TestFormatParameter(t *testing.T) {
	api := newTestAPI(t, fixture(), fixedScope(scopeAll), false)
	for _, tt := range []struct {
		path, accept, wantType, wantFile string
	}{
		{"/api/v1/reports/gpu-hours?window=lastmonth&format=csv", "application/json", "text/csv", "gpu-hours.csv"},
		{"/api/v1/reports/idle?format=csv", "", "text/csv", "idle.csv"},
		{"/api/v1/reports/utilization?device=" + gpuWhole + "&format=csv", "", "text/csv", "utilization.csv"},
		{"/api/v1/reports/gpu-hours?window=lastmonth&format=json", "text/csv", "application/json", ""},
	} {
		r := api.get(tt.path, "Accept", tt.accept)
		require.Equal(t, 200, r.status, "%s %s", tt.path, r.body)
		assert.True(t, strings.HasPrefix(r.header.Get("Content-Type"), tt.wantType), "%s: %s", tt.path, r.header.Get("Content-Type"))
		if tt.wantFile != "" {
			assert.Equal(t, `attachment; filename="`+tt.wantFile+`"`, r.header.Get("Content-Disposition"), tt.path)
		} else {
			assert.Empty(t, r.header.Get("Content-Disposition"), tt.path)
		}
	}
	for _, path := range []string{"/api/v1/reports/idle?format=xml", "/api/v1/reports/idle?format=ld"} {
		r := api.get(path)
		require.Equal(t, 400, r.status, "%s", path)
		assert.Contains(t, string(r.body), `"name":"format"`, path)
	}
	assert.Equal(t, 400, api.get("/api/v1/devices?format=csv").status, "a route without format refuses it")
}

// TestUtilization: defaults (24 h, 200 points) and bounds reach the store.
func TestUtilization(t *testing.T) {
	store := fixture()
	api := newTestAPI(t, store, fixedScope(scopeTeamA), false)
	r := api.get("/api/v1/reports/utilization?namespace=team-a")
	require.Equal(t, 200, r.status, "%s", r.body)
	assert.Equal(t, defaultPoints, store.lastUtil.MaxPoints)
	assert.Equal(t, testNow.Add(-24*time.Hour), store.lastUtil.Window.From)
	assert.Equal(t, "team-a", store.lastUtil.Namespace)
	r = api.get("/api/v1/reports/utilization?device=" + gpuWhole + "&points=2000&window=7d")
	require.Equal(t, 200, r.status, "%s", r.body)
	assert.Equal(t, gpustore.MaxPoints, store.lastUtil.MaxPoints)
	r = api.get("/api/v1/reports/idle?window=24h")
	require.Equal(t, 200, r.status, "%s", r.body)
	assert.Len(t, r.items(t), 1)
}

// TestAuthRefusals: the scoper's errors become 503 (retry), 403 and 401,
// and are counted by reason.
func TestAuthRefusals(t *testing.T) {
	tests := []struct {
		err    error
		status int
		reason string
	}{
		{fmt.Errorf("keycloak: %w", authz.ErrUnavailable), http.StatusServiceUnavailable, reasonAuthUnavailable},
		{fmt.Errorf("uma: %w", authz.ErrDenied), http.StatusForbidden, reasonForbidden},
		{errors.New("no bearer token in the context"), http.StatusUnauthorized, reasonUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			store := fixture()
			scoper := authz.ReadScoperFunc(func(context.Context) (gpustore.Scope, error) { return gpustore.Scope{}, tt.err })
			api := newTestAPI(t, store, scoper, false)
			r := api.get("/api/v1/devices")
			require.Equal(t, tt.status, r.status, "%s", r.body)
			assert.NotContains(t, string(r.body), tt.err.Error(), "the cause stays out of the answer")
			if tt.status == http.StatusServiceUnavailable {
				assert.NotEmpty(t, r.header.Get("Retry-After"))
			}
			assert.Equal(t, problemTypeBase+tt.reason, r.json(t)["type"])
			metadatatest.AssertEqualGpuQueryRefusals(t, api.tel, []metricdata.DataPoint[int64]{
				{Attributes: attribute.NewSet(attribute.String("reason", tt.reason)), Value: 1},
			}, metricdatatestIgnore()...)
			// public documents need no scope
			assert.Equal(t, 200, api.get("/api/openapi.json").status)
		})
	}
}

// TestStoreErrors: a failing store is a 500 problem without its message,
// counted by operation; a store refusing the query is 400; not found is 404.
func TestStoreErrors(t *testing.T) {
	store := fixture()
	store.err = errors.New("disk I/O error at /var/lib/secret.db")
	api := newTestAPI(t, store, fixedScope(scopeAll), false)
	r := api.get("/api/v1/devices")
	require.Equal(t, http.StatusInternalServerError, r.status)
	assert.NotContains(t, string(r.body), "secret")
	metadatatest.AssertEqualGpuQueryStoreErrors(t, api.tel, []metricdata.DataPoint[int64]{
		{Attributes: attribute.NewSet(attribute.String("operation", "devices")), Value: 1},
	}, metricdatatestIgnore()...)

	store.err = fmt.Errorf("window: %w", gpustore.ErrBadQuery)
	assert.Equal(t, http.StatusBadRequest, api.get("/api/v1/reports/gpu-hours?window=7d").status)
	store.err = fmt.Errorf("device: %w", gpustore.ErrNotFound)
	assert.Equal(t, http.StatusNotFound, api.get("/api/v1/devices/"+gpuWhole).status)
}

// TestRequestsCounted: requests by route pattern and status class.
func TestRequestsCounted(t *testing.T) {
	api := newTestAPI(t, fixture(), fixedScope(scopeAll), false)
	api.get("/api/v1/devices/" + gpuWhole)
	api.get("/api/v1/devices/" + gpuOther)
	api.get("/api/v1/devices/nope")
	api.get("/api/v2/nothing")
	set := func(route, class string) attribute.Set {
		return attribute.NewSet(attribute.String("route", route), attribute.String("status_class", class))
	}
	metadatatest.AssertEqualGpuQueryRequests(t, api.tel, []metricdata.DataPoint[int64]{
		{Attributes: set("/api/v1/devices/{id}", "2xx"), Value: 2},
		{Attributes: set("/api/v1/devices/{id}", "4xx"), Value: 1},
		{Attributes: set("unmatched", "4xx"), Value: 1},
	}, metricdatatestIgnore()...)
}

// TestNegotiationAndMethods: 406 for a type not served, 405 for writes,
// 404 problem for unknown paths; local mode marks every answer.
func TestNegotiationAndMethods(t *testing.T) {
	api := newTestAPI(t, fixture(), fixedScope(scopeAll), true)
	r := api.get("/api/v1/sessions", "Accept", "text/csv")
	assert.Equal(t, http.StatusNotAcceptable, r.status)
	assert.Equal(t, modeLocal, r.header.Get(modeHeader))
	assert.Equal(t, http.StatusOK, api.get("/api/v1/sessions", "Accept", "text/html, */*;q=0.1").status)
	r = api.get("/api/v1/reports/idle", "Accept", "application/json;q=0.5, text/csv")
	assert.True(t, strings.HasPrefix(r.header.Get("Content-Type"), "text/csv"))
	r = api.get("/nope")
	assert.Equal(t, http.StatusNotFound, r.status)
	assert.Equal(t, http.StatusNotFound, api.get("/api/v1//devices").status, "no redirect to the clean path")
	assert.Equal(t, modeLocal, r.header.Get(modeHeader))

	req, err := http.NewRequest(http.MethodPost, api.srv.URL+"/api/v1/devices", http.NoBody)
	require.NoError(t, err)
	resp, err := api.srv.Client().Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, mediaProblem, resp.Header.Get("Content-Type"))

	secure := newTestAPI(t, fixture(), fixedScope(scopeAll), false)
	assert.Empty(t, secure.get("/api/v1/hubs").header.Get(modeHeader))
}

// TestAuthenticatorRefusal: the HTTP server's authenticator (confighttp's
// error handler, before any route) refuses as this API does: a problem the
// document describes, with WWW-Authenticate, without the authenticator's
// message, counted; other statuses keep confighttp's plain answer.
func TestAuthenticatorRefusal(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	tb, err := metadata.NewTelemetryBuilder(tel.NewTelemetrySettings())
	require.NoError(t, err)
	h, err := newAPI(apiSettings{reader: fixture(), scoper: fixedScope(scopeAll), telemetry: tb, logger: zap.NewNop(), now: func() time.Time { return testNow }})
	require.NoError(t, err)
	d, err := loadDoc()
	require.NoError(t, err)
	router, err := legacyRouter(d)
	require.NoError(t, err)

	const msg = "token signature invalid (kid k1, token eyJhbGciOi)"
	for _, path := range []string{"/api/v1/devices/" + gpuWhole, "/api/v2/nothing"} {
		req := httptest.NewRequest(http.MethodGet, path, http.NoBody)
		rec := httptest.NewRecorder()
		h.authFailed(rec, req, msg, http.StatusUnauthorized)
		resp := rec.Result()
		body := rec.Body.Bytes()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		if _, _, err := router.FindRoute(req); err == nil {
			require.NoError(t, validateResponse(router, req, resp, body), "%s", body)
		} else { // a path the document lacks: still a problem
			assert.Equal(t, mediaProblem, resp.Header.Get("Content-Type"))
			require.NoError(t, validateProblem(body), "%s", body)
		}
		assert.Equal(t, "Bearer", resp.Header.Get("WWW-Authenticate"))
		assert.Contains(t, string(body), problemTypeBase+reasonUnauthenticated)
		assert.NotContains(t, string(body), "eyJ", "the authenticator's message stays out of the answer")
	}
	metadatatest.AssertEqualGpuQueryRefusals(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: attribute.NewSet(attribute.String("reason", reasonUnauthenticated)), Value: 2},
	}, metricdatatestIgnore()...)
	set := func(route string) attribute.Set {
		return attribute.NewSet(attribute.String("route", route), attribute.String("status_class", "4xx"))
	}
	metadatatest.AssertEqualGpuQueryRequests(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: set("/api/v1/devices/{id}"), Value: 1},
		{Attributes: set("unmatched"), Value: 1},
	}, metricdatatestIgnore()...)

	rec := httptest.NewRecorder()
	h.authFailed(rec, httptest.NewRequest(http.MethodGet, "/api/v1/devices", http.NoBody), "unsupported Content-Encoding", http.StatusBadRequest)
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	assert.NotEqual(t, mediaProblem, rec.Header().Get("Content-Type"), "not an authentication refusal: confighttp's answer")
}
