package clickhouse

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name, endpoint, want string
	}{
		{"native", "clickhouse://ch.example.org:9440?secure=true", ""},
		{"http", "https://ch.example.org:8443", ""},
		{"empty", "", "endpoint is required"},
		{"scheme", "mysql://ch.example.org:3306", "endpoint scheme"},
		{"userinfo", "clickhouse://otel:s3cret@ch.example.org:9440", "carries credentials"},
		{"password in query", "clickhouse://ch.example.org:9440?password=s3cret", "carries username, password"},
		{"no host", "clickhouse:///x", "no host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Config{Endpoint: tc.endpoint}.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrConfig naming %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the error quotes the secret: %v", err)
			}
		})
	}
	if got := (Config{}).withDefaults(); got.Database != "otel" || got.RawRetention != 14*24*time.Hour {
		t.Fatalf("defaults: %+v", got)
	}
}

// Every parameter a .sql file takes is set by scopeParams or by the reader
// that runs it, so no query can run with a parameter missing.
func TestEveryQueryParameterIsSet(t *testing.T) {
	qs, err := loadQueries()
	if err != nil {
		t.Fatal(err)
	}
	extra := map[string][]string{"sessions": {"now"}, "utilization": {"bucket_s"}}
	if len(qs) != 12 {
		t.Fatalf("%d queries embedded", len(qs))
	}
	for name, q := range qs {
		p := scopeParams(gpustore.Filter{}, 1)
		for _, k := range extra[name] {
			p[k] = "0"
		}
		if _, err := q.bind(p); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if !strings.Contains(q.text, "{all:Bool}") {
			t.Errorf("%s does not apply the scope", name)
		}
	}
	if _, err := qs["sessions"].bind(scopeParams(gpustore.Filter{}, 1)); !errors.Is(err, errMissingParam) {
		t.Fatalf("a missing parameter is not refused: %v", err)
	}
}

// Attribute names in the SQL are internal/topology's (one concept, one place).
func TestSQLAttributesAreTopologys(t *testing.T) {
	known := map[string]bool{}
	for _, a := range topology.Vocabulary {
		known[a.Key] = true
	}
	re := regexp.MustCompile(`Attributes\['([^']+)'\]|mapContains\(m, '([^']+)'\)|m\['([^']+)'\]`)
	qs, _ := loadQueries()
	n := 0
	for name, q := range qs {
		for _, m := range re.FindAllStringSubmatch(q.text, -1) {
			a := m[1] + m[2] + m[3]
			n++
			if !known[a] {
				t.Errorf("%s.sql reads attribute %q, not in internal/topology's vocabulary", name, a)
			}
		}
	}
	if n == 0 {
		t.Fatal("no attribute found: the pattern is stale")
	}
}

func TestParamsAreData(t *testing.T) {
	p := scopeParams(gpustore.Filter{Scope: gpustore.Scope{Projects: []gpustore.ProjectKey{
		{Hub: "moc", Cluster: "c", Namespace: `x' OR 1=1 --`}, {Hub: `a\`, Cluster: "b", Namespace: "n"},
	}}}, 10)
	if want := `[('moc', 'c', 'x\' OR 1=1 --'), ('a\\', 'b', 'n')]`; p["projects"] != want {
		t.Fatalf("projects = %s, want %s", p["projects"], want)
	}
	if p["all"] != "false" || p["hubs"] != "[]" || p["windowed"] != "false" {
		t.Fatalf("%v", p)
	}
}

// Bounds are refused with ErrBadQuery before any query (the store has no
// connection here), and the zero Scope reads nothing.
func TestBounds(t *testing.T) {
	s := &Store{cfg: Config{}.withDefaults(), now: time.Now}
	ctx := context.Background()
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	all := gpustore.Scope{All: true}
	w := gpustore.Window{From: from, To: from.Add(6 * time.Hour)}
	bad := []struct {
		name string
		call func() error
	}{
		{"no window", func() error {
			_, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: gpustore.Filter{Scope: all}})
			return err
		}},
		{"reversed window", func() error {
			_, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: gpustore.Filter{Scope: all, Window: gpustore.Window{From: w.To, To: w.From}}})
			return err
		}},
		{"100 years", func() error {
			_, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: gpustore.Filter{Scope: all, Window: gpustore.Window{From: from, To: from.AddDate(100, 0, 0)}}})
			return err
		}},
		{"unknown key", func() error {
			_, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: gpustore.Filter{Scope: all, Window: w}, Aggregate: []string{"namespace; DROP"}})
			return err
		}},
		{"key twice", func() error {
			_, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: gpustore.Filter{Scope: all, Window: w}, Aggregate: []string{"node", "node"}})
			return err
		}},
		{"bad step", func() error {
			_, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: gpustore.Filter{Scope: all, Window: w}, Step: "hour"})
			return err
		}},
		{"too many days", func() error {
			// 400 days from noon touch 401 calendar days
			noon := from.Add(12 * time.Hour)
			_, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: gpustore.Filter{Scope: all, Window: gpustore.Window{From: noon, To: noon.AddDate(0, 0, 400)}}, Step: gpustore.StepDay})
			return err
		}},
		{"bad source", func() error {
			_, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: gpustore.Filter{Scope: all, Window: w}, Source: "tempo"})
			return err
		}},
		{"limit", func() error {
			_, err := s.Devices(ctx, gpustore.Filter{Scope: all, Limit: gpustore.MaxLimit + 1})
			return err
		}},
		{"offset", func() error { _, err := s.Sessions(ctx, gpustore.Filter{Scope: all, Offset: -1}); return err }},
		{"points", func() error {
			_, err := s.Utilization(ctx, gpustore.UtilizationQuery{Filter: gpustore.Filter{Scope: all, Window: w}, MaxPoints: gpustore.MaxPoints + 1})
			return err
		}},
		{"utilization window", func() error {
			_, err := s.Utilization(ctx, gpustore.UtilizationQuery{Filter: gpustore.Filter{Scope: all}})
			return err
		}},
	}
	for _, tc := range bad {
		if err := tc.call(); !errors.Is(err, gpustore.ErrBadQuery) {
			t.Errorf("%s: got %v, want ErrBadQuery", tc.name, err)
		}
	}
	// 400 whole daily steps are fine (MaxSteps, as the embedded backend
	// counts them); the zero scope answers no rows without a query, as an
	// empty list (JSON [], the embedded backend's answer), not nil
	rows, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: gpustore.Filter{Window: gpustore.Window{From: from, To: from.AddDate(0, 0, gpustore.MaxSteps)}}, Step: gpustore.StepDay})
	if err != nil || rows == nil || len(rows) != 0 {
		t.Fatalf("zero scope: %#v %v", rows, err)
	}
	if d, err := s.Devices(ctx, gpustore.Filter{}); err != nil || d == nil || len(d) != 0 {
		t.Fatalf("zero scope: %#v %v", d, err)
	}
	if err := s.WriteMetrics(ctx, pmetricNew()); !errors.Is(err, gpustore.ErrReadOnly) {
		t.Fatal(err)
	}
}

func pmetricNew() pmetric.Metrics { return pmetric.NewMetrics() }
