//go:build integration || browser

package gpuqueryextension

import (
	"encoding/csv"
	"io"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"golang.org/x/net/html"

	"github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/login"
	"github.com/nerc-project/ai-telemetry-collector/internal/testpeers"
)

// startLoginSite is the site with the OpenID Connect login against the real
// Keycloak: its confidential client site-web gets this run's callback and
// post-logout address. idpHint, when given, is the login's kc_idp_hint.
func startLoginSite(t *testing.T, idpHint ...string) (*site, string) {
	t.Helper()
	var public string
	s := startSite(t, func(q *Config, kc *testpeers.Keycloak) {
		public = "http://" + q.HTTP.NetAddr.Endpoint
		q.HTTP.Auth = configoptional.None[confighttp.AuthConfig]()
		q.Login = &login.Config{
			IssuerURL: kc.URL() + "/realms/" + kc.Realm(), PublicURL: public,
			ClientID: "site-web", ClientSecret: configopaque.String(kc.Secret("site-web")),
		}
		if len(idpHint) > 0 {
			q.Login.IdPHint = idpHint[0]
		}
		updateClient(t, kc, "site-web", func(c map[string]any) {
			c["redirectUris"] = []string{public + login.PathCallback}
			attrs, _ := c["attributes"].(map[string]any)
			if attrs == nil {
				attrs = map[string]any{}
			}
			attrs["post.logout.redirect.uris"] = public + "/"
			c["attributes"] = attrs
		})
	})
	return s, public
}

// browser is a cookie-keeping HTTP client that records every answer's
// Set-Cookie, as a browser's network panel would show them.
type browser struct {
	t      *testing.T
	c      *http.Client
	mu     sync.Mutex
	cookie []*http.Cookie
}

func newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	b := &browser{t: t}
	b.c = &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: recorder{b, http.DefaultTransport}}
	return b
}

type recorder struct {
	b    *browser
	next http.RoundTripper
}

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err == nil {
		r.b.mu.Lock()
		r.b.cookie = append(r.b.cookie, resp.Cookies()...)
		r.b.mu.Unlock()
	}
	return resp, err
}

type visit struct {
	status int
	url    *url.URL
	body   string
	doc    *html.Node
}

func (b *browser) do(req *http.Request) visit {
	b.t.Helper()
	resp, err := b.c.Do(req)
	require.NoError(b.t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	doc, err := html.Parse(strings.NewReader(string(body)))
	require.NoError(b.t, err)
	return visit{status: resp.StatusCode, url: resp.Request.URL, body: string(body), doc: doc}
}

func (b *browser) get(u string) visit {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, http.NoBody)
	require.NoError(b.t, err)
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) visit {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func findAll(n *html.Node, ok func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	if n.Type == html.ElementNode && ok(n) {
		out = append(out, n)
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		out = append(out, findAll(c, ok)...)
	}
	return out
}

func hasAttr(key, value string) func(*html.Node) bool {
	return func(n *html.Node) bool { return testpeers.Attr(n, key) == value }
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

// submitKeycloakLogin fills Keycloak's own login page (form kc-form-login)
// as a user would and follows where Keycloak sends the browser.
func (b *browser) submitKeycloakLogin(page visit, kc *testpeers.Keycloak, user string) visit {
	b.t.Helper()
	action, form, err := kc.LoginForm(page.url, page.doc, user)
	require.NoError(b.t, err, "Keycloak's login page: %.400s", page.body)
	return b.post(action.String(), form)
}

// TestRealSiteLogin: members and a manager log in through the real
// Keycloak's login page and see exactly what Keycloak grants them; the
// session cookie is HttpOnly and SameSite=Lax; CSRF, open redirects, logout
// and a session Keycloak ended are handled.
func TestRealSiteLogin(t *testing.T) {
	s, public := startLoginSite(t)
	truths := scheduleTruths(t)

	loginAs := func(t *testing.T, user, start string) (*browser, visit) {
		b := newBrowser(t)
		kcPage := b.get(public + start)
		require.Equal(t, http.StatusOK, kcPage.status)
		require.True(t, strings.HasPrefix(kcPage.url.String(), s.kc.URL()), "a page without a session goes to Keycloak: %s", kcPage.url)
		return b, b.submitKeycloakLogin(kcPage, s.kc, user)
	}
	projectsOn := func(v visit) []string {
		var out []string
		for _, n := range findAll(v.doc, func(n *html.Node) bool { return testpeers.Attr(n, "data-project") != "" && n.Data == "tr" }) {
			out = append(out, testpeers.Attr(n, "data-project"))
		}
		return out
	}

	t.Run("each sees what Keycloak grants", func(t *testing.T) {
		for _, tc := range []struct {
			user     string
			projects []string
			grid     bool
		}{
			{"alice", []string{"team-a"}, false},
			{"bob", []string{"team-b"}, false},
			{"carol", []string{"team-a", "team-b"}, true},
		} {
			t.Run(tc.user, func(t *testing.T) {
				b, home := loginAs(t, tc.user, "/"+fixtureWindow)
				require.Equal(t, http.StatusOK, home.status, "%.600s", home.body)
				require.Equal(t, public+"/"+fixtureWindow, home.url.String(), "back where the login started")
				assert.Equal(t, tc.user, textOf(testpeers.FindElement(home.doc, hasAttr("data-field", "user"))))
				assert.ElementsMatch(t, tc.projects, projectsOn(home))
				grid := findAll(home.doc, func(n *html.Node) bool { return strings.HasPrefix(testpeers.Attr(n, "class"), "gpu ") })
				assert.Equal(t, tc.grid, len(grid) == 4, "the GPU grid (4 GPUs) is for managers: %d cells", len(grid))

				for ns, tr := range truths {
					p := b.get(public + "/projects/moc/nerc-ocp-prod/" + ns + fixtureWindow)
					granted := false
					for _, g := range tc.projects {
						granted = granted || g == ns
					}
					if !granted {
						assert.Equal(t, http.StatusNotFound, p.status, "%s may not see %s", tc.user, ns)
						continue
					}
					require.Equal(t, http.StatusOK, p.status, "%s on %s", tc.user, ns)
					alloc, err := strconv.ParseFloat(textOf(testpeers.FindElement(p.doc, hasAttr("data-stat", "allocated"))), 64)
					require.NoError(t, err)
					// printed to 0.01; the store is within 1% of the schedule
					assert.InDelta(t, tr.Allocated, alloc, math.Max(0.006, tr.Allocated/100), "%s: allocated GPU-hours of %s", tc.user, ns)
					dl := testpeers.FindElement(p.doc, func(n *html.Node) bool { _, ok := attrIs(n, "download"); return ok })
					require.NotNil(t, dl)
					csvURL, err := url.Parse(public + testpeers.Attr(dl, "href"))
					require.NoError(t, err)
					// the CSV download goes to the API with the browser's session
					c := b.get(csvURL.String())
					require.Equal(t, http.StatusOK, c.status, "%s", c.body)
					rows, err := csv.NewReader(strings.NewReader(c.body)).ReadAll()
					require.NoError(t, err)
					var devices []string
					for _, r := range rows[1:] {
						devices = append(devices, r[len(r)-5])
					}
					assert.ElementsMatch(t, append(append([]string{}, tr.GPUs...), tr.Slices...), devices, "%s: CSV rows of %s", tc.user, ns)
				}
			})
		}
	})

	t.Run("cookie flags, CSRF, logout", func(t *testing.T) {
		b, home := loginAs(t, "alice", "/")
		require.Equal(t, http.StatusOK, home.status)
		var sess *http.Cookie
		for _, c := range b.cookie {
			if c.Name == "ait-session" && c.Value != "" {
				sess = c
			}
		}
		require.NotNil(t, sess, "the session cookie")
		assert.True(t, sess.HttpOnly)
		assert.Equal(t, http.SameSiteLaxMode, sess.SameSite)
		assert.Equal(t, "/", sess.Path)
		assert.False(t, sess.Secure, "http on loopback: not Secure (an https public_url sets Secure and __Host-)")

		for _, form := range []url.Values{{}, {login.CSRFField: {"forged"}}} {
			r := b.post(public+login.PathLogout, form)
			assert.Equal(t, http.StatusForbidden, r.status, "logout without the page's CSRF token")
		}
		assert.Equal(t, http.StatusOK, b.get(public+"/").status, "the refused logouts ended nothing")

		token := testpeers.Attr(testpeers.FindElement(home.doc, hasAttr("name", login.CSRFField)), "value")
		require.NotEmpty(t, token)
		out := b.post(public+login.PathLogout, url.Values{login.CSRFField: {token}})
		// Keycloak ended its session too and sent the browser back, which the
		// site sends to the login again: Keycloak's login form, not the overview
		require.True(t, strings.HasPrefix(out.url.String(), s.kc.URL()), "after logout: %s %.300s", out.url, out.body)
		assert.NotNil(t, testpeers.FindElement(out.doc, hasAttr("id", "kc-form-login")))

		stale := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		req, err := http.NewRequest(http.MethodGet, public+"/", http.NoBody)
		require.NoError(t, err)
		req.AddCookie(&http.Cookie{Name: sess.Name, Value: sess.Value})
		resp, err := stale.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusSeeOther, resp.StatusCode, "the logged-out session is gone")
		assert.True(t, strings.HasPrefix(resp.Header.Get("Location"), login.PathLogin))
	})

	t.Run("open redirect refused", func(t *testing.T) {
		for _, next := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example"} {
			_, landed := loginAs(t, "bob", login.PathLogin+"?next="+url.QueryEscape(next))
			assert.Equal(t, public+"/", landed.url.String(), "next=%s", next)
		}
	})

	t.Run("token refreshed; a session Keycloak ended goes back to login", func(t *testing.T) {
		setTokenLifespan(t, s.kc, "site-web", 3)
		b, home := loginAs(t, "alice", "/projects/moc/nerc-ocp-prod/team-a")
		require.Equal(t, http.StatusOK, home.status)
		time.Sleep(4 * time.Second) // the access token has expired: the site refreshes it
		again := b.get(public + "/projects/moc/nerc-ocp-prod/team-a")
		require.Equal(t, public+"/projects/moc/nerc-ocp-prod/team-a", again.url.String(), "no new login: the refreshed token served")
		require.Equal(t, http.StatusOK, again.status)

		endUserSessions(t, s.kc, "alice")
		time.Sleep(4 * time.Second)
		gone := b.get(public + "/projects/moc/nerc-ocp-prod/team-a")
		require.True(t, strings.HasPrefix(gone.url.String(), s.kc.URL()), "the refresh is refused: back to Keycloak's login, at %s", gone.url)
		assert.NotNil(t, testpeers.FindElement(gone.doc, hasAttr("id", "kc-form-login")))
	})
}

// fixtureWindow is the recorded schedule's month: the pages' default
// window (the last 24 h) holds none of it.
const fixtureWindow = "?window=month:2026-11"

func attrIs(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// endUserSessions logs a user out of every Keycloak session (admin REST
// API, as site-admin): their refresh tokens stop working.
func endUserSessions(t *testing.T, kc *testpeers.Keycloak, user string) {
	t.Helper()
	hc := adminClient(t, kc)
	base := kc.URL() + "/admin/realms/" + kc.Realm() + "/users"
	var users []map[string]any
	getJSON(t, hc, base+"?exact=true&username="+url.QueryEscape(user), &users)
	require.Len(t, users, 1)
	resp, err := hc.Post(base+"/"+users[0]["id"].(string)+"/logout", "application/json", http.NoBody)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
}
