//go:build browser

package gpuqueryextension

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.uber.org/zap"

	"github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/metadata"
	"github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/pages"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore/embedded"
)

// The browser tests drive Debian's chromium (CHROMIUM_BINARY, or chromium on
// PATH) with chromedp over the real pages. Each page is checked in the
// browser: no console error, no failed request, the charts drawn, axe-core
// (AXE_CORE_JS, installed by make browser-test from test/browser's lockfile)
// with no serious or critical violation, and a screenshot saved under
// BROWSER_ARTIFACTS.

// tab is a browser tab that records what went wrong on it.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string
}

func newBrowserContext(t *testing.T) context.Context {
	t.Helper()
	bin := os.Getenv("CHROMIUM_BINARY")
	if bin == "" {
		var err error
		bin, err = exec.LookPath("chromium")
		require.NoError(t, err, "chromium is needed (Debian: chromium; make deps)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.WindowSize(1280, 900),
		chromedp.NoSandbox, // as root in CI: chromium refuses its sandbox there
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	bctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(cancelB)
	require.NoError(t, chromedp.Do(bctx)) // start the browser
	return bctx
}

// newTab opens a tab of the browser and listens to its errors.
func newTab(t *testing.T, browser context.Context) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	tb := &tab{t: t, ctx: ctx}
	require.NoError(t, chromedp.Do(ctx))
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		var p string
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				p = "console error"
			}
		case *runtime.EventExceptionThrown:
			p = "exception: " + e.ExceptionDetails.Text
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError {
				p = "log error: " + e.Entry.Text + " " + e.Entry.URL
			}
		case *network.EventLoadingFailed:
			p = "failed request: " + e.ErrorText
		case *network.EventResponseReceived:
			if e.Response.Status >= 400 {
				p = fmt.Sprintf("HTTP %d: %s", e.Response.Status, e.Response.URL)
			}
		}
		if p != "" {
			tb.mu.Lock()
			tb.problems = append(tb.problems, p)
			tb.mu.Unlock()
		}
	}))
	return tb
}

// takeProblems returns and clears what went wrong since the last call.
func (tb *tab) takeProblems() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	p := tb.problems
	tb.problems = nil
	return p
}

func (tb *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 60*time.Second)
	defer cancel()
	require.NoError(tb.t, chromedp.Do(ctx, steps...))
}

func eval[T any](tb *tab, js string, opts ...chromedp.EvaluateOption) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, opts...))
	require.NoError(tb.t, err, js)
	return v
}

// waitURL waits up to 10 s for the tab's address to satisfy ok.
func (tb *tab) waitURL(ok func(string) bool) bool {
	tb.t.Helper()
	for range 100 {
		if u, err := chromedp.Run(tb.ctx, chromedp.Location()); err == nil && ok(u) {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// open navigates and waits for the page to be shown.
func (tb *tab) open(url string) {
	tb.t.Helper()
	tb.do(chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("body")))
}

// chartProblems: each chart's figure says how many series, rows or bars it
// has; the drawing must have that many, laid out (the stylesheet loaded).
const chartProblems = `(() => {
  const out = [];
  for (const f of document.querySelectorAll("figure[data-chart]")) {
    const id = f.dataset.chart, svg = f.querySelector("svg");
    if (!svg) { if (!f.querySelector(".nodata")) out.push(id + ": neither a drawing nor an empty state"); continue; }
    const want = Number(f.dataset.series ?? f.dataset.rows ?? f.dataset.bars);
    const got = f.dataset.series !== undefined ? svg.querySelectorAll("polyline").length
      : f.dataset.rows !== undefined ? svg.querySelectorAll("g.row").length
      : svg.querySelectorAll("rect.allocated").length;
    if (got !== want) out.push(id + ": " + got + " drawn, " + want + " expected");
    if (svg.getBoundingClientRect().width < 280) out.push(id + ": " + svg.getBoundingClientRect().width + " px wide");
  }
  return out;
})()`

// axe runs axe-core in the page: the serious and critical violations.
func (tb *tab) axe() []string {
	tb.t.Helper()
	path := os.Getenv("AXE_CORE_JS")
	require.NotEmpty(tb.t, path, "AXE_CORE_JS: run through make browser-test (npm ci in test/browser)")
	src, err := os.ReadFile(path)
	require.NoError(tb.t, err)
	// DevTools' evaluate is not subject to the page's CSP, which forbids every script
	eval[chromedp.Void](tb, string(src))
	return eval[[]string](tb, `axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
	  .then(r => r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
	  .map(v => v.id + " (" + v.impact + "): " + v.nodes.map(n => n.target.join(" ")).slice(0, 3).join(", ")))`, chromedp.EvalAwaitPromise)
}

// screenshot saves the whole page as PNG (quality 100; less is JPEG) under
// BROWSER_ARTIFACTS (or the test's
// temporary directory).
func (tb *tab) screenshot(name string) string {
	tb.t.Helper()
	dir := os.Getenv("BROWSER_ARTIFACTS")
	if dir == "" {
		dir = tb.t.TempDir()
	}
	require.NoError(tb.t, os.MkdirAll(dir, 0o755))
	ctx, cancel := context.WithTimeout(tb.ctx, 60*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(tb.t, err)
	path := filepath.Join(dir, name+".png")
	require.NoError(tb.t, os.WriteFile(path, png, 0o644))
	return path
}

// checkPage is what every page must pass.
func (tb *tab) checkPage(name string) {
	tb.t.Helper()
	assert.Empty(tb.t, eval[[]string](tb, chartProblems), "%s: charts", name)
	assert.Empty(tb.t, tb.axe(), "%s: axe-core, serious or critical", name)
	tb.screenshot(name)
	assert.Empty(tb.t, tb.takeProblems(), "%s: console errors and failed requests", name)
}

// localSite serves the pages and the API as local mode does, over the real
// embedded store holding the recorded fixtures, at the fixtures' end.
func localSite(t *testing.T) string {
	t.Helper()
	store, err := embedded.Open(context.Background(), embedded.Config{Path: filepath.Join(t.TempDir(), "gpu.db"), Now: func() time.Time { return fixtureEnd }})
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	loadFixtures(t, store)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	tb, err := metadata.NewTelemetryBuilder(tel.NewTelemetrySettings())
	require.NoError(t, err)
	now := func() time.Time { return fixtureEnd }
	a, err := newAPI(apiSettings{reader: store, scoper: localScoper, local: true, telemetry: tb, logger: zap.NewNop(), now: now})
	require.NoError(t, err)
	p, err := pages.New(pages.Settings{
		Reader: store, Scope: func(r *http.Request) (gpustore.Scope, error) { return localScoper.ReadScope(r.Context()) },
		Local: true, TraceURL: "http://127.0.0.1:16686/trace/{traceId}", Now: now, Logger: zap.NewNop(), Count: a.count,
	})
	require.NoError(t, err)
	srv := httptest.NewServer(router{api: a, pages: p})
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestBrowserPages: every page in a real browser, on a laptop's screen and
// a phone's, keyboard first.
func TestBrowserPages(t *testing.T) {
	base := localSite(t)
	browser := newBrowserContext(t)
	tb := newTab(t, browser)

	tb.open(base + "/")
	assert.Equal(t, 4, eval[int](tb, `document.querySelectorAll("li.gpu").length`), "the grid's GPUs")
	assert.Equal(t, 2, eval[int](tb, `document.querySelectorAll("li.slice").length`), "the MIG GPU's slices")
	assert.Contains(t, eval[string](tb, `document.querySelector(".banner").innerText`), "Local mode")
	tb.checkPage("overview")

	// keyboard: the first Tab reaches the skip link, which is then visible
	tb.do(chromedp.KeyEvent("\t"))
	assert.Equal(t, "Skip to content", eval[string](tb, `document.activeElement.innerText`))
	assert.Greater(t, eval[float64](tb, `document.activeElement.getBoundingClientRect().left`), 0.0, "the focused skip link is on screen")

	// the project page's first load, cold cache: the budget is 200 KB
	cold := newTab(t, browser)
	cold.do(func(ctx context.Context, target *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, target, network.ClearBrowserCache, cdp.Empty{})
		return chromedp.Void{}, err
	})
	cold.open(base + "/projects/moc/nerc-ocp-prod/team-a")
	transferred := eval[float64](cold, `performance.getEntriesByType("navigation")[0].transferSize +
	  performance.getEntriesByType("resource").reduce((n, e) => n + e.transferSize, 0)`)
	t.Logf("project page, first load: %.0f bytes transferred", transferred)
	assert.Less(t, transferred, 200*1024.0, "first load of the project page")
	assert.Greater(t, transferred, 1000.0, "the measurement counts the page")

	tb.open(base + "/projects/moc/nerc-ocp-prod/team-a")
	assert.Equal(t, "2.50", eval[string](tb, `document.querySelector("[data-stat=allocated]").innerText`))
	assert.Equal(t, 2, eval[int](tb, `document.querySelectorAll("tr[data-session]").length`))
	shot := tb.screenshot("project")
	tb.checkPage("project-team-a")
	if dst := os.Getenv("README_SCREENSHOT"); dst != "" {
		b, err := os.ReadFile(shot)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(dst, b, 0o644))
	}
	session := eval[string](tb, `document.querySelector("tr[data-session] a").href`)

	tb.open(base + "/projects/moc/nerc-ocp-prod/team-b")
	tb.checkPage("project-team-b")
	tb.open(session)
	assert.Contains(t, eval[string](tb, `document.querySelector("[data-field=trace]").href`), "/trace/")
	tb.checkPage("session")
	tb.open(base + "/devices/GPU-3f1c9a2e-7b4d-4e1a-9c55-0d2b8e6f1a70")
	assert.Equal(t, 4, eval[int](tb, `document.querySelectorAll("figure[data-series] polyline").length`), "utilization, memory, power, temperature")
	tb.checkPage("device")
	tb.open(base + "/devices/GPU-6b0d4e93-2f8a-4c17-b3e5-91a7c2d8f604")
	tb.checkPage("device-mig")

	// the window picker keeps its choice in the address
	tb.open(base + "/projects/moc/nerc-ocp-prod/team-a")
	tb.do(chromedp.SetValue(chromedp.CSS("#window"), "7d"), chromedp.Click(chromedp.CSS("form.window button")))
	assert.True(t, tb.waitURL(func(u string) bool { return strings.HasSuffix(u, "?window=7d") }), "the address holds the window chosen")
	assert.Equal(t, "7d", eval[string](tb, `document.querySelector("#window").value`), "and the picker shows it")

	// a phone: nothing wider than the screen (tables scroll in their box)
	tb.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	for _, path := range []string{"/", "/projects/moc/nerc-ocp-prod/team-a", "/devices/GPU-3f1c9a2e-7b4d-4e1a-9c55-0d2b8e6f1a70"} {
		tb.open(base + path)
		assert.LessOrEqual(t, eval[int](tb, `document.documentElement.scrollWidth`), 390, "%s on a phone", path)
	}
	tb.screenshot("project-phone")
	tb.do(chromedp.EmulateReset())

	tb.open(base + "/nope")
	assert.Contains(t, eval[string](tb, `document.body.innerText`), "There is no such page")
	assert.NotEmpty(t, tb.takeProblems(), "the 404 is seen as one (the listener works)")
}

// TestBrowserCSPBlocksInjectedScript: a script injected into a page does not
// run (the CSP forbids inline script), while the same injection runs on a
// page without the policy.
func TestBrowserCSPBlocksInjectedScript(t *testing.T) {
	base := localSite(t)
	browser := newBrowserContext(t)
	inject := `(() => { const s = document.createElement("script"); s.textContent = "window.__injected = 1"; document.body.appendChild(s);
	  return new Promise(r => setTimeout(() => r(window.__injected === 1), 200)); })()`

	control := newTab(t, browser)
	control.open("about:blank")
	require.True(t, eval[bool](control, inject, chromedp.EvalAwaitPromise), "without a CSP the injection runs: the check can fail")

	tb := newTab(t, browser)
	tb.open(base + "/projects/moc/nerc-ocp-prod/team-a")
	violations := `new Promise(r => { document.addEventListener("securitypolicyviolation", e => r(e.violatedDirective), {once: true}); ` + inject + `; })`
	assert.False(t, eval[bool](tb, inject, chromedp.EvalAwaitPromise), "the CSP stopped the injected script")
	tb.open(base + "/projects/moc/nerc-ocp-prod/team-a")
	assert.Contains(t, eval[string](tb, violations, chromedp.EvalAwaitPromise), "script-src", "the violation names the directive")
}

// TestBrowserLogin: alice logs in through the real Keycloak's login page in
// the browser, sees her project only, with her name and a logout button;
// logging out ends at Keycloak's login page again.
func TestBrowserLogin(t *testing.T) {
	s, public := startLoginSite(t)
	browser := newBrowserContext(t)
	tb := newTab(t, browser)

	tb.open(public + "/" + fixtureWindow)
	require.True(t, tb.waitURL(func(u string) bool { return strings.HasPrefix(u, s.kc.URL()) }), "sent to Keycloak")
	tb.do(chromedp.WaitVisible(chromedp.CSS("#username")))
	tb.screenshot("keycloak-login")
	tb.do(
		chromedp.SendKeys(chromedp.CSS("#username"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#password"), s.kc.Secret("alice")),
		chromedp.Click(chromedp.CSS("#kc-login")),
	)
	require.True(t, tb.waitURL(func(u string) bool { return u == public+"/"+fixtureWindow }), "back where the login started")
	tb.do(chromedp.WaitVisible(chromedp.CSS("[data-field=user]")))
	tb.takeProblems() // Keycloak's pages are not under test
	assert.Equal(t, "alice", eval[string](tb, `document.querySelector("[data-field=user]").innerText`))
	assert.Equal(t, []string{"team-a"}, eval[[]string](tb, `[...document.querySelectorAll("tr[data-project]")].map(r => r.dataset.project)`))
	assert.False(t, eval[bool](tb, `document.cookie.includes("ait-session")`), "the session cookie is HttpOnly: no script reads it")
	tb.checkPage("overview-alice")

	tb.open(public + "/projects/moc/nerc-ocp-prod/team-a" + fixtureWindow)
	tb.checkPage("project-alice")

	tb.do(chromedp.Click(chromedp.CSS("form.logout button")))
	require.True(t, tb.waitURL(func(u string) bool { return strings.HasPrefix(u, s.kc.URL()) }), "logged out through Keycloak")
	tb.do(chromedp.WaitVisible(chromedp.CSS("#kc-form-login")))
	tb.open(public + "/" + fixtureWindow)
	assert.True(t, tb.waitURL(func(u string) bool { return strings.HasPrefix(u, s.kc.URL()) }), "the site's session is gone: login again")
}

// TestBrowserBrokeredLogin: with kc_idp_hint=github the login skips
// Keycloak's own page and goes to the identity provider Keycloak brokers: a
// second realm of the same Keycloak stands in for GitHub (unreachable
// here). Its user gina comes back as a new NERC user whom the broker's
// mapper puts in team-a, and she sees team-a.
func TestBrowserBrokeredLogin(t *testing.T) {
	s, public := startLoginSite(t, "github")
	browser := newBrowserContext(t)
	tb := newTab(t, browser)

	tb.open(public + "/" + fixtureWindow)
	require.True(t, tb.waitURL(func(u string) bool { return strings.Contains(u, "/realms/github-standin/") }),
		"kc_idp_hint sends the browser past NERC's login page to the identity provider")
	tb.do(chromedp.WaitVisible(chromedp.CSS("#username")))
	tb.screenshot("broker-login")
	tb.do(
		chromedp.SendKeys(chromedp.CSS("#username"), "gina"),
		chromedp.SendKeys(chromedp.CSS("#password"), s.kc.Secret("gina")),
		chromedp.Click(chromedp.CSS("#kc-login")),
	)
	if !tb.waitURL(func(u string) bool { return u == public+"/"+fixtureWindow }) {
		tb.screenshot("broker-stuck")
		t.Fatalf("the brokered login did not come back to the site (screenshot broker-stuck): %s", eval[string](tb, `location.href`))
	}
	tb.do(chromedp.WaitVisible(chromedp.CSS("[data-field=user]")))
	tb.takeProblems()
	assert.Equal(t, "gina", eval[string](tb, `document.querySelector("[data-field=user]").innerText`))
	assert.Equal(t, []string{"team-a"}, eval[[]string](tb, `[...document.querySelectorAll("tr[data-project]")].map(r => r.dataset.project)`))
	tb.checkPage("overview-brokered")
}
