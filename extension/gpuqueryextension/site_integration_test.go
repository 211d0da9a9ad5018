//go:build integration || browser

package gpuqueryextension

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/nerc-project/ai-telemetry-collector/extension/gpustorageextension"
	"github.com/nerc-project/ai-telemetry-collector/extension/keycloakauth"
	"github.com/nerc-project/ai-telemetry-collector/internal/dashboardfixture"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore/embedded"
	"github.com/nerc-project/ai-telemetry-collector/internal/testpeers"
)

// The site's realm (keycloakauth's testdata/realm-site.json): alice in
// team-a, bob in team-b, carol manager of nerc-ocp-prod, erin of hub moc,
// dave nothing; the client team-a-reader's service account in team-a.
const (
	siteRealmFile      = "../keycloakauth/testdata/realm-site.json"
	siteResourceServer = "ai-telemetry-site"
	fixtureDir         = "../../tests/dashboards/testdata"

	// standinRealmFile stands in for GitHub, which the site realm brokers
	// (identity provider github; its users get group team-a).
	standinRealmFile = "../keycloakauth/testdata/realm-github-standin.json"
)

// The recorded fixtures end here; the store's clock, so that retention
// keeps their raw samples (the embedded store's own fixture tests do the same).
var fixtureEnd = time.Date(2026, 11, 1, 6, 0, 0, 0, time.UTC)

// scheduleTruths is the schedule's ground truth per project.
func scheduleTruths(t *testing.T) map[string]*dashboardfixture.ProjectTruth {
	t.Helper()
	s, err := dashboardfixture.Load(filepath.Join(fixtureDir, "schedule.json"))
	require.NoError(t, err)
	out, err := s.Truth()
	require.NoError(t, err)
	return out
}

// site is the collector's three extensions, started as the service would.
type site struct {
	kc    *testpeers.Keycloak
	addr  string
	store gpustore.Store
}

// startSite starts the site; configure changes gpu_query's configuration
// once Keycloak runs and the site's address is chosen.
func startSite(t *testing.T, configure ...func(q *Config, kc *testpeers.Keycloak)) *site {
	t.Helper()
	ctx := context.Background()
	kc := testpeers.StartKeycloak(t, testpeers.KeycloakOptions{RealmFile: siteRealmFile, MoreRealmFiles: []string{standinRealmFile}})

	kcFactory := keycloakauth.NewFactory()
	kcCfg := kcFactory.CreateDefaultConfig().(*keycloakauth.Config)
	kcCfg.ServerURL = kc.URL()
	kcCfg.Realm = kc.Realm()
	kcCfg.Server.Audiences = []string{siteResourceServer}
	// The expired token below lives two seconds; the default 30 s skew would
	// make the test wait that long.
	kcCfg.Server.ClockSkew = time.Second
	kcCfg.Authorization.Mode = keycloakauth.ModeResource
	kcCfg.Authorization.ResourceServer = siteResourceServer
	// Long enough that alice's scope is still cached when Keycloak stops.
	kcCfg.Authorization.DecisionCacheTTL = time.Hour
	require.NoError(t, kcCfg.Validate())

	stFactory := gpustorageextension.NewFactory()
	stCfg := stFactory.CreateDefaultConfig().(*gpustorageextension.Config)
	stCfg.Embedded = &embedded.Config{Path: filepath.Join(t.TempDir(), "gpu.db"), Now: func() time.Time { return fixtureEnd }}
	require.NoError(t, stCfg.Validate())

	qCfg := createDefaultConfig().(*Config)
	qCfg.HTTP.NetAddr.Endpoint = "127.0.0.1:" + testpeers.FreePort(t)
	qCfg.Storage = storageID
	qCfg.Auth = &authID
	qCfg.HTTP.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: authID}})
	for _, c := range configure {
		c(qCfg, kc)
	}
	require.NoError(t, qCfg.Validate())

	h := host{}
	create := func(f extension.Factory, id component.ID, cfg component.Config) extension.Extension {
		ext, err := f.Create(ctx, extensiontest.NewNopSettings(f.Type()), cfg)
		require.NoError(t, err, id)
		h[id] = ext
		return ext
	}
	kcExt := create(kcFactory, authID, kcCfg)
	stExt := create(stFactory, storageID, stCfg)
	qExt := create(NewFactory(), component.NewID(NewFactory().Type()), qCfg)
	// The service's order: dependencies first, shut down in reverse.
	for _, ext := range []extension.Extension{kcExt, stExt} {
		require.NoError(t, ext.Start(ctx, h))
		t.Cleanup(func() { assert.NoError(t, ext.Shutdown(context.Background())) })
	}

	provider, ok := stExt.(gpustore.Provider)
	require.True(t, ok)
	store, err := provider.GPUStore()
	require.NoError(t, err)
	loadFixtures(t, store)

	require.NoError(t, qExt.Start(ctx, h))
	t.Cleanup(func() { assert.NoError(t, qExt.Shutdown(context.Background())) })
	return &site{kc: kc, addr: qCfg.HTTP.NetAddr.Endpoint, store: store}
}

// loadFixtures writes the recorded pipeline's output (one OTLP JSON
// document a line) through the store, as gpu_storage_exporter would.
func loadFixtures(t *testing.T, store gpustore.Store) {
	t.Helper()
	ctx := context.Background()
	metrics, err := dashboardfixture.RecordedMetrics(fixtureDir)
	require.NoError(t, err)
	for _, md := range metrics {
		require.NoError(t, store.WriteMetrics(ctx, md))
	}
	traces, err := dashboardfixture.RecordedTraces(fixtureDir)
	require.NoError(t, err)
	for _, td := range traces {
		require.NoError(t, store.WriteTraces(ctx, td))
	}
}

func passwordToken(t *testing.T, kc *testpeers.Keycloak, user string) string {
	t.Helper()
	cfg := oauth2.Config{ClientID: "site-login", Endpoint: oauth2.Endpoint{TokenURL: kc.TokenURL(), AuthStyle: oauth2.AuthStyleInParams}}
	tok, err := cfg.PasswordCredentialsToken(context.Background(), user, kc.Secret(user))
	require.NoError(t, err, user)
	return tok.AccessToken
}

func clientCredentialsToken(t *testing.T, kc *testpeers.Keycloak, clientID string) string {
	t.Helper()
	cc := clientcredentials.Config{ClientID: clientID, ClientSecret: kc.Secret(clientID), TokenURL: kc.TokenURL()}
	tok, err := cc.Token(context.Background())
	require.NoError(t, err, clientID)
	return tok.AccessToken
}

// setTokenLifespan sets a client's access token lifespan (seconds).
func setTokenLifespan(t *testing.T, kc *testpeers.Keycloak, clientID string, seconds int) {
	t.Helper()
	updateClient(t, kc, clientID, func(c map[string]any) {
		attrs, _ := c["attributes"].(map[string]any)
		if attrs == nil {
			attrs = map[string]any{}
		}
		attrs["access.token.lifespan"] = strconv.Itoa(seconds)
		c["attributes"] = attrs
	})
}

// adminClient calls Keycloak's admin REST API as site-admin's service
// account (manage-clients, manage-users).
func adminClient(t *testing.T, kc *testpeers.Keycloak) *http.Client {
	t.Helper()
	cc := clientcredentials.Config{ClientID: "site-admin", ClientSecret: kc.Secret("site-admin"), TokenURL: kc.TokenURL()}
	return cc.Client(context.Background())
}

func getJSON(t *testing.T, hc *http.Client, u string, v any) {
	t.Helper()
	resp, err := hc.Get(u)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode, u)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

// updateClient changes a client's representation through Keycloak's admin
// REST API, as site-admin (manage-clients).
func updateClient(t *testing.T, kc *testpeers.Keycloak, clientID string, change func(map[string]any)) {
	t.Helper()
	hc := adminClient(t, kc)
	admin := kc.URL() + "/admin/realms/" + kc.Realm() + "/clients"
	var clients []map[string]any
	getJSON(t, hc, admin+"?clientId="+url.QueryEscape(clientID), &clients)
	require.Len(t, clients, 1)
	c := clients[0]
	change(c)
	body, err := json.Marshal(c)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPut, admin+"/"+c["id"].(string), bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
}

// call requests path with a bearer token and validates the answer against
// the OpenAPI document the API serves (401s included: the authenticator's
// refusal is answered through the API's error handler).
func (s *site) call(t *testing.T, token, path string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+s.addr+path, http.NoBody)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	d, err := loadDoc()
	require.NoError(t, err)
	router, err := legacyRouter(d)
	require.NoError(t, err)
	require.NoError(t, validateResponse(router, req, resp, body), "%s -> %d %s", path, resp.StatusCode, body)
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// ok is call, requiring 200.
func (s *site) ok(t *testing.T, token, path string, headers ...string) response {
	t.Helper()
	r := s.call(t, token, path, headers...)
	require.Equal(t, http.StatusOK, r.status, "%s: %s", path, r.body)
	return r
}

// field collects one string field of a list's items, sorted.
func field(t *testing.T, r response, name string) []string {
	t.Helper()
	out := []string{}
	for _, it := range r.items(t) {
		m, ok := it.(map[string]any)
		require.True(t, ok, "%s", r.body)
		v, _ := m[name].(string)
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

const (
	hoursWindow = "window=2026-11-01T00:00:00Z,2026-11-01T06:00:00Z"
	hoursPath   = "/api/v1/reports/gpu-hours?" + hoursWindow + "&aggregate=project"
	teamBPath   = "/api/v1/projects/moc/nerc-ocp-prod/team-b"
	teamAPath   = "/api/v1/projects/moc/nerc-ocp-prod/team-a"
)

// hoursByProject reads the JSON GPU-hours report aggregated by project.
func hoursByProject(t *testing.T, r response) map[string]gpustore.GPUHoursRow {
	t.Helper()
	var page struct {
		Items []gpustore.GPUHoursRow `json:"items"`
	}
	require.NoError(t, json.Unmarshal(r.body, &page), "%s", r.body)
	out := map[string]gpustore.GPUHoursRow{}
	for _, row := range page.Items {
		// A project is a namespace on a cluster of a hub: all three keys.
		out[row.Keys[gpustore.KeyHub]+"/"+row.Keys[gpustore.KeyCluster]+"/"+row.Keys[gpustore.KeyProject]] = row
	}
	return out
}

// csvProjects reads the project column of a CSV report.
func csvProjects(t *testing.T, r response) []string {
	t.Helper()
	require.Contains(t, r.header.Get("Content-Type"), "text/csv")
	rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	require.NoError(t, err, "%s", r.body)
	require.NotEmpty(t, rows, "a header row")
	col := -1
	for i, name := range rows[0] {
		if name == "project" {
			col = i
		}
	}
	require.NotEqual(t, -1, col, "project column in %v", rows[0])
	out := []string{}
	for _, row := range rows[1:] {
		out = append(out, row[col])
	}
	sort.Strings(out)
	return out
}

func TestRealSite(t *testing.T) {
	s := startSite(t)
	truths := scheduleTruths(t)
	require.Contains(t, truths, "team-a")
	require.Contains(t, truths, "team-b")
	tokens := map[string]string{"team-a-reader": clientCredentialsToken(t, s.kc, "team-a-reader")}
	for _, user := range []string{"alice", "bob", "carol", "dave", "erin"} {
		tokens[user] = passwordToken(t, s.kc, user)
	}

	// A project member and the project's client-credentials reader see
	// exactly that project.
	for _, tc := range []struct{ caller, own, other string }{
		{"alice", "team-a", "team-b"},
		{"bob", "team-b", "team-a"},
		{"team-a-reader", "team-a", "team-b"},
	} {
		t.Run(tc.caller, func(t *testing.T) {
			tok, own := tokens[tc.caller], truths[tc.own]
			assert.Equal(t, []string{tc.own}, field(t, s.ok(t, tok, "/api/v1/projects"), "namespace"))
			assert.Equal(t, http.StatusOK, s.call(t, tok, "/api/v1/projects/moc/nerc-ocp-prod/"+tc.own).status)
			other := s.call(t, tok, "/api/v1/projects/moc/nerc-ocp-prod/"+tc.other)
			assert.Equal(t, http.StatusNotFound, other.status, "another project is not found, not forbidden")
			assert.Equal(t, mediaProblem, other.header.Get("Content-Type"))

			sessions := field(t, s.ok(t, tok, "/api/v1/sessions"), "namespace")
			assert.Len(t, sessions, own.Sessions)
			for _, ns := range sessions {
				assert.Equal(t, tc.own, ns)
			}

			rows := hoursByProject(t, s.ok(t, tok, hoursPath))
			require.Len(t, rows, 1, "only its own project's row")
			row, ok := rows["moc/nerc-ocp-prod/"+tc.own]
			require.True(t, ok, "%v", rows)
			assert.InEpsilon(t, own.Allocated, row.Allocated, 0.01, "allocated")
			assert.InEpsilon(t, own.Used, row.Used, 0.01, "used")
			if own.Idle == 0 {
				assert.InDelta(t, 0, row.Idle, 1e-9, "idle")
			} else {
				assert.InEpsilon(t, own.Idle, row.Idle, 0.01, "idle")
			}
			t.Logf("%s: allocated %.6f used %.6f idle %.6f GPU-hours", tc.own, row.Allocated, row.Used, row.Idle)

			csvRows := csvProjects(t, s.ok(t, tok, hoursPath, "Accept", "text/csv"))
			require.Len(t, csvRows, 1)
			assert.Contains(t, csvRows[0], tc.own)
			assert.NotContains(t, csvRows[0], tc.other)

			// The whole GPUs it held, and the MIG slices; no other.
			var whole []string
			for _, it := range s.ok(t, tok, "/api/v1/devices").items(t) {
				d := it.(map[string]any)
				if mig, _ := d["mig"].(bool); !mig {
					whole = append(whole, d["id"].(string))
				}
			}
			sort.Strings(whole)
			assert.Equal(t, own.GPUs, whole, "GPUs")
			assert.Equal(t, own.Slices, nonEmpty(field(t, s.ok(t, tok, "/api/v1/slices"), "id")), "slices")
		})
	}

	t.Run("carol, manager of the cluster, sees all of it", func(t *testing.T) {
		tok := tokens["carol"]
		assert.Equal(t, []string{"team-a", "team-b"}, field(t, s.ok(t, tok, "/api/v1/projects"), "namespace"))
		devices := s.ok(t, tok, "/api/v1/devices").items(t)
		var whole, mig int
		for _, it := range devices {
			if m, _ := it.(map[string]any)["mig"].(bool); m {
				mig++
			} else {
				whole++
			}
		}
		assert.Equal(t, 4, len(devices), "every GPU")
		assert.Equal(t, 3, whole)
		assert.Equal(t, 1, mig)
		assert.Len(t, s.ok(t, tok, "/api/v1/slices").items(t), 2, "every MIG slice")
		rows := hoursByProject(t, s.ok(t, tok, hoursPath))
		assert.Len(t, rows, 2)
		for ns, tr := range truths {
			row, ok := rows["moc/nerc-ocp-prod/"+ns]
			if assert.True(t, ok, ns) {
				assert.InEpsilon(t, tr.Allocated, row.Allocated, 0.01, ns)
			}
		}
		assert.Equal(t, []string{"team-a", "team-b"}, projectsOf(csvProjects(t, s.ok(t, tok, hoursPath, "Accept", "text/csv"))))
		var all int
		for _, tr := range truths {
			all += tr.Sessions
		}
		assert.Len(t, s.ok(t, tok, "/api/v1/sessions").items(t), all)
	})

	t.Run("dave, granted nothing, sees nothing", func(t *testing.T) {
		tok := tokens["dave"]
		for _, target := range []string{"/api/v1/hubs", "/api/v1/clusters", "/api/v1/nodes", "/api/v1/devices", "/api/v1/slices", "/api/v1/projects", "/api/v1/sessions", hoursPath} {
			assert.Empty(t, s.ok(t, tok, target).items(t), target)
		}
		for _, target := range []string{teamAPath, teamBPath, "/api/v1/clusters/moc/nerc-ocp-prod", "/api/v1/devices/" + truths["team-a"].GPUs[0]} {
			r := s.call(t, tok, target)
			assert.Equal(t, http.StatusNotFound, r.status, "%s: not found, not forbidden", target)
		}
	})

	t.Run("tampered and expired tokens are refused", func(t *testing.T) {
		tampered := []byte(tokens["alice"])
		// A byte in the signature's middle: the last character may only
		// carry padding bits.
		i := bytes.LastIndexByte(tampered, '.') + 10
		if tampered[i] == 'A' {
			tampered[i] = 'B'
		} else {
			tampered[i] = 'A'
		}
		refused := func(what, token string) {
			t.Helper()
			r := s.call(t, token, "/api/v1/projects")
			assert.Equal(t, http.StatusUnauthorized, r.status, what)
			assert.Equal(t, mediaProblem, r.header.Get("Content-Type"), what)
			assert.Equal(t, "Bearer", r.header.Get("WWW-Authenticate"), what)
			if token != "" {
				assert.NotContains(t, string(r.body), token, what)
			}
		}
		refused("tampered", string(tampered))

		setTokenLifespan(t, s.kc, "site-login", 2)
		expired := passwordToken(t, s.kc, "alice")
		// exp is 2 s after issue, the tolerated skew 1 s.
		time.Sleep(4 * time.Second)
		refused("expired", expired)
		refused("no token", "")
		assert.Equal(t, http.StatusOK, s.call(t, tokens["alice"], "/api/v1/projects").status, "alice's real token still works")
	})

	t.Run("Keycloak stopped: cached scopes keep working, others fail closed", func(t *testing.T) {
		s.kc.Stop()
		assert.Equal(t, []string{"team-a"}, field(t, s.ok(t, tokens["alice"], "/api/v1/projects"), "namespace"), "alice's cached scope")
		rows := hoursByProject(t, s.ok(t, tokens["alice"], hoursPath))
		assert.Len(t, rows, 1)
		assert.Contains(t, rows, "moc/nerc-ocp-prod/team-a")
		assert.Len(t, hoursByProject(t, s.ok(t, tokens["carol"], hoursPath)), 2, "carol's cached scope")

		// erin's token is valid (signature, exp) but was never scoped.
		r := s.call(t, tokens["erin"], "/api/v1/projects")
		assert.Equal(t, http.StatusServiceUnavailable, r.status, "%s", r.body)
		assert.Equal(t, mediaProblem, r.header.Get("Content-Type"))
		assert.NotEmpty(t, r.header.Get("Retry-After"))
		assert.NotContains(t, string(r.body), tokens["erin"])
		assert.NotContains(t, string(r.body), "team-a", "nothing of anyone's data")
	})
}

// nonEmpty is nil for an empty list (the schedule's truth has nil).
func nonEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// projectsOf maps CSV project cells (namespace or hub/cluster/namespace) to namespaces.
func projectsOf(cells []string) []string {
	out := make([]string, 0, len(cells))
	for _, c := range cells {
		out = append(out, path.Base(c))
	}
	return out
}
