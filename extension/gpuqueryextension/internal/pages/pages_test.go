package pages

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/nerc-project/ai-telemetry-collector/internal/authz"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// hoursOf reads a GPU-hours cell as the page prints it.
func hoursOf(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	require.NoError(t, err, "%q", s)
	return v
}

// near: the page rounds to 0.01 GPU-hours; the store is within 1% of the
// schedule (the embedded store's own tests hold it to that).
func near(t *testing.T, want, got float64, what string) {
	t.Helper()
	assert.InDelta(t, want, got, math.Max(0.006, want*0.01), what)
}

// TestProjectPageShowsTheSchedule: each member's project page shows the
// GPU-hours the schedule implies, one row per GPU and slice it held, one per
// session, and a CSV link for exactly the window shown.
func TestProjectPageShowsTheSchedule(t *testing.T) {
	reader := fixtureStore(t)
	for ns, tr := range truth(t) {
		t.Run(ns, func(t *testing.T) {
			s := newSite(t, reader, fixed(scopeOf(ns)))
			p := s.get("/projects/moc/nerc-ocp-prod/" + ns)
			require.Equal(t, http.StatusOK, p.status, p.body)
			near(t, tr.Allocated, hoursOf(t, p.one(t, "data-stat", "allocated")), "allocated")
			near(t, tr.Used, hoursOf(t, p.one(t, "data-stat", "used")), "used")
			near(t, tr.Idle, hoursOf(t, p.one(t, "data-stat", "idle")), "idle")
			var rows []string
			for _, n := range p.all("data-device", "") {
				rows = append(rows, attr(n, "data-device"))
			}
			assert.ElementsMatch(t, append(append([]string{}, tr.GPUs...), tr.Slices...), rows, "GPU-hours rows")
			assert.Len(t, p.all("data-session", ""), tr.Sessions, "sessions")
			assert.Equal(t, "1", attr(p.all("data-chart", "busy")[0], "data-series"))
			assert.Equal(t, strconv.Itoa(len(tr.GPUs)+len(tr.Slices)), attr(p.all("data-chart", "timeline")[0], "data-rows"))

			links := p.all("download", "")
			require.Len(t, links, 1)
			href := attr(links[0], "href")
			assert.Contains(t, href, "namespace="+ns)
			assert.Contains(t, href, "format=csv")
			assert.Contains(t, href, "window=2026-10-31T06%3A00%3A00Z%2C2026-11-01T06%3A00%3A00Z", "the exact window shown")
		})
	}
}

// TestOtherProjectIsNotFound: a member reaches nothing of another project,
// whichever page names it; the answer cannot tell "not yours" from "absent".
func TestOtherProjectIsNotFound(t *testing.T) {
	s := newSite(t, fixtureStore(t), fixed(scopeOf("team-a")))
	own := s.get("/projects/moc/nerc-ocp-prod/team-a")
	require.Equal(t, http.StatusOK, own.status)
	absent := s.get("/projects/moc/nerc-ocp-prod/no-such-team")
	require.Equal(t, http.StatusNotFound, absent.status)
	for _, path := range []string{
		"/projects/moc/nerc-ocp-prod/team-b",
		"/devices/" + gpuMIG,                 // only team-b's pods held its slices
		"/projects/moc/nerc-ocp-prod/Team_B", // not a namespace at all
		"/devices/not-a-gpu",
	} {
		p := s.get(path)
		assert.Equal(t, http.StatusNotFound, p.status, path)
		assert.Equal(t, text(p.all("class", "empty")[0]), text(absent.all("class", "empty")[0]), path)
		assert.NotContains(t, p.body, "bob@example.edu", path)
	}
	// team-b's session, found through its own member's page
	b := newSite(t, fixtureStore(t), fixed(scopeOf("team-b")))
	links := b.get("/projects/moc/nerc-ocp-prod/team-b").all("data-session", "")
	require.NotEmpty(t, links)
	href := sessionHref(t, links[0])
	require.Equal(t, http.StatusOK, b.get(href).status)
	assert.Equal(t, http.StatusNotFound, s.get(href).status, "team-a asks for team-b's session")
	assert.Equal(t, http.StatusNotFound, s.get(strings.Replace(href, "team-b", "team-a", 1)).status, "team-b's trace under team-a's name")
}

func sessionHref(t *testing.T, row *html.Node) string {
	t.Helper()
	var href string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "a" && href == "" {
			href = attr(n, "href")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(row)
	require.NotEmpty(t, href)
	return href
}

// TestOverview: a manager sees every GPU and slice in the grid and every
// project's GPU-hours; a member only their project, no grid; a caller
// granted nothing is told so.
func TestOverview(t *testing.T) {
	reader := fixtureStore(t)
	tr := truth(t)

	m := newSite(t, reader, fixed(scopeManager)).get("/")
	require.Equal(t, http.StatusOK, m.status, m.body)
	assert.Len(t, m.all("class", "gpu free"), 4, "4 GPUs, all free at the end of the schedule")
	assert.Len(t, m.all("class", "slice free"), 2, "the MIG GPU's 2 slices")
	assert.Len(t, m.all("data-project", ""), len(tr))
	for ns, want := range tr {
		row := m.all("data-project", ns)
		require.Len(t, row, 1, ns)
		var got float64
		for _, c := range cells(row[0]) {
			if attr(c, "data-col") == "allocated" {
				got = hoursOf(t, text(c))
			}
		}
		near(t, want.Allocated, got, ns)
	}
	assert.Equal(t, strconv.Itoa(len(tr)), attr(m.all("data-chart", "bars")[0], "data-bars"))
	assert.Contains(t, m.body, "No GPU is allocated and idle now.")

	a := newSite(t, reader, fixed(scopeOf("team-a"))).get("/")
	require.Equal(t, http.StatusOK, a.status)
	assert.Empty(t, a.all("class", "gpu free"), "members see no grid")
	require.Len(t, a.all("data-project", ""), 1)
	assert.Len(t, a.all("data-project", "team-a"), 1)
	assert.NotContains(t, a.body, "team-b")

	none := newSite(t, reader, fixed(gpustore.Scope{})).get("/")
	require.Equal(t, http.StatusOK, none.status)
	assert.Contains(t, none.body, "No project is granted to you")
	denied := newSite(t, reader, func(*http.Request) (gpustore.Scope, error) { return gpustore.Scope{}, authz.ErrDenied }).get("/")
	assert.Equal(t, http.StatusOK, denied.status)
	assert.Contains(t, denied.body, "No project is granted to you")

	// a window before any sample: the page says there is no data
	old := newSite(t, reader, fixed(scopeOf("team-a"))).get("/?window=2026-01-01T00:00:00Z,2026-01-02T00:00:00Z")
	require.Equal(t, http.StatusOK, old.status)
	assert.Contains(t, old.body, "No GPU data in this window yet")
}

func cells(n *html.Node) []*html.Node {
	var out []*html.Node
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode {
			out = append(out, c)
		}
	}
	return out
}

// TestDevicePage: the four charts draw one series each from the samples,
// the timeline and the GPU-hours name the project that held it.
func TestDevicePage(t *testing.T) {
	s := newSite(t, fixtureStore(t), fixed(scopeManager))
	p := s.get("/devices/" + gpuTrain)
	require.Equal(t, http.StatusOK, p.status, p.body)
	for _, id := range []string{"busy", "memory", "power", "temperature"} {
		c := p.all("data-chart", id)
		require.Len(t, c, 1, id)
		assert.Equal(t, "1", attr(c[0], "data-series"), id)
		lines := p.all("data-name", id)
		require.Len(t, lines, 1, id)
		assert.Greater(t, len(strings.Fields(attr(lines[0], "points"))), 10, "%s: a point per bucket with samples", id)
	}
	assert.Equal(t, "1", attr(p.all("data-chart", "timeline")[0], "data-rows"))
	assert.Len(t, p.all("data-project", "team-a"), 1)
	near(t, truth(t)["team-a"].Allocated-0.5, hoursOf(t, text(cells(p.all("data-project", "team-a")[0])[1])), "the training GPU's share")

	mig := s.get("/devices/" + gpuMIG)
	require.Equal(t, http.StatusOK, mig.status)
	assert.Contains(t, mig.body, "in MIG mode, 2 slices")
}

// TestSessionPage: a session opened from its project's list shows its pod,
// duration and busy ratio, and links to its trace when a trace URL is set.
func TestSessionPage(t *testing.T) {
	reader := fixtureStore(t)
	s := newSite(t, reader, fixed(scopeOf("team-a")), func(set *Settings) { set.TraceURL = "https://jaeger.example.org/trace/{traceId}" })
	var href, trace string
	for _, row := range s.get("/projects/moc/nerc-ocp-prod/team-a").all("data-session", "") {
		if strings.Contains(text(row), "llm-finetune-0") {
			href, trace = sessionHref(t, row), attr(row, "data-session")
		}
	}
	require.NotEmpty(t, href)
	p := s.get(href)
	require.Equal(t, http.StatusOK, p.status, p.body)
	assert.Equal(t, "2h 00m", p.one(t, "data-field", "duration"), "the schedule's 2 h allocation")
	assert.Equal(t, "90% on average", p.one(t, "data-field", "busy"))
	assert.Equal(t, "https://jaeger.example.org/trace/"+trace, attr(p.all("data-field", "trace")[0], "href"))
	assert.Equal(t, "1", attr(p.all("data-chart", "busy")[0], "data-series"))

	plain := newSite(t, reader, fixed(scopeOf("team-a"))).get(href)
	assert.Empty(t, plain.all("data-field", "trace"), "no trace URL configured, no link")
	assert.Contains(t, plain.body, trace)

	bad := s.get(strings.Split(href, "?")[0] + "?start=yesterday")
	assert.Equal(t, http.StatusBadRequest, bad.status)
	assert.Contains(t, bad.body, "start: must be")
	assert.Equal(t, http.StatusNotFound, s.get(strings.Replace(href, trace, strings.Repeat("0", 32), 1)).status)
}

// TestHeaders: every page and error forbids scripts, framing and sniffing;
// pages are never cached, assets are, under their content hash.
func TestHeaders(t *testing.T) {
	s := newSite(t, fixtureStore(t), fixed(scopeAll))
	for _, path := range []string{"/", "/projects/moc/nerc-ocp-prod/team-a", "/nope", "/?window=bad"} {
		p := s.get(path)
		assert.Equal(t, contentSecurityPolicy(nil), p.header.Get("Content-Security-Policy"), path)
		assert.NotContains(t, p.header.Get("Content-Security-Policy"), "unsafe-inline")
		assert.True(t, strings.HasPrefix(p.header.Get("Content-Security-Policy"), "default-src 'none';"), "scripts fall to default-src")
		assert.Equal(t, "nosniff", p.header.Get("X-Content-Type-Options"), path)
		assert.Equal(t, "no-store", p.header.Get("Cache-Control"), path)
		assert.Empty(t, p.all("style", ""), "%s: no inline style (the CSP would block it)", path)
		assert.Empty(t, p.all("onclick", ""), path)
	}
	p := s.get("/")
	sheets := p.all("rel", "stylesheet")
	require.Len(t, sheets, 1)
	css := s.get(attr(sheets[0], "href"))
	require.Equal(t, http.StatusOK, css.status)
	assert.Equal(t, "text/css; charset=utf-8", css.header.Get("Content-Type"))
	assert.Equal(t, "public, max-age=31536000, immutable", css.header.Get("Cache-Control"))
	assert.Contains(t, css.body, ".gpu")
	assert.Equal(t, http.StatusNotFound, s.get(strings.Replace(attr(sheets[0], "href"), "/assets/", "/assets/0", 1)).status, "a stale hash is not served")

	resp, err := s.srv.Client().Post(s.srv.URL+"/", "text/plain", strings.NewReader("x"))
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

// failingReader fails every read.
type failingReader struct {
	gpustore.Reader
	err error
}

func (f failingReader) Projects(context.Context, gpustore.Filter) ([]gpustore.Project, error) {
	return nil, f.err
}

// TestErrorPages: a bad window names the parameter; an unreachable
// authorization server and a failing store are said apart; local mode says so.
func TestErrorPages(t *testing.T) {
	reader := fixtureStore(t)
	s := newSite(t, reader, fixed(scopeAll))
	bad := s.get("/?window=forever")
	assert.Equal(t, http.StatusBadRequest, bad.status)
	assert.Contains(t, bad.body, "window: must be")
	assert.NotContains(t, bad.body, "Local mode")

	down := newSite(t, reader, func(*http.Request) (gpustore.Scope, error) {
		return gpustore.Scope{}, fmt.Errorf("asking keycloak: %w", authz.ErrUnavailable)
	}).get("/projects/moc/nerc-ocp-prod/team-a")
	assert.Equal(t, http.StatusServiceUnavailable, down.status)
	assert.Equal(t, "5", down.header.Get("Retry-After"))
	assert.NotContains(t, down.body, "keycloak", "the cause stays in the log")

	refused := newSite(t, reader, func(*http.Request) (gpustore.Scope, error) {
		return gpustore.Scope{}, errors.New("token has no subject")
	}).get("/")
	assert.Equal(t, http.StatusForbidden, refused.status, "a scope that cannot be decided is no store failure")
	assert.NotContains(t, refused.body, "subject")

	broken := newSite(t, failingReader{Reader: reader, err: errors.New("disk on fire")}, fixed(scopeAll)).get("/projects/moc/nerc-ocp-prod/team-a")
	assert.Equal(t, http.StatusInternalServerError, broken.status)
	assert.NotContains(t, broken.body, "disk on fire")
	slow := newSite(t, failingReader{Reader: reader, err: context.DeadlineExceeded}, fixed(scopeAll)).get("/")
	assert.Equal(t, http.StatusServiceUnavailable, slow.status)

	local := newSite(t, reader, fixed(scopeAll), func(set *Settings) { set.Local = true })
	for _, path := range []string{"/", "/nope"} {
		assert.Contains(t, local.get(path).body, "Local mode:", path)
	}
}

// TestCounted: every answer is counted under its route.
func TestCounted(t *testing.T) {
	s := newSite(t, fixtureStore(t), fixed(scopeOf("team-a")))
	s.get("/projects/moc/nerc-ocp-prod/team-a")
	s.get("/projects/moc/nerc-ocp-prod/team-b")
	s.get("/nope")
	s.counts.Lock()
	defer s.counts.Unlock()
	assert.Equal(t, map[string]int{
		"page GET /projects/{hub}/{cluster}/{namespace} OK":        1,
		"page GET /projects/{hub}/{cluster}/{namespace} Not Found": 1,
		"unmatched Not Found": 1,
	}, s.counts.byRoute)
}

// heldReader reports, on top of the fixtures, a GPU held by team-a with a
// last sample of a minute ago and one held since an hour ago's last sample,
// both idle.
type heldReader struct {
	gpustore.Reader
	now time.Time
}

func (h heldReader) Devices(context.Context, gpustore.Filter) ([]gpustore.Device, error) {
	return []gpustore.Device{
		{Hub: hub, Cluster: cluster, Node: "n1", ID: gpuTrain, Index: "0", State: gpustore.StateIdle, Holder: &gpustore.Holder{Namespace: "team-a", Pod: "fresh-0"}, LastSeen: h.now.Add(-time.Minute)},
		{Hub: hub, Cluster: cluster, Node: "n1", ID: gpuNotebook, Index: "1", State: gpustore.StateIdle, Holder: &gpustore.Holder{Namespace: "team-a", Pod: "gone-0"}, LastSeen: h.now.Add(-time.Hour)},
	}, nil
}

func (h heldReader) Idle(context.Context, gpustore.Filter) ([]gpustore.IdleAllocation, error) {
	return []gpustore.IdleAllocation{
		{Hub: hub, Cluster: cluster, Node: "n1", Device: gpuTrain, Namespace: "team-a", Pod: "fresh-0", Fraction: 1, LastSeen: h.now.Add(-time.Minute)},
		{Hub: hub, Cluster: cluster, Node: "n1", Device: gpuNotebook, Namespace: "team-a", Pod: "gone-0", Fraction: 1, LastSeen: h.now.Add(-time.Hour)},
	}, nil
}

// TestHeldNowIsFresh: "held now" and the idle warnings count only last
// samples recent enough to describe now; the grid marks the stale GPU.
func TestHeldNowIsFresh(t *testing.T) {
	r := heldReader{Reader: fixtureStore(t), now: fixtureEnd}
	s := newSite(t, r, fixed(scopeAll))
	p := s.get("/projects/moc/nerc-ocp-prod/team-a")
	require.Equal(t, http.StatusOK, p.status, p.body)
	assert.Len(t, p.all("data-held", gpuTrain), 1)
	assert.Empty(t, p.all("data-held", gpuNotebook), "its last sample is an hour old")
	assert.Equal(t, "1", p.one(t, "data-field", "held-now"))
	assert.Len(t, p.all("data-idle", gpuTrain), 1)
	assert.Empty(t, p.all("data-idle", gpuNotebook))

	o := s.get("/")
	assert.Len(t, o.all("class", "gpu idle"), 1)
	assert.Len(t, o.all("class", "gpu stale"), 1)
}

// manyProjectsReader reports 25 projects, project-00 with 1 GPU-hour
// allocated to project-24 with 25, on top of the fixtures.
type manyProjectsReader struct{ gpustore.Reader }

func (manyProjectsReader) Projects(context.Context, gpustore.Filter) ([]gpustore.Project, error) {
	var out []gpustore.Project
	for i := range 25 {
		out = append(out, gpustore.Project{Hub: hub, Cluster: cluster, Namespace: fmt.Sprintf("project-%02d", i)})
	}
	return out, nil
}

func (manyProjectsReader) GPUHours(_ context.Context, q gpustore.GPUHoursQuery) ([]gpustore.GPUHoursRow, error) {
	var out []gpustore.GPUHoursRow
	for i := range 25 {
		out = append(out, gpustore.GPUHoursRow{
			Start: q.Window.From, End: q.Window.To, Allocated: float64(i + 1), Used: float64(i+1) / 2,
			Keys: map[string]string{gpustore.KeyHub: hub, gpustore.KeyCluster: cluster, gpustore.KeyProject: fmt.Sprintf("project-%02d", i)},
		})
	}
	return out, nil
}

// TestOverviewChartsTheMostAllocated: the chart draws the 20 most allocated
// projects and says so; the table lists every project.
func TestOverviewChartsTheMostAllocated(t *testing.T) {
	p := newSite(t, manyProjectsReader{fixtureStore(t)}, fixed(scopeAll)).get("/")
	require.Equal(t, http.StatusOK, p.status, p.body)
	assert.Len(t, p.all("data-project", ""), 25, "the table lists them all")
	chart := p.all("data-chart", "bars")
	require.Len(t, chart, 1)
	assert.Equal(t, "20", attr(chart[0], "data-bars"))
	assert.Contains(t, text(chart[0]), "the 20 most allocated of 25 projects")
	var drawn []string
	for _, r := range p.all("class", "bar allocated") {
		drawn = append(drawn, strings.SplitN(text(r), ":", 2)[0])
	}
	var want []string
	for i := 24; i >= 5; i-- {
		want = append(want, fmt.Sprintf("project-%02d", i))
	}
	assert.Equal(t, want, drawn, "most allocated first")
}
