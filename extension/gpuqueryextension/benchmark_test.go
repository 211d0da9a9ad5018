package gpuqueryextension

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.uber.org/zap"

	"github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/metadata"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

// BenchmarkHandler: the API's own cost per request (parsing, scope, JSON or
// CSV rendering, ETag), over the in-memory fake, so the store's cost is
// left out. A month of GPU-hours for 1000 projects is the largest page.
func BenchmarkHandler(b *testing.B) {
	store := fixture()
	store.hours = nil
	for i := range gpustore.MaxLimit {
		store.hours = append(store.hours, gpustore.GPUHoursRow{
			Start: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
			Keys:      map[string]string{"hub": "moc", "cluster": "nerc-ocp-prod", "project": fmt.Sprintf("team-%d", i), "pi": "pi@example.edu"},
			Allocated: 100.5, Used: 80.25, Idle: 20.25, Devices: 2,
		})
	}
	tel := componenttest.NewTelemetry()
	defer func() { _ = tel.Shutdown(context.Background()) }()
	tb, err := metadata.NewTelemetryBuilder(tel.NewTelemetrySettings())
	if err != nil {
		b.Fatal(err)
	}
	h, err := newAPI(apiSettings{reader: store, scoper: fixedScope(scopeAll), telemetry: tb, logger: zap.NewNop(), now: func() time.Time { return testNow }})
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct{ name, path, accept string }{
		{"devices_json", "/api/v1/devices", ""},
		{"devices_ngsild", "/api/v1/devices", mediaLDJSON},
		{"gpu_hours_1000_json", "/api/v1/reports/gpu-hours?window=lastmonth&aggregate=project,pi&step=month&limit=1000", ""},
		{"gpu_hours_1000_csv", "/api/v1/reports/gpu-hours?window=lastmonth&aggregate=project,pi&step=month", mediaCSV},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, c.path, http.NoBody)
			if c.accept != "" {
				req.Header.Set("Accept", c.accept)
			}
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
