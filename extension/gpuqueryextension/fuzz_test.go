package gpuqueryextension

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.uber.org/zap"

	"github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/metadata"
)

// FuzzQueryParams: any query string on any route, in any media type, never
// panics and never answers 5xx (the store here always answers), and every
// answer is what the OpenAPI document describes.
func FuzzQueryParams(f *testing.F) {
	seeds := []struct {
		route, query, accept string
	}{
		{"/api/v1/devices", "hub=moc&cluster=nerc-ocp-prod&limit=10&offset=5", ""},
		{"/api/v1/reports/gpu-hours", "window=lastmonth&aggregate=project,pi&step=month", "text/csv"},
		{"/api/v1/reports/gpu-hours", "window=2026-11-01T00:00:00Z,2026-12-01T00:00:00Z&source=raw&step=day", ""},
		{"/api/v1/reports/utilization", "device=" + gpuWhole + "&points=2000&window=7d", ""},
		{"/api/v1/reports/idle", "window=month:2026-11", "text/csv"},
		{"/ngsi-ld/v1/entities", "type=GpuDevice&q=k8s.namespace.name==team-a;hw.id==" + gpuWhole, "application/ld+json"},
		{"/ngsi-ld/v1/entities", "id=urn:ngsi-ld:GpuSlice:nerc-ocp-prod:wrk-10:0:1", ""},
		{"/api/v1/slices", "window=9999999d&limit=%zz", ""},
		{"/api/v1/projects", "namespace=team-a;drop&&=&a=b", "application/ld+json"},
	}
	for _, s := range seeds {
		f.Add(s.route, s.query, s.accept)
	}
	tel := componenttest.NewTelemetry()
	defer func() { _ = tel.Shutdown(context.Background()) }()
	tb, err := metadata.NewTelemetryBuilder(tel.NewTelemetrySettings())
	if err != nil {
		f.Fatal(err)
	}
	h, err := newAPI(apiSettings{reader: fixture(), scoper: fixedScope(scopeAll), telemetry: tb, logger: zap.NewNop(), now: func() time.Time { return testNow }})
	if err != nil {
		f.Fatal(err)
	}
	d, err := loadDoc()
	if err != nil {
		f.Fatal(err)
	}
	router, err := legacyRouter(d)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, route, query, accept string) {
		u := &url.URL{Path: route, RawQuery: query}
		req, err := http.NewRequest(http.MethodGet, "http://api.test"+u.String(), http.NoBody)
		if err != nil {
			return // not a request a client could send
		}
		req.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		resp := rec.Result()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 500 {
			t.Fatalf("%s?%s (Accept %q) -> %d %s", route, query, accept, resp.StatusCode, body)
		}
		if err := validateResponse(router, req, resp, body); err != nil {
			t.Fatalf("%s?%s (Accept %q) -> %d: %v\n%s", route, query, accept, resp.StatusCode, err, body)
		}
	})
}
