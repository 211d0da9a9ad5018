package gpuqueryextension

import (
	"net/http"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

// TestOpenAPIDocumentIsValid31: the embedded document loads as OpenAPI 3.1
// and passes kin-openapi's own validation.
func TestOpenAPIDocumentIsValid31(t *testing.T) {
	d, err := loadDoc()
	require.NoError(t, err)
	assert.True(t, d.IsOpenAPI31OrLater(), "openapi: %s", d.OpenAPI)
}

// TestOpenAPIMatchesRoutes: the document lists exactly the served routes,
// each with exactly the query parameters the route takes. A route added
// without documenting it (or documented and not served) fails here.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	d, err := loadDoc()
	require.NoError(t, err)
	a, err := newAPI(apiSettings{reader: fixture(), scoper: fixedScope(scopeAll), logger: zap.NewNop()})
	require.NoError(t, err)

	documented := map[string]bool{}
	for path := range d.Paths.Map() {
		documented[path] = true
	}
	for _, rt := range a.routes() {
		item := d.Paths.Find(rt.pattern)
		if !assert.NotNil(t, item, "route %s is not in openapi.yaml", rt.pattern) {
			continue
		}
		delete(documented, rt.pattern)
		op := item.Get
		require.NotNil(t, op, rt.pattern)
		var query []string
		for _, p := range op.Parameters {
			if p.Value.In == "query" {
				query = append(query, p.Value.Name)
			}
		}
		want := slices.Clone(rt.params)
		slices.Sort(want)
		slices.Sort(query)
		assert.Equal(t, want, query, "query parameters of %s", rt.pattern)
		for _, mt := range rt.offers {
			assert.NotNil(t, op.Responses.Status(http.StatusOK).Value.Content.Get(mt), "%s: 200 %s undocumented", rt.pattern, mt)
		}
	}
	for path := range documented {
		t.Errorf("openapi.yaml documents %s, which no route serves", path)
	}
}

// TestOpenAPIServed: /api/openapi.json is the embedded document.
func TestOpenAPIServed(t *testing.T) {
	api := newTestAPI(t, fixture(), fixedScope(scopeTeamA), false)
	r := api.get("/api/openapi.json")
	require.Equal(t, http.StatusOK, r.status)
	want, err := openAPIJSON()
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(r.body))
}
