package gpuqueryextension

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/piprate/json-gold/ld"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// testLoader serves documents from the test server only: expansion never
// reaches the network, and a context the API does not serve fails.
type testLoader struct {
	api *testAPI
}

var errOffServer = errors.New("document outside the test server")

func (l testLoader) LoadDocument(u string) (*ld.RemoteDocument, error) {
	if !strings.HasPrefix(u, l.api.srv.URL+"/") {
		return nil, errOffServer
	}
	path := strings.TrimPrefix(u, l.api.srv.URL)
	r := l.api.get(path, "Accept", mediaLDJSON)
	if r.status != http.StatusOK {
		return nil, errors.New(r.header.Get("Content-Type"))
	}
	var doc any
	if err := json.Unmarshal(r.body, &doc); err != nil {
		return nil, err
	}
	return &ld.RemoteDocument{DocumentURL: u, Document: doc}, nil
}

// linkContext reads the JSON-LD context Link header of an application/json answer.
var linkContext = regexp.MustCompile(`^<([^>]+)>; rel="http://www.w3.org/ns/json-ld#context"`)

// expandChecked expands an NGSI-LD answer with a JSON-LD 1.1 processor and
// checks that nothing was dropped (every value of the input is in the
// expansion) and that every property and type became an absolute IRI.
func expandChecked(t *testing.T, api *testAPI, r response) []any {
	t.Helper()
	var in any
	require.NoError(t, json.Unmarshal(r.body, &in))
	opts := ld.NewJsonLdOptions("")
	opts.DocumentLoader = testLoader{api}
	if r.header.Get("Content-Type") == mediaJSON {
		var m []string
		for _, l := range r.header.Values("Link") {
			if x := linkContext.FindStringSubmatch(l); x != nil {
				require.Nil(t, m, "one context Link")
				m = x
			}
		}
		require.Len(t, m, 2, "application/json NGSI-LD needs the context Link: %q", r.header.Values("Link"))
		opts.ExpandContext = m[1]
	} else {
		assert.Equal(t, mediaLDJSON, r.header.Get("Content-Type"))
	}
	out, err := ld.NewJsonLdProcessor().Expand(in, opts)
	require.NoError(t, err, "%s", r.body)
	assert.Equal(t, countLeaves(in), countExpanded(t, out), "values dropped by expansion: %s", r.body)
	return out
}

// countLeaves counts the scalar values of a document, @context aside.
func countLeaves(v any) int {
	switch x := v.(type) {
	case map[string]any:
		n := 0
		for k, e := range x {
			if k != "@context" {
				n += countLeaves(e)
			}
		}
		return n
	case []any:
		n := 0
		for _, e := range x {
			n += countLeaves(e)
		}
		return n
	}
	return 1
}

var absoluteIRI = regexp.MustCompile(`^(https?://|urn:)`)

// countExpanded counts the values of an expansion: @value, @id and node
// @types, checking each key and type is an absolute IRI.
func countExpanded(t *testing.T, v any) int {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["@value"]; ok {
			return 1
		}
		n := 0
		for k, e := range x {
			switch k {
			case "@id":
				n++
			case "@type":
				for _, ty := range e.([]any) {
					assert.Regexp(t, absoluteIRI, ty)
					n++
				}
			default:
				assert.Regexp(t, absoluteIRI, k, "term not mapped to an IRI")
				n += countExpanded(t, e)
			}
		}
		return n
	case []any:
		n := 0
		for _, e := range x {
			n += countExpanded(t, e)
		}
		return n
	}
	t.Errorf("unexpected scalar %v in an expansion", v)
	return 0
}

// entities reads an NGSI-LD answer as entities.
func entities(t *testing.T, r response) []map[string]any {
	t.Helper()
	var list []map[string]any
	if strings.HasPrefix(strings.TrimSpace(string(r.body)), "[") {
		require.NoError(t, json.Unmarshal(r.body, &list))
		return list
	}
	var one map[string]any
	require.NoError(t, json.Unmarshal(r.body, &one))
	return []map[string]any{one}
}

// TestNGSILDExpands: every NGSI-LD answer, in both media types, expands
// with json-gold against the served @context without losing a value; every
// Relationship resolves to an entity the API serves; ids are the topology's.
func TestNGSILDExpands(t *testing.T) {
	api := newTestAPI(t, fixture(), fixedScope(scopeAll), false)
	paths := []string{
		"/api/v1/hubs", "/api/v1/clusters", "/api/v1/clusters/moc/nerc-ocp-prod", "/api/v1/nodes",
		"/api/v1/devices", "/api/v1/devices/" + gpuMIG, "/api/v1/slices", "/api/v1/projects",
		"/api/v1/projects/moc/nerc-ocp-prod/team-a",
	}
	for _, typ := range topology.NGSILDTypes {
		paths = append(paths, "/ngsi-ld/v1/entities?type="+typ)
	}
	seen := map[string]bool{}
	for _, path := range paths {
		for _, accept := range []string{mediaLDJSON, mediaJSON} {
			if accept == mediaJSON && strings.HasPrefix(path, "/api/") {
				continue // plain JSON there is the API's own model
			}
			r := api.get(path, "Accept", accept)
			require.Equal(t, http.StatusOK, r.status, "%s %s", path, r.body)
			expandChecked(t, api, r)
			for _, e := range entities(t, r) {
				id, _ := e["id"].(string)
				_, err := topology.ParseNGSILDID(id)
				require.NoError(t, err, id)
				seen[e["type"].(string)] = true
				for _, v := range e {
					rel, ok := v.(map[string]any)
					if !ok || rel["type"] != "Relationship" {
						continue
					}
					obj := rel["object"].(string)
					got := api.get("/ngsi-ld/v1/entities/"+obj, "Accept", mediaLDJSON)
					assert.Equal(t, http.StatusOK, got.status, "%s: relationship to %s does not resolve", id, obj)
				}
				one := api.get("/ngsi-ld/v1/entities/"+id, "Accept", mediaLDJSON)
				require.Equal(t, http.StatusOK, one.status, "%s %s", id, one.body)
				assert.Equal(t, id, entities(t, one)[0]["id"])
			}
		}
	}
	for _, typ := range topology.NGSILDTypes {
		assert.True(t, seen[typ], "no %s entity was checked", typ)
	}
}

// TestNGSILDEntityShape: a slice's Properties and its Relationship to its GPU.
func TestNGSILDEntityShape(t *testing.T) {
	api := newTestAPI(t, fixture(), fixedScope(scopeTeamA), false)
	r := api.get("/api/v1/slices", "Accept", mediaLDJSON)
	require.Equal(t, http.StatusOK, r.status)
	es := entities(t, r)
	require.Len(t, es, 1)
	s := es[0]
	assert.Equal(t, topology.NGSILDSliceID("nerc-ocp-prod", "wrk-10", "0", "1"), s["id"])
	assert.Equal(t, topology.NGSILDTypeSlice, s["type"])
	assert.Equal(t, "http://"+strings.TrimPrefix(api.srv.URL, "http://")+topology.NGSILDContextPath, s["@context"])
	assert.Equal(t, map[string]any{"type": "Relationship", "object": topology.NGSILDDeviceID("nerc-ocp-prod", "wrk-10", "0")}, s[topology.NGSILDRelDevice])
	prof := s[topology.AttrNvidiaMIGProfile].(map[string]any)
	assert.Equal(t, "Property", prof["type"])
	assert.Equal(t, "3g.40gb", prof["value"])
	assert.NotEmpty(t, prof["observedAt"])
}

// TestNGSILDQuery: id lists, q and the scope.
func TestNGSILDQuery(t *testing.T) {
	member := newTestAPI(t, fixture(), fixedScope(scopeTeamA), false)
	dev := topology.NGSILDDeviceID("nerc-ocp-prod", "wrk-10", "1")
	other := topology.NGSILDDeviceID("x-cluster", "wrk-1", "0")
	tests := []struct {
		query string
		ids   []string
	}{
		{"type=GpuDevice&q=k8s.namespace.name==team-a;k8s.cluster.name==%22nerc-ocp-prod%22", []string{topology.NGSILDDeviceID("nerc-ocp-prod", "wrk-10", "0"), dev}},
		{"type=GpuDevice&q=hw.id==" + gpuWhole, []string{dev}},
		{"id=" + dev + "," + other, []string{dev}}, // team-c's GPU is outside the scope
		{"type=Project&id=" + dev, nil},
		{"type=Project", []string{topology.NGSILDProjectID("nerc-ocp-prod", "team-a")}},
		{"type=Hub", nil},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := member.get("/ngsi-ld/v1/entities?"+tt.query, "Accept", mediaLDJSON)
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			var ids []string
			for _, e := range entities(t, r) {
				ids = append(ids, e["id"].(string))
			}
			assert.Equal(t, tt.ids, ids)
		})
	}
	assert.Equal(t, http.StatusNotFound, member.get("/ngsi-ld/v1/entities/"+url.PathEscape(other)).status)
	assert.Equal(t, http.StatusNotFound, member.get("/ngsi-ld/v1/entities/"+topology.NGSILDClusterID("nerc-ocp-prod")).status)
}

// TestNGSILDContextFromVocabulary: the served @context maps every term of
// the vocabulary to the IRI docs/vocabulary.jsonld gives it: one source.
func TestNGSILDContextFromVocabulary(t *testing.T) {
	api := newTestAPI(t, fixture(), fixedScope(gpustore.Scope{}), false)
	r := api.get(topology.NGSILDContextPath)
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, mediaLDJSON, r.header.Get("Content-Type"))
	var served struct {
		Context map[string]any `json:"@context"`
	}
	require.NoError(t, json.Unmarshal(r.body, &served))
	vocab, err := topology.RenderJSONLD()
	require.NoError(t, err)
	var doc struct {
		Context map[string]any `json:"@context"`
	}
	require.NoError(t, json.Unmarshal(vocab, &doc))
	for term, def := range doc.Context {
		d, ok := def.(map[string]any)
		if !ok {
			continue // prefixes
		}
		assert.Equal(t, d["@id"], served.Context[term], term)
	}
}

// TestNGSILDNextKeepsQ: the next page of a q query keeps the q, ';' and all.
func TestNGSILDNextKeepsQ(t *testing.T) {
	api := newTestAPI(t, fixture(), fixedScope(scopeAll), false)
	r := api.get("/ngsi-ld/v1/entities?type=GpuDevice&limit=1&q=k8s.cluster.name==x-cluster;k8s.node.name==wrk-1")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var m []string
	for _, l := range r.header.Values("Link") {
		if x := regexp.MustCompile(`^<([^>]+)>; rel="next"`).FindStringSubmatch(l); x != nil {
			m = x
		}
	}
	require.Len(t, m, 2, "Link: %q", r.header.Values("Link"))
	next := api.get(m[1])
	require.Equal(t, http.StatusOK, next.status, "%s", next.body)
	assert.Empty(t, entities(t, next), "wrk-1 has one GPU: a second page without the q would list another node's")
}
