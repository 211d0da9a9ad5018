package pages

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore/embedded"
)

// benchFleet is a synthetic fleet of make site-load's width (1,000 GPUs, 200
// projects) over 32 days, so that every picker window but last month reads
// what a site's would; built once into the temporary directory and reused.
// It ends at 13:00, as a site's "now" is mostly not midnight: a 24 h window
// then reads 11 hours of yesterday from the hourly rollup, not one whole day.
var benchFleet = embedded.SyntheticFleet{GPUs: 1000, Days: 32, RawHours: 2, Start: time.Date(2026, 1, 1, 13, 0, 0, 0, time.UTC)}

func benchStore(b *testing.B) *embedded.Store {
	b.Helper()
	f := benchFleet
	path := filepath.Join(os.TempDir(), fmt.Sprintf("pages-bench-%dgpus-%ddays-%drawh-%d.db", f.GPUs, f.Days, f.RawHours, f.Start.Unix()))
	if _, err := os.Stat(path); err != nil {
		b.Logf("building %s (once)", path)
		if err := embedded.BuildSynthetic(context.Background(), path, f); err != nil {
			b.Fatal(err)
		}
	}
	cfg := embedded.NewDefaultConfig()
	cfg.Path, cfg.Now = path, f.End
	s, err := embedded.Open(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkPages: a page's whole cost, store reads and rendering, over the
// synthetic fleet: what make site-load's users wait for, one at a time.
func BenchmarkPages(b *testing.B) {
	st := benchStore(b)
	manager := gpustore.Scope{All: true}
	member := gpustore.Scope{Projects: []gpustore.ProjectKey{{Hub: "moc", Cluster: benchFleet.Cluster(7), Namespace: benchFleet.Project(7)}}}
	project := projectPath("moc", benchFleet.Cluster(7), benchFleet.Project(7))
	device := "/devices/" + benchFleet.UUID(7)
	cases := []struct {
		name  string
		scope gpustore.Scope
		path  string
	}{
		{"overview_manager_24h", manager, "/"},
		{"overview_manager_month", manager, "/?window=month"},
		{"overview_member_24h", member, "/"},
		{"project_24h", member, project},
		{"project_30d", member, project + "?window=30d"},
		{"device_manager_24h", manager, device},
		{"device_manager_30d", manager, device + "?window=30d"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			h, err := New(Settings{Reader: st, Scope: fixed(c.scope), Now: benchFleet.End, Logger: zap.NewNop()})
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, c.path, http.NoBody)
			var size int
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%d %.500s", rec.Code, rec.Body)
				}
				size = rec.Body.Len()
			}
			b.ReportMetric(float64(size), "B/page")
		})
	}
}
