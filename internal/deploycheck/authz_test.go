//go:build deploy

package deploycheck

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// checkAuthorization: a collector config that authorizes per project does so
// where it can work.
//
//   - projectauthz reads the caller from the request's context: it comes
//     before batch (which drops the context), and every receiver of its
//     pipelines authenticates (else their data has no caller and is all
//     refused, reason no_caller) — a pull receiver added to such a pipeline
//     fails here;
//   - the authorizer of projectauthz or of a receiver is an enabled
//     extension in authorization mode resource, and a receiver with an
//     authorizer authenticates.
func checkAuthorization(t *testing.T, c otelcol) {
	cfg := c.Spec.Config
	for id, p := range cfg.Service.Pipelines {
		procs := strs(get(p, "processors"))
		i := slices.Index(procs, "projectauthz")
		if i < 0 {
			continue
		}
		if b := slices.Index(procs, "batch"); b >= 0 {
			assert.Less(t, i, b, "pipeline %s: projectauthz before batch", id)
		}
		for _, r := range strs(get(p, "receivers")) {
			assert.True(t, authenticates(cfg.Receivers[r]), "pipeline %s has projectauthz: receiver %s must authenticate every listener (auth.authenticator)", id, r)
		}
		checkAuthorizer(t, cfg, "processor projectauthz", str(get(cfg.Processors["projectauthz"], "authorizer")))
	}
	for id, r := range cfg.Receivers {
		if a := str(get(r, "authorizer")); a != "" {
			assert.True(t, authenticates(r), "receiver %s has an authorizer: it needs auth", id)
			checkAuthorizer(t, cfg, "receiver "+id, a)
		}
	}
}

func checkAuthorizer(t *testing.T, cfg otelcolConfig, user, ext string) {
	t.Helper()
	if !assert.NotEmpty(t, ext, "%s names an authorizer", user) {
		return
	}
	assert.Contains(t, cfg.Service.Extensions, ext, "%s: authorizer %s is an enabled extension", user, ext)
	if strings.Split(ext, "/")[0] == "keycloakauth" {
		assert.Equal(t, "resource", str(get(cfg.Extensions[ext], "authorization", "mode")),
			"%s: extension %s decides in authorization mode resource", user, ext)
	}
}

// authenticates reports whether every listener of a receiver's config (a
// map with an endpoint) has auth.authenticator, and there is one.
func authenticates(receiver any) bool {
	listeners, authed := 0, 0
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if _, ok := x["endpoint"]; ok {
				listeners++
				if str(get(x, "auth", "authenticator")) != "" {
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

func strs(v any) []string {
	var out []string
	for _, e := range list(v) {
		out = append(out, str(e))
	}
	return out
}
