package login // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/login"

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"
)

// Paths the login serves.
const (
	PathLogin    = "/login"
	PathCallback = "/callback"
	PathLogout   = "/logout"
)

// CSRFField is the form field (and CSRFHeader the header) carrying a
// session's CSRF token on anything that is not a GET.
const (
	CSRFField  = "csrf_token"
	CSRFHeader = "X-CSRF-Token"
)

// Login outcomes (attribute outcome of gpu_query_logins) and refresh
// outcomes (of gpu_query_session_refreshes).
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
)

// Settings are the login's configuration and its telemetry.
type Settings struct {
	Config Config
	Now    func() time.Time
	Logger *zap.Logger
	// Client reaches Keycloak (discovery, token endpoint); nil: http.DefaultClient.
	Client *http.Client
	// Telemetry; nil functions are not called.
	Logins    func(ctx context.Context, outcome string)
	Refreshes func(ctx context.Context, outcome string)
	Ended     func(reason string)
	Active    func(delta int64)
}

// Handler serves /login, /callback and /logout and finds the session of a
// request.
type Handler struct {
	set      Settings
	sessions *sessions
	pending  *pendingLogins

	mu       sync.Mutex // guards the provider, discovered on first use
	provider *oidc.Provider
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
	endURL   string
}

var _ http.Handler = (*Handler)(nil)

// New builds the handler; Keycloak is asked for its discovery document on
// the first login, so that the collector starts while Keycloak does not.
func New(set Settings) *Handler {
	set.Config = set.Config.withDefaults()
	h := &Handler{set: set, pending: &pendingLogins{byID: map[string]pending{}, max: set.Config.MaxSessions, ttl: 10 * time.Minute}}
	h.sessions = newSessions(set.Config.MaxSessions, func(reason string) {
		if set.Ended != nil {
			set.Ended(reason)
		}
		if set.Active != nil {
			set.Active(-1)
		}
	})
	return h
}

func (h *Handler) now() time.Time { return h.set.Now() }

// cookie names: the __Host- prefix (Secure, Path=/, no Domain) when the
// site is https, so no other host of the domain can set or read them.
func (h *Handler) cookieName(base string) string {
	if h.set.Config.secure() {
		return "__Host-" + base
	}
	return base
}

const (
	sessionCookie = "ait-session"
	stateCookie   = "ait-login"
)

func (h *Handler) setCookie(w http.ResponseWriter, base, value string, maxAge int) {
	//nolint:gosec // G124: Secure whenever public_url is https; Validate allows http only on a loopback address
	http.SetCookie(w, &http.Cookie{
		Name: h.cookieName(base), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: h.set.Config.secure(), SameSite: http.SameSiteLaxMode,
	})
}

// ServeHTTP routes the three paths.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	switch {
	case r.URL.Path == PathLogin && r.Method == http.MethodGet:
		h.login(w, r)
	case r.URL.Path == PathCallback && r.Method == http.MethodGet:
		h.callback(w, r)
	case r.URL.Path == PathLogout && r.Method == http.MethodPost:
		h.logout(w, r)
	default:
		w.Header().Set("Allow", map[bool]string{true: "POST", false: "GET"}[r.URL.Path == PathLogout])
		h.fail(w, http.StatusMethodNotAllowed, "This address does not take that method.")
	}
}

// IsPath says whether the login serves path.
func IsPath(p string) bool { return p == PathLogin || p == PathCallback || p == PathLogout }

// discover reads the issuer's discovery document once it answers.
func (h *Handler) discover(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.provider != nil {
		return nil
	}
	if h.set.Client != nil {
		ctx = oidc.ClientContext(ctx, h.set.Client)
	}
	p, err := oidc.NewProvider(ctx, h.set.Config.IssuerURL)
	if err != nil {
		return err
	}
	var claims struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := p.Claims(&claims); err != nil {
		return err
	}
	cfg := h.set.Config
	h.provider, h.endURL = p, claims.EndSession
	h.oauth = &oauth2.Config{
		ClientID: cfg.ClientID, ClientSecret: string(cfg.ClientSecret), Endpoint: p.Endpoint(),
		RedirectURL: cfg.base() + PathCallback, Scopes: append([]string{oidc.ScopeOpenID}, cfg.Scopes...),
	}
	h.verifier = p.Verifier(&oidc.Config{ClientID: cfg.ClientID, Now: h.now})
	return nil
}

func (h *Handler) clientCtx(ctx context.Context) context.Context {
	if h.set.Client != nil {
		return context.WithValue(ctx, oauth2.HTTPClient, h.set.Client)
	}
	return ctx
}

// login starts the code flow: a state bound to this browser by a cookie, a
// PKCE verifier and a nonce kept here, then the redirect to Keycloak.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if err := h.discover(r.Context()); err != nil {
		h.set.Logger.Warn("The identity provider could not be reached", zap.Error(err))
		h.count(r.Context(), OutcomeFailure)
		h.fail(w, http.StatusServiceUnavailable, "The login service cannot be reached. Try again in a moment.")
		return
	}
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	h.pending.put(state, pending{verifier: verifier, nonce: nonce, next: SafeNext(r.URL.Query().Get("next")), started: h.now()})
	h.setCookie(w, stateCookie, state, 600)
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)}
	if hint := h.set.Config.IdPHint; hint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("kc_idp_hint", hint))
	}
	http.Redirect(w, r, h.oauth.AuthCodeURL(state, opts...), http.StatusFound)
}

// SafeNext is where a login may return: a path of this site, never another
// origin ("//evil", "/\evil", "https://evil" all become "/").
func SafeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || strings.ContainsAny(next, "\r\n\t") {
		return "/"
	}
	return next
}

var errLogin = errors.New("login refused")

// callback ends the code flow: the state must be this browser's and fresh,
// the code is exchanged with the PKCE verifier, the ID token verified
// (issuer, audience, expiry, signature, nonce).
func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	err := h.finish(w, r)
	if err == nil {
		return
	}
	h.count(r.Context(), OutcomeFailure)
	h.set.Logger.Info("A login failed", zap.Error(err))
	h.fail(w, http.StatusBadRequest, "The login could not be completed. Start again from the site.")
}

func (h *Handler) finish(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	state := q.Get("state")
	c, err := r.Cookie(h.cookieName(stateCookie))
	if err != nil || state == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		return fmt.Errorf("%w: the state is not this browser's", errLogin)
	}
	h.setCookie(w, stateCookie, "", -1)
	pl, ok := h.pending.take(state, h.now())
	if !ok {
		return fmt.Errorf("%w: unknown or expired state", errLogin)
	}
	if e := q.Get("error"); e != "" {
		return fmt.Errorf("%w: the identity provider answered %q", errLogin, truncate(e))
	}
	if err := h.discover(r.Context()); err != nil {
		return err
	}
	ctx := h.clientCtx(r.Context())
	tok, err := h.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(pl.verifier))
	if err != nil {
		return fmt.Errorf("%w: code exchange: %w", errLogin, redact(err))
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := h.verifier.Verify(ctx, rawID)
	if err != nil {
		return fmt.Errorf("%w: ID token: %w", errLogin, err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(pl.nonce)) != 1 {
		return fmt.Errorf("%w: the ID token's nonce is not this login's", errLogin)
	}
	var claims struct {
		User string `json:"preferred_username"`
	}
	_ = idt.Claims(&claims) // a missing name shows as the subject
	if claims.User == "" {
		claims.User = idt.Subject
	}
	now := h.now()
	sess := &Session{id: randomToken(), User: claims.User, CSRF: randomToken(), idToken: rawID, created: now, token: tok, lastUsed: now}
	h.sessions.add(sess)
	if h.set.Active != nil {
		h.set.Active(1)
	}
	h.count(r.Context(), OutcomeSuccess)
	h.setCookie(w, sessionCookie, sess.id, 0)
	http.Redirect(w, r, pl.next, http.StatusSeeOther)
	return nil
}

// Session finds the request's session and a valid access token for it,
// refreshing the token when it expires within refreshAhead. A session past
// its idle or absolute timeout, or whose refresh fails, is ended (and its
// cookie cleared): the caller is not logged in.
func (h *Handler) Session(w http.ResponseWriter, r *http.Request) (*Session, string, bool) {
	c, err := r.Cookie(h.cookieName(sessionCookie))
	if err != nil || c.Value == "" {
		return nil, "", false
	}
	sess, ok := h.sessions.get(c.Value)
	if !ok {
		h.setCookie(w, sessionCookie, "", -1)
		return nil, "", false
	}
	now := h.now()
	sess.mu.Lock()
	defer sess.mu.Unlock()
	reason := ""
	switch {
	case now.Sub(sess.created) > h.set.Config.AbsoluteTimeout:
		reason = EndAbsolute
	case now.Sub(sess.lastUsed) > h.set.Config.IdleTimeout:
		reason = EndIdle
	case sess.token.Expiry.Sub(now) < refreshAhead:
		if err := h.refresh(r.Context(), sess); err != nil {
			h.set.Logger.Info("A session's token could not be refreshed", zap.String("user", sess.User), zap.Error(err))
			reason = EndRefresh
		}
	}
	if reason != "" {
		h.sessions.remove(sess, reason)
		h.setCookie(w, sessionCookie, "", -1)
		return nil, "", false
	}
	sess.lastUsed = now
	return sess, sess.token.AccessToken, true
}

// refreshAhead: a token is refreshed this long before it expires, so that
// no request carries one that expires on its way.
const refreshAhead = 30 * time.Second

func (h *Handler) refresh(ctx context.Context, sess *Session) error {
	if sess.token.RefreshToken == "" {
		return errors.New("no refresh token")
	}
	if err := h.discover(ctx); err != nil {
		return err
	}
	old := *sess.token
	old.Expiry = time.Unix(1, 0) // oauth2 refreshes only an expired token
	tok, err := h.oauth.TokenSource(h.clientCtx(ctx), &old).Token()
	outcome := OutcomeSuccess
	if err != nil {
		outcome = OutcomeFailure
	}
	if h.set.Refreshes != nil {
		h.set.Refreshes(ctx, outcome)
	}
	if err != nil {
		return redact(err)
	}
	sess.token = tok
	return nil
}

// CheckCSRF says whether a non-GET request carries the session's token.
func CheckCSRF(r *http.Request, sess *Session) bool {
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		got = r.PostFormValue(CSRFField)
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRF)) == 1
}

// logout ends the session (CSRF-checked: a cross-site form cannot log a
// user out) and sends the browser to Keycloak's end-session endpoint, so
// that the SSO session ends too.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	sess, _, ok := h.Session(w, r)
	if !ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if !CheckCSRF(r, sess) {
		h.fail(w, http.StatusForbidden, "The logout was refused: the form did not come from this site.")
		return
	}
	h.sessions.remove(sess, EndLogout)
	h.setCookie(w, sessionCookie, "", -1)
	target := "/"
	if h.endURL != "" {
		target = h.endURL + "?" + url.Values{
			"id_token_hint": {sess.idToken}, "post_logout_redirect_uri": {h.set.Config.base() + "/"},
			"client_id": {h.set.Config.ClientID},
		}.Encode()
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// RequireLogin sends a browser to the login, to come back to this page.
func RequireLogin(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, PathLogin+"?"+url.Values{"next": {r.URL.RequestURI()}}.Encode(), http.StatusSeeOther)
}

// IssuerOrigin is the identity provider's origin: the logout form's
// redirect goes there, so the pages' form-action must allow it.
func (h *Handler) IssuerOrigin() string {
	u, err := url.Parse(h.set.Config.IssuerURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// Active is the number of live sessions.
func (h *Handler) Active() int { return h.sessions.len() }

func (h *Handler) count(ctx context.Context, outcome string) {
	if h.set.Logins != nil {
		h.set.Logins(ctx, outcome)
	}
}

var failPage = template.Must(template.New("fail").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8">` +
	`<title>Login · AI Telemetry</title></head><body><main><h1>Login</h1><p>{{.}}</p><p><a href="/">Back to the site</a></p></main></body></html>`))

func (h *Handler) fail(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = failPage.Execute(w, msg)
}

// redact keeps an OAuth error's code and drops the response body, which
// may echo what was sent.
func redact(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return fmt.Errorf("token endpoint answered %d %s", re.Response.StatusCode, re.ErrorCode)
	}
	return err
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
