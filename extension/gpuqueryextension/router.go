package gpuqueryextension // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension"

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/collector/extension/extensionauth"
	"go.uber.org/zap"

	"github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/login"
)

// router sends the API's paths to the API, the login's to the login and the
// rest to the pages. With a login it also authenticates: a bearer token or
// the browser's session, through the auth extension as authenticator.
type router struct {
	api   *api
	pages http.Handler // nil: the pages are not served, the API answers every path
	login *login.Handler
	authn extensionauth.Server
}

func (rt router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case rt.login != nil && login.IsPath(r.URL.Path):
		rt.login.ServeHTTP(w, r)
	case isAPIPath(r.URL.Path) || rt.pages == nil:
		rt.serveAPI(w, r)
	default:
		rt.servePage(w, r)
	}
}

// isAPIPath: the API's resources and the NGSI-LD context live under these.
func isAPIPath(p string) bool {
	return strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/ngsi-ld/")
}

func (rt router) serveAPI(w http.ResponseWriter, r *http.Request) {
	if rt.login == nil {
		rt.api.ServeHTTP(w, r) // local mode, or http::auth authenticated already
		return
	}
	headers := r.Header
	if r.Header.Get("Authorization") == "" {
		_, token, ok := rt.login.Session(w, r)
		if !ok {
			rt.api.authFailed(w, r, "no bearer token and no login session", http.StatusUnauthorized)
			return
		}
		headers = http.Header{"Authorization": {"Bearer " + token}}
	}
	ctx, err := rt.authn.Authenticate(r.Context(), headers)
	if err != nil {
		rt.api.authFailed(w, r, err.Error(), http.StatusUnauthorized)
		return
	}
	rt.api.ServeHTTP(w, r.WithContext(ctx))
}

func (rt router) servePage(w http.ResponseWriter, r *http.Request) {
	if rt.api.local {
		w.Header().Set(modeHeader, modeLocal)
	}
	if rt.login == nil || strings.HasPrefix(r.URL.Path, "/assets/") {
		rt.pages.ServeHTTP(w, r) // local mode; the stylesheet is public
		return
	}
	sess, token, ok := rt.login.Session(w, r)
	if !ok {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			login.RequireLogin(w, r)
			return
		}
		http.Error(w, "login required", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !login.CheckCSRF(r, sess) {
		http.Error(w, "the form did not come from this site (CSRF token missing or wrong)", http.StatusForbidden)
		return
	}
	ctx, err := rt.authn.Authenticate(r.Context(), map[string][]string{"Authorization": {"Bearer " + token}})
	if err != nil {
		// A token Keycloak just issued or refreshed is refused: the login
		// client's tokens do not fit the authenticator (audience, issuer).
		// Sending the browser to the login again would loop through
		// Keycloak's single sign-on, so say what is wrong instead.
		rt.api.logger.Warn("The authenticator refuses the login session's token; check the login client's audience mapper", zap.Error(err))
		http.Error(w, "Your login is not accepted by this site (its token is refused); the site's administrators have been told in its log.", http.StatusForbidden)
		return
	}
	rt.pages.ServeHTTP(w, r.WithContext(context.WithValue(ctx, sessionKey{}, sess)))
}

// sessionKey carries the login session to the pages (the header's user
// name and the logout form's CSRF token).
type sessionKey struct{}

func sessionUser(r *http.Request) (name, csrf string, ok bool) {
	sess, ok := r.Context().Value(sessionKey{}).(*login.Session)
	if !ok {
		return "", "", false
	}
	return sess.User, sess.CSRF, true
}
