package login

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

func TestSafeNext(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/projects/moc/nerc-ocp-prod/team-a?window=7d", "/projects/moc/nerc-ocp-prod/team-a?window=7d"},
		{"https://evil.example/", "/"},
		{"//evil.example/x", "/"},
		{"/\\evil.example", "/"},
		{"evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"/ok\r\nSet-Cookie: x=y", "/"},
	} {
		assert.Equal(t, tt.want, SafeNext(tt.in), "%q", tt.in)
	}
}

func TestConfigValidate(t *testing.T) {
	good := func() Config {
		return Config{IssuerURL: "https://keycloak.example.org/realms/nerc", PublicURL: "https://ai.example.org", ClientID: "site-web", ClientSecret: "s"}
	}
	for _, tt := range []struct {
		name   string
		change func(*Config)
		want   error
	}{
		{"good", func(*Config) {}, nil},
		{"loopback http", func(c *Config) { c.IssuerURL, c.PublicURL = "http://127.0.0.1:8180/realms/x", "http://localhost:8080" }, nil},
		{"http issuer", func(c *Config) { c.IssuerURL = "http://keycloak.example.org/realms/nerc" }, errIssuer},
		{"http site", func(c *Config) { c.PublicURL = "http://ai.example.org" }, ErrPublicURL},
		{"site with a path", func(c *Config) { c.PublicURL = "https://ai.example.org/site" }, ErrPublicURL},
		{"no secret", func(c *Config) { c.ClientSecret = "" }, errClient},
		{"idle above absolute", func(c *Config) { c.IdleTimeout, c.AbsoluteTimeout = 2*time.Hour, time.Hour }, errTimeouts},
		{"negative bound", func(c *Config) { c.MaxSessions = -1 }, errMax},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.change(&c)
			err := c.Validate()
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
		})
	}
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type recorded struct {
	mu     sync.Mutex
	ended  []string
	active int64
	logins []string
}

func newHandler(t *testing.T, public string, c *clock, r *recorded, change ...func(*Config)) *Handler {
	t.Helper()
	cfg := Config{
		IssuerURL: "http://127.0.0.1:1/realms/none", PublicURL: public, ClientID: "site-web", ClientSecret: "s",
		IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour, MaxSessions: 2,
	}
	for _, ch := range change {
		ch(&cfg)
	}
	require.NoError(t, cfg.Validate())
	return New(Settings{
		Config: cfg, Now: c.now, Logger: zap.NewNop(),
		Logins: func(_ context.Context, o string) { r.mu.Lock(); r.logins = append(r.logins, o); r.mu.Unlock() },
		Ended:  func(reason string) { r.mu.Lock(); r.ended = append(r.ended, reason); r.mu.Unlock() },
		Active: func(d int64) { r.mu.Lock(); r.active += d; r.mu.Unlock() },
	})
}

// addSession stores a session as a completed login would, its token valid
// for an hour.
func addSession(h *Handler, c *clock, user string) *Session {
	s := &Session{
		id: randomToken(), User: user, CSRF: randomToken(), created: c.now(), lastUsed: c.now(),
		token: &oauth2.Token{AccessToken: "at-" + user, RefreshToken: "", Expiry: c.now().Add(time.Hour)},
	}
	h.sessions.add(s)
	h.set.Active(1)
	return s
}

func requestWith(h *Handler, s *Session, method, target string) *http.Request {
	r := httptest.NewRequest(method, target, http.NoBody)
	r.AddCookie(&http.Cookie{Name: h.cookieName(sessionCookie), Value: s.id})
	return r
}

// TestSessionTimeouts: a session ends after its idle timeout without use
// and after its absolute timeout whatever its use; each end is counted with
// its reason and clears the cookie.
func TestSessionTimeouts(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	r := &recorded{}
	h := newHandler(t, "http://localhost:8080", c, r)

	s := addSession(h, c, "alice")
	c.add(20 * time.Minute)
	_, tok, ok := h.Session(httptest.NewRecorder(), requestWith(h, s, http.MethodGet, "/"))
	require.True(t, ok, "used within the idle timeout")
	assert.Equal(t, "at-alice", tok)
	c.add(29 * time.Minute)
	_, _, ok = h.Session(httptest.NewRecorder(), requestWith(h, s, http.MethodGet, "/"))
	require.True(t, ok, "the last use restarted the idle clock")
	c.add(31 * time.Minute)
	w := httptest.NewRecorder()
	_, _, ok = h.Session(w, requestWith(h, s, http.MethodGet, "/"))
	assert.False(t, ok, "idle for 31 minutes")
	assert.Contains(t, w.Header().Get("Set-Cookie"), "Max-Age=0", "the cookie is cleared")
	_, _, ok = h.Session(httptest.NewRecorder(), requestWith(h, s, http.MethodGet, "/"))
	assert.False(t, ok, "an ended session stays ended")

	b := addSession(h, c, "bob")
	for range 12*4 + 2 {
		c.add(15 * time.Minute)
		b.token.Expiry = c.now().Add(time.Hour) // a refreshed token, as a real refresh would leave it
		if _, _, ok = h.Session(httptest.NewRecorder(), requestWith(h, b, http.MethodGet, "/")); !ok {
			break
		}
	}
	assert.False(t, ok)
	assert.Equal(t, []string{EndIdle, EndAbsolute}, r.ended)
	assert.Equal(t, int64(0), r.active)
	assert.WithinDuration(t, b.created.Add(12*time.Hour), c.now(), 15*time.Minute, "ended at the absolute timeout")
}

// TestExpiringTokenWithoutRefresh: a token about to expire that cannot be
// refreshed ends the session instead of being sent on.
func TestExpiringTokenWithoutRefresh(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	r := &recorded{}
	h := newHandler(t, "http://localhost:8080", c, r)
	s := addSession(h, c, "alice")
	s.token.Expiry = c.now().Add(10 * time.Second)
	_, _, ok := h.Session(httptest.NewRecorder(), requestWith(h, s, http.MethodGet, "/"))
	assert.False(t, ok)
	assert.Equal(t, []string{EndRefresh}, r.ended)
}

// TestEviction: at max_sessions the least recently used session ends.
func TestEviction(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	r := &recorded{}
	h := newHandler(t, "http://localhost:8080", c, r)
	a, b := addSession(h, c, "alice"), addSession(h, c, "bob")
	_, _, ok := h.Session(httptest.NewRecorder(), requestWith(h, a, http.MethodGet, "/"))
	require.True(t, ok) // alice used last: bob is the least recently used
	addSession(h, c, "carol")
	_, _, ok = h.Session(httptest.NewRecorder(), requestWith(h, b, http.MethodGet, "/"))
	assert.False(t, ok, "bob evicted")
	_, _, ok = h.Session(httptest.NewRecorder(), requestWith(h, a, http.MethodGet, "/"))
	assert.True(t, ok)
	assert.Equal(t, []string{EndEvicted}, r.ended)
	assert.Equal(t, 2, h.Active())
}

// TestLogoutNeedsCSRF: a logout without the session's token ends nothing.
func TestLogoutNeedsCSRF(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	r := &recorded{}
	h := newHandler(t, "http://localhost:8080", c, r)
	s := addSession(h, c, "alice")
	for _, body := range []string{"", CSRFField + "=wrong"} {
		req := requestWith(h, s, http.MethodPost, PathLogout)
		req.Body = ioNop(body)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		assert.Equal(t, http.StatusForbidden, w.Code, "%q", body)
	}
	assert.Equal(t, 1, h.Active())
	req := requestWith(h, s, http.MethodPost, PathLogout)
	req.Body = ioNop(url.Values{CSRFField: {s.CSRF}}.Encode())
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	assert.Equal(t, http.StatusSeeOther, w.Code)
	assert.Equal(t, 0, h.Active())
	assert.Equal(t, []string{EndLogout}, r.ended)

	hdr := requestWith(h, s, http.MethodPost, "/x")
	hdr.Header.Set(CSRFHeader, s.CSRF)
	assert.True(t, CheckCSRF(hdr, s), "the header carries it too")
}

// TestCallbackRefusesForeignState: a callback whose state is not the one
// this browser's cookie holds, or is used twice, is refused and counted.
func TestCallbackRefusesForeignState(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	r := &recorded{}
	h := newHandler(t, "http://localhost:8080", c, r)
	h.pending.put("good", pending{next: "/", started: c.now()})
	for _, tt := range []struct{ cookie, state string }{
		{"", "good"},      // no cookie: another browser started it (login CSRF)
		{"other", "good"}, // another login's cookie
		{"good", "good"},  // the state was taken by the try before: good once
	} {
		req := httptest.NewRequest(http.MethodGet, PathCallback+"?code=x&state="+tt.state, http.NoBody)
		if tt.cookie != "" {
			req.AddCookie(&http.Cookie{Name: h.cookieName(stateCookie), Value: tt.cookie})
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		assert.Equal(t, http.StatusBadRequest, w.Code, "%+v", tt)
		assert.NotContains(t, w.Header().Get("Set-Cookie"), sessionCookie+"=", "no session")
		if tt.cookie != "good" {
			_, pendingStill := h.pending.byID["good"]
			assert.True(t, pendingStill, "%+v: refused before the state was looked at", tt)
		}
		if tt.cookie == "other" {
			h.pending.take("good", c.now()) // taken, as this browser's first callback would
		}
	}
	assert.Equal(t, []string{OutcomeFailure, OutcomeFailure, OutcomeFailure}, r.logins)
}

// TestCookieFlags: an https site's cookies are __Host-, Secure, HttpOnly
// and SameSite=Lax.
func TestCookieFlags(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	h := newHandler(t, "https://ai.example.org", c, &recorded{})
	w := httptest.NewRecorder()
	h.setCookie(w, sessionCookie, "v", 0)
	got := w.Result().Cookies()
	require.Len(t, got, 1)
	assert.Equal(t, "__Host-ait-session", got[0].Name)
	assert.True(t, got[0].Secure)
	assert.True(t, got[0].HttpOnly)
	assert.Equal(t, http.SameSiteLaxMode, got[0].SameSite)
	assert.Equal(t, "/", got[0].Path)
	assert.Empty(t, got[0].Domain)
}

func ioNop(s string) *readCloser { return &readCloser{strings.NewReader(s)} }

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }
