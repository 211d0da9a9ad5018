package deploycheck

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The checks of what a shipped config or manifest lets through are
// functions returning problems, one line each: TestOverlays (-tags deploy)
// runs them on every rendered object, the tests without tags on the files
// themselves and on variants that each must be refused.

// pullReceivers fetch their data: nobody sends to them, so they have no
// caller to authorize (what they fetch is chosen by the configuration; the
// promql receiver's proxy authorizes each query per cluster).
var pullReceivers = map[string]bool{"prometheus": true, "promql": true}

// selfAuthorizingReceivers decide per record themselves when given an
// authorizer (the Alertmanager receiver, per alert), which projectauthz
// after them cannot replace: they keep state per record (the session
// record) before any processor sees it.
var selfAuthorizingReceivers = map[string]bool{"alertmanager": true}

func componentType(id string) string { typ, _, _ := strings.Cut(id, "/"); return typ }

// authorizationProblems: a collector config that accepts data authorizes it
// per project, where that can work.
//
//   - Every receiver that accepts data (any but a pull receiver)
//     authenticates every listener with a server-side authenticator: a
//     keycloakauth that validates tokens (server.audiences), or an extension
//     of another type (oidc, bearertokenauth, ...). A client-only
//     keycloakauth (the promql receiver's) authenticates nobody.
//   - Its data is authorized per project: a receiver that authorizes itself
//     (alertmanager) names an authorizer, and every pipeline another one
//     feeds has projectauthz.
//   - projectauthz comes before batch (which drops the caller), and every
//     receiver of its pipeline authenticates callers: a pull receiver's data
//     has no caller and would all be refused (no_caller).
//   - Every authorizer is an enabled keycloakauth in mode resource, and no
//     keycloakauth validates tokens in mode none (any valid token could
//     write any project's data).
//   - Every enabled gpu_query (the site's API) authenticates its listener
//     (http.auth.authenticator, server side) and names its read scoper in
//     auth (an authorizer as above); insecure_local_mode, which serves
//     everything to everyone, is refused.
func authorizationProblems(cfg map[string]any) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	receivers, _ := get(cfg, "receivers").(map[string]any)
	extensions, _ := get(cfg, "extensions").(map[string]any)
	enabled := strs(get(cfg, "service", "extensions"))
	pipelines, _ := get(cfg, "service", "pipelines").(map[string]any)

	validatesTokens := func(ext string) bool {
		if componentType(ext) != "keycloakauth" {
			return true
		}
		return len(list(get(extensions, ext, "server", "audiences"))) > 0
	}
	// authenticates: every listener (a map with an endpoint) names an
	// enabled server-side authenticator, and there is a listener.
	authenticates := func(receiver any) bool {
		listeners, authed := 0, 0
		var walk func(v any)
		walk = func(v any) {
			switch x := v.(type) {
			case map[string]any:
				if _, ok := x["endpoint"]; ok {
					listeners++
					if a := str(get(x, "auth", "authenticator")); a != "" && slices.Contains(enabled, a) && validatesTokens(a) {
						authed++
					}
				}
				for _, e := range x {
					walk(e)
				}
			case []any:
				for _, e := range x {
					walk(e)
				}
			}
		}
		walk(receiver)
		return listeners > 0 && listeners == authed
	}
	checkAuthorizer := func(user, ext string) {
		switch {
		case ext == "":
			add("%s names no authorizer", user)
		case !slices.Contains(enabled, ext):
			add("%s: authorizer %s is not an enabled extension", user, ext)
		case componentType(ext) == "keycloakauth" && str(get(extensions, ext, "authorization", "mode")) != "resource":
			add("%s: authorizer %s does not decide per resource (authorization.mode resource)", user, ext)
		}
	}

	for _, ext := range slices.Sorted(maps.Keys(extensions)) {
		if componentType(ext) == "keycloakauth" && slices.Contains(enabled, ext) && validatesTokens(ext) &&
			str(get(extensions, ext, "authorization", "mode")) != "resource" {
			add("extension %s validates tokens without authorization.mode resource: any valid token may write any project's data", ext)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(pipelines)) {
		p := pipelines[id]
		procs := strs(get(p, "processors"))
		authz := slices.IndexFunc(procs, func(id string) bool { return componentType(id) == "projectauthz" })
		for _, r := range strs(get(p, "receivers")) {
			pull := pullReceivers[componentType(r)]
			authed := authenticates(receivers[r])
			switch {
			case !authed && authz >= 0:
				add("pipeline %s has projectauthz but receiver %s does not authenticate callers: its data has no caller and is all refused (no_caller)", id, r)
			case !authed && !pull:
				add("pipeline %s: receiver %s accepts data without authenticating callers (a server-side auth.authenticator on every listener)", id, r)
			case authed && authz < 0 && !pull && (!selfAuthorizingReceivers[componentType(r)] || str(get(receivers[r], "authorizer")) == ""):
				add("pipeline %s: the data of receiver %s is not authorized per project (no projectauthz)", id, r)
			}
		}
		if authz >= 0 {
			if b := slices.IndexFunc(procs, func(id string) bool { return componentType(id) == "batch" }); b >= 0 && b < authz {
				add("pipeline %s: projectauthz after batch, which drops the caller", id)
			}
			checkAuthorizer("processor "+procs[authz], str(get(cfg, "processors", procs[authz], "authorizer")))
		}
	}
	// The site (gpu_query) reads, and must scope every read to the caller:
	// an authenticated listener (http.auth, or its login, which authenticates
	// with the auth extension) and a read scoper, never local mode.
	for _, id := range slices.Sorted(maps.Keys(extensions)) {
		if componentType(id) != "gpu_query" || !slices.Contains(enabled, id) {
			continue
		}
		if get(extensions, id, "insecure_local_mode") == true {
			add("extension %s: insecure_local_mode serves every project's data to every caller, unauthenticated", id)
			continue
		}
		a := str(get(extensions, id, "http", "auth", "authenticator"))
		if get(extensions, id, "login") != nil {
			a = str(get(extensions, id, "auth"))
		}
		if a == "" || !slices.Contains(enabled, a) || !validatesTokens(a) {
			add("extension %s: no enabled server-side authenticator (http.auth.authenticator, or auth with a login): callers are not authenticated", id)
		}
		checkAuthorizer("extension "+id, str(get(extensions, id, "auth")))
	}
	for _, id := range slices.Sorted(maps.Keys(receivers)) {
		a := str(get(receivers[id], "authorizer"))
		if a == "" && selfAuthorizingReceivers[componentType(id)] {
			add("receiver %s authorizes per record only with an authorizer; it has none", id)
			continue
		}
		if a != "" {
			if !authenticates(receivers[id]) {
				add("receiver %s has an authorizer but does not authenticate callers", id)
			}
			checkAuthorizer("receiver "+id, a)
		}
	}
	return slices.Compact(problems)
}

// TestShippedConfigsAuthorizePerProject: the collectors' configs (configs/
// agent.yaml, gateway.yaml and site.yaml, as the overlays and the image's
// default command run them) authorize every write and every read per project.
func TestShippedConfigsAuthorizePerProject(t *testing.T) {
	for _, p := range configPatches {
		t.Run(p.config, func(t *testing.T) {
			assert.Empty(t, authorizationProblems(parseMap(t, p.config, read(t, p.config))))
		})
	}
}

// TestAuthorizationProblems: each way of letting a caller write another
// project's data, or of making authorization refuse everything, applied to
// configs/gateway.yaml, is found.
func TestAuthorizationProblems(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(cfg map[string]any)
		want   string
	}{
		{
			"mode none", func(c map[string]any) { set(c, "none", "extensions", "keycloakauth", "authorization", "mode") },
			"extension keycloakauth validates tokens without authorization.mode resource",
		},
		{
			"no authorization section", func(c map[string]any) { del(c, "extensions", "keycloakauth", "authorization") },
			"extension keycloakauth validates tokens without authorization.mode resource",
		},
		{"OTLP metrics without projectauthz", func(c map[string]any) {
			set(c, []any{"memory_limiter"}, "service", "pipelines", "metrics", "processors")
		}, "pipeline metrics: the data of receiver otlp is not authorized per project"},
		{"OTLP traces without projectauthz", func(c map[string]any) {
			set(c, []any{"memory_limiter"}, "service", "pipelines", "traces", "processors")
		}, "pipeline traces: the data of receiver otlp is not authorized per project"},
		{
			"alertmanager without authorizer", func(c map[string]any) { del(c, "receivers", "alertmanager", "authorizer") },
			"receiver alertmanager authorizes per record only with an authorizer",
		},
		{"projectauthz on the promql pipeline", func(c map[string]any) {
			set(c, []any{"memory_limiter", "projectauthz", "gpumodel"}, "service", "pipelines", "metrics/acm", "processors")
		}, "pipeline metrics/acm has projectauthz but receiver promql does not authenticate callers"},
		{
			"OTLP/HTTP without auth", func(c map[string]any) { del(c, "receivers", "otlp", "protocols", "http", "auth") },
			"pipeline metrics has projectauthz but receiver otlp does not authenticate callers",
		},
		{"OTLP without auth nor projectauthz", func(c map[string]any) {
			del(c, "receivers", "otlp", "protocols", "grpc", "auth")
			set(c, []any{"memory_limiter"}, "service", "pipelines", "metrics", "processors")
		}, "pipeline metrics: receiver otlp accepts data without authenticating callers"},
		{"OTLP authenticated by a client-only extension", func(c map[string]any) {
			set(c, "keycloakauth/prometheus", "receivers", "otlp", "protocols", "grpc", "auth", "authenticator")
		}, "pipeline metrics has projectauthz but receiver otlp does not authenticate callers"},
		{"projectauthz after batch", func(c map[string]any) {
			set(c, map[string]any{}, "processors", "batch")
			set(c, []any{"memory_limiter", "batch", "projectauthz"}, "service", "pipelines", "metrics", "processors")
		}, "pipeline metrics: projectauthz after batch"},
		{
			"authorizer not enabled", func(c map[string]any) { set(c, "keycloakauth/other", "processors", "projectauthz", "authorizer") },
			"processor projectauthz: authorizer keycloakauth/other is not an enabled extension",
		},
		{"authorizer a client-only extension", func(c map[string]any) {
			set(c, "keycloakauth/prometheus", "receivers", "alertmanager", "authorizer")
		}, "receiver alertmanager: authorizer keycloakauth/prometheus does not decide per resource"},
	}
	require.Empty(t, authorizationProblems(parseMap(t, "configs/gateway.yaml", read(t, "configs/gateway.yaml"))), "the shipped config")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parseMap(t, "configs/gateway.yaml", read(t, "configs/gateway.yaml"))
			tt.mutate(cfg)
			problems := authorizationProblems(cfg)
			assert.True(t, slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }),
				"want %q in %q", tt.want, problems)
		})
	}
}

// TestSiteAuthorizationProblems: each way of letting the site's API serve a
// caller more than its scope, applied to configs/site.yaml, is found.
func TestSiteAuthorizationProblems(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(cfg map[string]any)
		want   string
	}{
		{"insecure_local_mode", func(c map[string]any) {
			set(c, true, "extensions", "gpu_query", "insecure_local_mode")
			del(c, "extensions", "gpu_query", "auth")
			del(c, "extensions", "gpu_query", "http", "auth")
		}, "extension gpu_query: insecure_local_mode serves every project's data"},
		{
			"no login and no http.auth", func(c map[string]any) { del(c, "extensions", "gpu_query", "login") },
			"extension gpu_query: no enabled server-side authenticator",
		},
		{"http.auth authenticator not enabled", func(c map[string]any) {
			del(c, "extensions", "gpu_query", "login")
			set(c, "keycloakauth/other", "extensions", "gpu_query", "http", "auth", "authenticator")
		}, "extension gpu_query: no enabled server-side authenticator"},
		{"the login's authenticator not enabled", func(c map[string]any) {
			set(c, "keycloakauth/other", "extensions", "gpu_query", "auth")
		}, "extension gpu_query: no enabled server-side authenticator"},
		{"client-only authenticator", func(c map[string]any) {
			del(c, "extensions", "keycloakauth", "server")
		}, "extension gpu_query: no enabled server-side authenticator"},
		{
			"no read scoper", func(c map[string]any) { del(c, "extensions", "gpu_query", "auth") },
			"extension gpu_query names no authorizer",
		},
		{"read scoper in mode none", func(c map[string]any) {
			set(c, "none", "extensions", "keycloakauth", "authorization", "mode")
		}, "extension gpu_query: authorizer keycloakauth does not decide per resource"},
	}
	require.Empty(t, authorizationProblems(parseMap(t, "configs/site.yaml", read(t, "configs/site.yaml"))), "the shipped config")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parseMap(t, "configs/site.yaml", read(t, "configs/site.yaml"))
			tt.mutate(cfg)
			problems := authorizationProblems(cfg)
			assert.True(t, slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }),
				"want %q in %q", tt.want, problems)
		})
	}
}

// set puts v at the path of map keys, creating maps on the way.
func set(m map[string]any, v any, keys ...string) {
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = v
}

// del removes the last key of the path.
func del(m map[string]any, keys ...string) {
	if parent, ok := get(m, keys[:len(keys)-1]...).(map[string]any); ok {
		delete(parent, keys[len(keys)-1])
	}
}

func str(v any) string { s, _ := v.(string); return s }

// get walks a path of map keys.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func list(v any) []any { l, _ := v.([]any); return l }

func strs(v any) []string {
	var out []string
	for _, e := range list(v) {
		out = append(out, str(e))
	}
	return out
}

// readYAMLDocs reads every document of a YAML file.
func readYAMLDocs(t *testing.T, rel string) []map[string]any {
	t.Helper()
	return parseDocs(t, string(read(t, rel)))
}

// tenancyProblems: spans reach Tempo under the tenant of the project they were
// authorized for, never a tenant the config or the caller chose.
//
//   - No exporter sends a static X-Scope-OrgID header (one tenant for all).
//   - An exporter to Tempo (its id names tempo) takes the header from the
//     tenantheader extension, partitions its queue's batches by the tenant
//     key (a merged batch would mix projects), and every pipeline feeding it
//     has a projectauthz setting that key (tenant.metadata_key).
func tenancyProblems(cfg map[string]any) []string {
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	exporters, _ := get(cfg, "exporters").(map[string]any)
	pipelines, _ := get(cfg, "service", "pipelines").(map[string]any)
	for _, id := range slices.Sorted(maps.Keys(exporters)) {
		headers, _ := get(exporters, id, "headers").(map[string]any)
		for h := range headers {
			if strings.EqualFold(h, "X-Scope-OrgID") {
				add("exporter %s: a static X-Scope-OrgID puts every project in one tenant", id)
			}
		}
		if !strings.Contains(id, "tempo") {
			continue
		}
		key := ""
		for _, m := range asSlice(get(exporters, id, "middlewares")) {
			if mid := str(get(m, "id")); componentType(mid) == "tenantheader" {
				key = str(get(cfg, "extensions", mid, "metadata_key"))
			}
		}
		if key == "" {
			add("exporter %s: no tenantheader middleware: spans would not carry their project's tenant", id)
			continue
		}
		if !slices.Contains(strs(get(exporters, id, "sending_queue", "batch", "partition", "metadata_keys")), key) {
			add("exporter %s: batches not partitioned by %s: one request could mix projects (and is refused)", id, key)
		}
		for _, pid := range slices.Sorted(maps.Keys(pipelines)) {
			if !slices.Contains(strs(get(pipelines[pid], "exporters")), id) {
				continue
			}
			ok := false
			for _, proc := range strs(get(pipelines[pid], "processors")) {
				if componentType(proc) == "projectauthz" && str(get(cfg, "processors", proc, "tenant", "metadata_key")) == key {
					ok = true
				}
			}
			if !ok {
				add("pipeline %s feeds %s without a projectauthz choosing the tenant (tenant.metadata_key %s)", pid, id, key)
			}
		}
	}
	return problems
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func TestShippedConfigsTenantPerProject(t *testing.T) {
	for _, p := range configPatches {
		t.Run(p.config, func(t *testing.T) {
			assert.Empty(t, tenancyProblems(parseMap(t, p.config, read(t, p.config))))
		})
	}
}

func TestTenancyProblems(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(cfg map[string]any)
		want   string
	}{
		{"static tenant", func(c map[string]any) {
			set(c, map[string]any{"X-Scope-OrgID": "ai-telemetry"}, "exporters", "otlp_grpc/tempo", "headers")
		}, "exporter otlp_grpc/tempo: a static X-Scope-OrgID"},
		{
			"no middleware", func(c map[string]any) { del(c, "exporters", "otlp_grpc/tempo", "middlewares") },
			"exporter otlp_grpc/tempo: no tenantheader middleware",
		},
		{
			"no partition", func(c map[string]any) { del(c, "exporters", "otlp_grpc/tempo", "sending_queue", "batch", "partition") },
			"exporter otlp_grpc/tempo: batches not partitioned by x-scope-orgid",
		},
		{
			"projectauthz without tenant", func(c map[string]any) { del(c, "processors", "projectauthz/traces", "tenant") },
			"pipeline traces feeds otlp_grpc/tempo without a projectauthz choosing the tenant",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parseMap(t, "configs/gateway.yaml", read(t, "configs/gateway.yaml"))
			require.Empty(t, tenancyProblems(cfg))
			tt.mutate(cfg)
			problems := tenancyProblems(cfg)
			require.NotEmpty(t, problems)
			assert.Contains(t, strings.Join(problems, "\n"), tt.want)
		})
	}
}
