//go:build integration

package promqlreceiver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/nerc-project/ai-telemetry-collector/internal/testpeers"
)

// keycloakProxy behaves like prom-keycloak-proxy (nerc-images/prom-keycloak-proxy
// at 6e16fae, services/authService.go, services/promService.go and
// queries/parse.go) where it matters to the receiver, against the real
// Keycloak:
//   - it introspects each token at Keycloak as its own client (so Keycloak
//     26.6+ answers active: false unless that client is in the token's
//     audience), then calls userinfo with the caller's token (Keycloak 20+
//     refuses a token without the openid scope): 401 on any failure;
//   - it asks Keycloak once per request, with the caller's token and
//     response_mode=permissions on its own client as resource server, for
//     GET on HUB, HUB-{hub} and the resources of each selector's cluster
//     matcher (403 when Keycloak refuses, e.g. for an unknown resource);
//   - a selector is authorized when the caller holds HUB, HUB-{hub}, or
//     every HUB-{hub}-CLUSTER-{value} of its cluster matcher, whatever the
//     matcher's type (values split on "|"), or HUB/HUB-{hub} alone for a
//     selector without one: so a negated matcher is authorized against the
//     cluster it names, as in the real proxy;
//   - the first query= value is authorized and every query= value forwarded
//     re-printed, the last one winning, to the upstream's same path; the
//     upstream's document comes back with HTTP 200 whatever its status, and
//     an unreachable upstream as HTTP 200 with an empty error document;
//   - where the real proxy panics (no query=, a query that does not parse,
//     an Authorization header without a space, a userinfo answer without
//     preferred_username) the connection is closed without an answer.
//
// Project resources (namespace and exported_namespace matchers) are not
// modelled: such a selector fails the test.
type keycloakProxy struct {
	*httptest.Server
	t                *testing.T
	kc               *testpeers.Keycloak
	clientID, secret string
	hub              string
	http             *http.Client

	mu       sync.Mutex
	upstream string
	refusals []string // why requests were refused, for assertions
}

func startKeycloakProxy(t *testing.T, kc *testpeers.Keycloak, clientID, hub, upstream string) *keycloakProxy {
	t.Helper()
	p := &keycloakProxy{
		t: t, kc: kc, clientID: clientID, secret: kc.Secret(clientID), hub: hub, upstream: upstream,
		http: &http.Client{Timeout: 30 * time.Second},
	}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

// setUpstream points the proxy at another upstream (a closed port: an outage).
func (p *keycloakProxy) setUpstream(u string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.upstream = u
}

// refused lists why the proxy refused requests so far.
func (p *keycloakProxy) refused() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.refusals)
}

type proxyError struct {
	Code    int    `json:"code"`
	Error   string `json:"error"`
	Message string `json:"message"`
}

func (p *keycloakProxy) refuse(w http.ResponseWriter, code int, why string, body proxyError) {
	p.mu.Lock()
	p.refusals = append(p.refusals, fmt.Sprintf("%d %s", code, why))
	p.mu.Unlock()
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

var unauthorizedBody = proxyError{401, "Unauthorized", "You are not authorized to access this resource"}

func (p *keycloakProxy) serve(w http.ResponseWriter, r *http.Request) {
	authHeader := r.Header.Get("Authorization")
	if authHeader == "" {
		p.refuse(w, http.StatusUnauthorized, "no Authorization header", unauthorizedBody)
		return
	}
	_, token, ok := strings.Cut(authHeader, " ")
	if !ok {
		panic(http.ErrAbortHandler) // the real proxy: index out of range
	}
	active, err := p.introspect(r.Context(), token)
	if err != nil {
		p.refuse(w, http.StatusUnauthorized, "introspection: "+err.Error(), proxyError{400, "Bad Request", err.Error()})
		return
	}
	username, err := p.userinfo(r.Context(), token)
	if err != nil {
		p.refuse(w, http.StatusUnauthorized, "userinfo: "+err.Error(), proxyError{400, "Bad Request", err.Error()})
		return
	}
	if !active {
		p.refuse(w, http.StatusUnauthorized, "introspection: token not active for "+p.clientID+" ("+username+")", unauthorizedBody)
		return
	}
	queries := r.URL.Query()["query"]
	if len(queries) == 0 {
		panic(http.ErrAbortHandler) // the real proxy: index out of range
	}
	groups, permissions, err := p.authorizations(queries[0])
	if err != nil {
		panic(http.ErrAbortHandler) // the real proxy: log.Panic on a parse error
	}
	granted, err := p.permissions(r.Context(), token, permissions)
	if err != nil {
		p.refuse(w, http.StatusForbidden, "UMA: "+err.Error(), unauthorizedBody)
		return
	}
	for _, alternatives := range groups {
		if !slices.ContainsFunc(alternatives, func(all []string) bool {
			return !slices.ContainsFunc(all, func(res string) bool { return !granted[res] })
		}) {
			p.refuse(w, http.StatusForbidden, fmt.Sprintf("none of %v granted", alternatives),
				proxyError{403, "Forbidden", "You are not authorized to access the resource"})
			return
		}
	}
	p.forward(w, r)
}

// introspect asks Keycloak about the token as the proxy's client.
func (p *keycloakProxy) introspect(ctx context.Context, token string) (bool, error) {
	form := url.Values{"token_type_hint": {"requesting_party_token"}, "token": {token}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.kc.TokenURL()+"/introspect", strings.NewReader(form.Encode()))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(p.clientID, p.secret)
	var res struct {
		Active bool `json:"active"`
	}
	if err := p.do(req, &res); err != nil {
		return false, err
	}
	return res.Active, nil
}

// userinfo calls Keycloak's userinfo endpoint with the caller's token.
func (p *keycloakProxy) userinfo(ctx context.Context, token string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		p.kc.URL()+"/realms/"+p.kc.Realm()+"/protocol/openid-connect/userinfo", http.NoBody)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	var res struct {
		PreferredUsername *string `json:"preferred_username"`
	}
	if err := p.do(req, &res); err != nil {
		return "", err
	}
	if res.PreferredUsername == nil {
		panic(http.ErrAbortHandler) // the real proxy dereferences it
	}
	return *res.PreferredUsername, nil
}

// permissions asks Keycloak which of the permissions (resource#GET) the
// caller holds on the proxy's client, in one call, as gocloak's
// GetRequestingPartyPermissions does.
func (p *keycloakProxy) permissions(ctx context.Context, token string, permissions []string) (map[string]bool, error) {
	form := url.Values{
		"grant_type":    {"urn:ietf:params:oauth:grant-type:uma-ticket"},
		"audience":      {p.clientID},
		"permission":    permissions,
		"response_mode": {"permissions"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.kc.TokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+token)
	var res []struct {
		ResourceName string   `json:"rsname"`
		Scopes       []string `json:"scopes"`
	}
	if err := p.do(req, &res); err != nil {
		return nil, err
	}
	granted := map[string]bool{}
	for _, perm := range res {
		if slices.Contains(perm.Scopes, "GET") {
			granted[perm.ResourceName] = true
		}
	}
	return granted, nil
}

// do sends a request to Keycloak and decodes its 2xx answer; another status
// is an error with Keycloak's error document (never the token).
func (p *keycloakProxy) do(req *http.Request, into any) error {
	resp, err := p.http.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d: %s %s", resp.StatusCode, strings.TrimSpace(string(body)), resp.Header.Get("WWW-Authenticate"))
	}
	return json.Unmarshal(body, into)
}

// authorizations are, per selector of the query, the alternative sets of
// resources one of which the caller must hold entirely, and the permissions
// to ask Keycloak for (queries.ParseAuthorizations without OpenShift Local).
func (p *keycloakProxy) authorizations(query string) ([][][]string, []string, error) {
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(query)
	if err != nil {
		return nil, nil, err
	}
	hubKey, hubRes := "HUB", "HUB-"+p.hub
	unique := map[string]bool{hubKey: true, hubRes: true}
	selectors := parser.ExtractSelectors(expr)
	groups := make([][][]string, len(selectors))
	for i, matchers := range selectors {
		groups[i] = [][]string{{hubKey}, {hubRes}}
		var cluster *labels.Matcher
		for _, m := range matchers {
			switch m.Name {
			case "cluster":
				cluster = m
			case "namespace", "exported_namespace":
				p.t.Errorf("the proxy double does not model project resources: %s", query)
				return nil, nil, fmt.Errorf("not modelled")
			}
		}
		if cluster == nil || cluster.Value == "" {
			continue
		}
		values := []string{cluster.Value}
		if cluster.Type != labels.MatchEqual {
			values = strings.Split(cluster.Value, "|")
			for j := range values {
				values[j] = regexp.QuoteMeta(values[j])
			}
		}
		var resources []string
		for _, v := range values {
			res := fmt.Sprintf("%s-%s-CLUSTER-%s", hubKey, p.hub, v)
			resources = append(resources, res)
			unique[res] = true
		}
		groups[i] = append(groups[i], resources)
	}
	var permissions []string
	for res := range unique {
		permissions = append(permissions, res+"#GET")
	}
	slices.Sort(permissions)
	return groups, permissions, nil
}

// forward sends the request on as promService.go does: every query= value
// re-printed (Set: the last one wins), the same path, GET; the upstream's
// JSON re-encoded with HTTP 200, an unreachable upstream's empty error
// document too.
func (p *keycloakProxy) forward(w http.ResponseWriter, r *http.Request) {
	values := r.URL.Query()
	for _, q := range values["query"] {
		expr, err := parser.NewParser(parser.Options{}).ParseExpr(q)
		if err != nil {
			panic(http.ErrAbortHandler) // the real proxy: nil dereference
		}
		values.Set("query", expr.String())
	}
	p.mu.Lock()
	upstream := p.upstream
	p.mu.Unlock()
	var data any = new(proxyError)
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, upstream+r.URL.Path+"?"+values.Encode(), http.NoBody)
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if resp, err := p.http.Do(req); err == nil {
		var doc any
		_ = json.NewDecoder(resp.Body).Decode(&doc)
		_ = resp.Body.Close()
		data = doc
	}
	_ = json.NewEncoder(w).Encode(&data)
}
