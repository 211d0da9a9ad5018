package gpuqueryextension

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.uber.org/zap"

	"github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/metadata"
	"github.com/nerc-project/ai-telemetry-collector/internal/authz"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// testNow is the clock of every test: windows like "7d" and "lastmonth" are
// relative to it.
var testNow = time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC)

const (
	gpuMIG   = "GPU-603a8873-0edd-c157-ce48-2078e8b1a935"
	gpuWhole = "GPU-11111111-2222-3333-4444-555555555555"
	gpuOther = "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
)

func ptr[T any](v T) *T { return &v }

// fixture: hub moc with nerc-ocp-prod (node wrk-10: a MIG A100 whose slices
// team-a and team-b hold, a whole GPU team-a holds), hub other with
// x-cluster (team-c's GPU).
func fixture() *memStore {
	seen := testNow.Add(-time.Minute)
	return &memStore{
		hubs: []gpustore.Hub{{Name: "moc", Clusters: 1, GPUs: 2, LastSeen: seen}, {Name: "other", Clusters: 1, GPUs: 1, LastSeen: seen}},
		clusters: []gpustore.Cluster{
			{Hub: "moc", Name: "nerc-ocp-prod", Nodes: 1, GPUs: 2, Slices: 2, LastSeen: seen},
			{Hub: "other", Name: "x-cluster", Nodes: 1, GPUs: 1, LastSeen: seen},
		},
		nodes: []gpustore.Node{
			{Hub: "moc", Cluster: "nerc-ocp-prod", Name: "wrk-10", GPUs: 2, Slices: 2, Models: []string{"NVIDIA A100-SXM4-80GB"}, LastSeen: seen},
			{Hub: "other", Cluster: "x-cluster", Name: "wrk-1", GPUs: 1, LastSeen: seen},
		},
		devices: []gpustore.Device{
			{Hub: "moc", Cluster: "nerc-ocp-prod", Node: "wrk-10", ID: gpuMIG, Index: "0", Model: "NVIDIA A100-SXM4-80GB", MIG: true, Slices: 2, State: gpustore.StateInUse, LastSeen: seen},
			{Hub: "moc", Cluster: "nerc-ocp-prod", Node: "wrk-10", ID: gpuWhole, Index: "1", Model: "NVIDIA A100-SXM4-80GB", State: gpustore.StateIdle, Holder: &gpustore.Holder{Namespace: "team-a", Pod: "train-0"}, LastSeen: seen},
			{Hub: "other", Cluster: "x-cluster", Node: "wrk-1", ID: gpuOther, Index: "0", Model: "NVIDIA H100", State: gpustore.StateInUse, Holder: &gpustore.Holder{Namespace: "team-c", Pod: "p"}, LastSeen: seen},
		},
		slices: []gpustore.Slice{
			{Hub: "moc", Cluster: "nerc-ocp-prod", Node: "wrk-10", ID: gpuMIG + "/1", Parent: gpuMIG, Profile: "3g.40gb", Fraction: 3.0 / 7, Model: "NVIDIA A100-SXM4-80GB", State: gpustore.StateInUse, Holder: &gpustore.Holder{Namespace: "team-a", Pod: "nb-0"}, LastSeen: seen},
			{Hub: "moc", Cluster: "nerc-ocp-prod", Node: "wrk-10", ID: gpuMIG + "/2", Parent: gpuMIG, Profile: "1g.10gb", Fraction: 1.0 / 7, Model: "NVIDIA A100-SXM4-80GB", State: gpustore.StateIdle, Holder: &gpustore.Holder{Namespace: "team-b", Pod: "nb-1"}, LastSeen: seen},
		},
		projects: []gpustore.Project{
			{Hub: "moc", Cluster: "nerc-ocp-prod", Namespace: "team-a", ID: "1234", Name: "LLM fine-tuning", PI: "alice@example.edu", GPUQuota: ptr(4.0), LastSeen: seen},
			{Hub: "moc", Cluster: "nerc-ocp-prod", Namespace: "team-b", PI: "=HYPERLINK(\"http://x\")", LastSeen: seen},
			{Hub: "other", Cluster: "x-cluster", Namespace: "team-c", LastSeen: seen},
		},
		sessions: []gpustore.Session{
			{TraceID: "0af7651916cd43dd8448eb211c80319c", SpanID: "b7ad6b7169203331", Kind: gpustore.SessionUsage, Hub: "moc", Cluster: "nerc-ocp-prod", Node: "wrk-10", Namespace: "team-a", Pod: "train-0", Device: gpuWhole, Fraction: 1, Start: seen.Add(-time.Hour), DurationS: 3600},
		},
		hours: []gpustore.GPUHoursRow{
			{Start: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Keys: map[string]string{"hub": "moc", "cluster": "nerc-ocp-prod", "project": "team-a", "pi": "alice@example.edu"}, Allocated: 120.5, Used: 100.25, Idle: 20.25, Devices: 2},
			{Start: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Keys: map[string]string{"hub": "moc", "cluster": "nerc-ocp-prod", "project": "team-b", "pi": "=HYPERLINK(\"http://x\")"}, Allocated: 10, Used: 1, Idle: 9, Devices: 1},
		},
		idle: []gpustore.IdleAllocation{
			{Hub: "moc", Cluster: "nerc-ocp-prod", Node: "wrk-10", Device: gpuWhole, Namespace: "team-a", Pod: "train-0", Fraction: 1, IdleHours: 2.5, Since: seen.Add(-150 * time.Minute), LastSeen: seen},
		},
		points: []gpustore.UtilizationPoint{{Time: seen, Busy: 0.5, FBUsedMiB: 1024, PowerW: 200, TempC: 60, Samples: 4}},
	}
}

// scopes of the callers in the tests.
var (
	scopeAll     = gpustore.Scope{All: true}
	scopeTeamA   = gpustore.Scope{Projects: []gpustore.ProjectKey{{Hub: "moc", Cluster: "nerc-ocp-prod", Namespace: "team-a"}}}
	scopeManager = gpustore.Scope{Clusters: []gpustore.ClusterKey{{Hub: "moc", Cluster: "nerc-ocp-prod"}}}
)

func fixedScope(s gpustore.Scope) authz.ReadScoper {
	return authz.ReadScoperFunc(func(context.Context) (gpustore.Scope, error) { return s, nil })
}

// testAPI is an API on a test server whose every response is validated
// against the OpenAPI document it serves.
type testAPI struct {
	t      *testing.T
	srv    *httptest.Server
	store  *memStore
	tel    *componenttest.Telemetry
	router routers.Router
}

var (
	docOnce sync.Once
	doc     *openapi3.T
	docErr  error
)

// loadDoc loads the embedded document as kin-openapi reads OpenAPI 3.1.
func loadDoc() (*openapi3.T, error) {
	docOnce.Do(func() {
		raw, err := openAPIJSON()
		if err != nil {
			docErr = err
			return
		}
		loader := openapi3.NewLoader()
		doc, docErr = loader.LoadFromData(raw)
		if docErr == nil {
			docErr = doc.Validate(loader.Context)
		}
	})
	return doc, docErr
}

func newTestAPI(t *testing.T, store *memStore, scoper authz.ReadScoper, local bool) *testAPI {
	t.Helper()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	tb, err := metadata.NewTelemetryBuilder(tel.NewTelemetrySettings())
	require.NoError(t, err)
	h, err := newAPI(apiSettings{reader: store, scoper: scoper, local: local, telemetry: tb, logger: zap.NewNop(), now: func() time.Time { return testNow }})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	d, err := loadDoc()
	require.NoError(t, err)
	router, err := legacyRouter(d)
	require.NoError(t, err)
	return &testAPI{t: t, srv: srv, store: store, tel: tel, router: router}
}

// response is what a test reads of an answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "%s", r.body)
	return m
}

func (r response) items(t *testing.T) []any {
	t.Helper()
	items, ok := r.json(t)["items"].([]any)
	require.True(t, ok, "%s", r.body)
	return items
}

// get requests path and validates the answer against the OpenAPI document:
// every response any test receives passes through here.
func (a *testAPI) get(path string, headers ...string) response {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.srv.URL+path, http.NoBody)
	require.NoError(a.t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := a.srv.Client().Do(req)
	require.NoError(a.t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(a.t, err)
	require.NoError(a.t, validateResponse(a.router, req, resp, body), "%s %s -> %d %s", req.Method, path, resp.StatusCode, body)
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// validateResponse checks one answer against the document: a path the
// document lacks fails, as does a status, media type or body it does not
// describe. Answers to unknown paths must be problems.
func validateResponse(router routers.Router, req *http.Request, resp *http.Response, body []byte) error {
	route, params, err := router.FindRoute(req)
	if err != nil {
		if resp.StatusCode == http.StatusNotFound && resp.Header.Get("Content-Type") == mediaProblem {
			return validateProblem(body)
		}
		return err
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	return openapi3filter.ValidateResponse(context.Background(), in)
}

// validateProblem validates a problem answered outside any documented path.
func validateProblem(body []byte) error {
	d, err := loadDoc()
	if err != nil {
		return err
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	return d.Components.Schemas["Problem"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020())
}

func legacyRouter(d *openapi3.T) (routers.Router, error) { return legacy.NewRouter(d) }
