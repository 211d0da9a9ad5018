//go:build integration

package clickhouse

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nerc-project/ai-telemetry-collector/internal/dashboardfixture"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore/gpustoretest"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// The ClickHouse backend through clickhouse-go's HTTP protocol against the
// real engine: tests/gpustore/chdb_http.py serves ClickHouse's HTTP
// interface from chDB over the recorded fixtures (the exporter's tables and
// deploy/clickhouse). Needs the dashboards' venv (make dashboards-test builds
// it; CHDB_PYTHON overrides the interpreter).

const repoRoot = "../../.."

func startCHDB(t *testing.T) string {
	t.Helper()
	py := os.Getenv("CHDB_PYTHON")
	if py == "" {
		py = filepath.Join(repoRoot, ".tools", "venv", "bin", "python")
	}
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("no python with chDB at %s (make dashboards-test builds .tools/venv; or set CHDB_PYTHON): %v", py, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, py, filepath.Join(repoRoot, "tests", "gpustore", "chdb_http.py"), "--port", "0")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				port <- p
			}
		}
	}()
	select {
	case p := <-port:
		return p
	case <-time.After(5 * time.Minute):
		t.Fatal("chdb_http.py did not start")
	}
	return ""
}

// embeddedAnswers is conformance.embedded.json: the reference answers.
type embeddedAnswers struct {
	Cases []struct {
		Name   string          `json:"name"`
		Report string          `json:"report"`
		Result json.RawMessage `json:"result"`
	} `json:"cases"`
}

func TestRealCHDBConformance(t *testing.T) {
	conf, err := gpustoretest.LoadConformance(filepath.Join("..", "testdata", "conformance.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref embeddedAnswers
	b, err := os.ReadFile(filepath.Join("..", "testdata", "conformance.embedded.json"))
	if err != nil {
		t.Fatalf("%v (go test ./internal/gpustore/embedded -update writes it)", err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	want := map[string]json.RawMessage{}
	for _, c := range ref.Cases {
		want[c.Name+"\x00"+c.Report] = c.Result
	}

	port := startCHDB(t)
	ctx := context.Background()
	s, err := Open(ctx, Config{Endpoint: "http://127.0.0.1:" + port, Database: "otel", Username: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	// the embedded runner's clock: the window's end (open sessions' durations)
	s.now = func() time.Time { return conf.Window.To }

	window := gpustore.Window{From: conf.Window.From, To: conf.Window.To}
	answers := map[string]any{}
	for _, c := range conf.Cases {
		got, err := conf.Answer(ctx, s, c)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		answers[c.Name] = got
		ref, ok := want[c.Name+"\x00"+c.Report]
		if !ok {
			t.Errorf("%s: not in conformance.embedded.json (stale: go test ./internal/gpustore/embedded -update)", c.Name)
			continue
		}
		ours, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		var a, o any
		if err := json.Unmarshal(ref, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(ours, &o); err != nil {
			t.Fatal(err)
		}
		if ds := diff(a, o, c.Name, nil); len(ds) > 0 {
			t.Errorf("%s differs from the embedded backend's answer (embedded vs clickhouse):\n  %s", c.Name, strings.Join(ds, "\n  "))
		}
	}
	checkSchedule(t, answers)
	checkHostileAndScope(t, s, window)
}

// Numbers agree within relative 1e-9, or absolute 1e-12 near zero: the two
// engines sum in different orders.
const (
	relTol = 1e-9
	absTol = 1e-12
)

func near(a, b float64) bool {
	return math.Abs(a-b) <= math.Max(relTol*math.Max(math.Abs(a), math.Abs(b)), absTol)
}

// diff lists where b differs from a (decoded JSON), at most 20 places.
func diff(a, b any, path string, out []string) []string {
	if len(out) >= 20 {
		return out
	}
	switch x := a.(type) {
	case float64:
		if y, ok := b.(float64); !ok || !near(x, y) {
			out = append(out, fmt.Sprintf("%s: %v vs %v", path, a, b))
		}
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			return append(out, fmt.Sprintf("%s: %v vs %v", path, a, b))
		}
		keys := map[string]bool{}
		for k := range x {
			keys[k] = true
		}
		for k := range y {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			xv, xok := x[k]
			yv, yok := y[k]
			if !xok || !yok {
				out = append(out, fmt.Sprintf("%s.%s: %v vs %v", path, k, present(xv, xok), present(yv, yok)))
				continue
			}
			out = diff(xv, yv, path+"."+k, out)
		}
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return append(out, fmt.Sprintf("%s: %d items vs %v", path, len(x), b))
		}
		for i := range x {
			out = diff(x[i], y[i], fmt.Sprintf("%s[%d]", path, i), out)
		}
	default:
		if fmt.Sprint(a) != fmt.Sprint(b) {
			out = append(out, fmt.Sprintf("%s: %v vs %v", path, a, b))
		}
	}
	return out
}

func present(v any, ok bool) any {
	if !ok {
		return "(absent)"
	}
	return v
}

func within(got, want float64) bool { return math.Abs(got-want) <= math.Max(0.01*math.Abs(want), 1e-6) }

func checkSchedule(t *testing.T, answers map[string]any) {
	// the ground truth behind the fixtures
	sc, err := dashboardfixture.Load(filepath.Join(repoRoot, "tests", "dashboards", "testdata", "schedule.json"))
	if err != nil {
		t.Fatal(err)
	}
	fractions := map[string]float64{}
	for _, d := range sc.Devices {
		f, ok := topology.SliceFraction(d.Model, d.MIGProfile)
		if !ok {
			t.Fatalf("device %s: no fraction for %q on %q", d.HWID(), d.MIGProfile, d.Model)
		}
		fractions[d.HWID()] = f
	}
	type tot struct{ alloc, used, idle float64 }
	want := map[string]*tot{}
	var all tot
	for _, a := range sc.Allocations {
		f := fractions[a.Device]
		x := want[a.Namespace]
		if x == nil {
			x = &tot{}
			want[a.Namespace] = x
		}
		x.alloc += f * a.Hours
		x.used += f * a.Busy * a.Hours
		if a.Busy < gpustore.IdleBusyThreshold {
			x.idle += f * a.Hours
		}
		all.alloc += f * a.Hours
	}
	for _, name := range []string{"by-project-raw", "by-project-rollup"} {
		rows := answers[name].([]gpustore.GPUHoursRow)
		if len(rows) != len(want) {
			t.Errorf("%s: %d rows, want %d", name, len(rows), len(want))
		}
		for _, r := range rows {
			w := want[r.Keys[gpustore.KeyProject]]
			if w == nil || !within(r.Allocated, w.alloc) || !within(r.Used, w.used) || !within(r.Idle, w.idle) {
				t.Errorf("%s: %+v, schedule %+v", name, r, w)
			} else {
				t.Logf("%s %s: allocated %.6f used %.6f idle %.6f (schedule %.6f %.6f %.6f)", name,
					r.Keys[gpustore.KeyProject], r.Allocated, r.Used, r.Idle, w.alloc, w.used, w.idle)
			}
		}
	}
	if rows := answers["total-raw"].([]gpustore.GPUHoursRow); len(rows) != 1 || !within(rows[0].Allocated, all.alloc) {
		t.Errorf("total-raw: %+v, schedule %v", rows, all.alloc)
	}
	for _, name := range []string{"by-device-raw", "by-cluster-node-raw", "by-model-profile-raw", "by-pi-raw", "by-pi-month-rollup", "by-node-rollup", "by-project-day-raw"} {
		var sum float64
		for _, r := range answers[name].([]gpustore.GPUHoursRow) {
			sum += r.Allocated
		}
		if !within(sum, all.alloc) {
			t.Errorf("%s adds up to %v, schedule %v", name, sum, all.alloc)
		}
	}
	for _, r := range answers["team-a-only-raw"].([]gpustore.GPUHoursRow) {
		for _, a := range sc.Allocations {
			if a.Device == r.Keys[gpustore.KeyDevice] && a.Namespace != "team-a" {
				t.Errorf("team-a's scope sees %s", a.Device)
			}
		}
	}
	sessions := answers["sessions"].([]gpustore.Session)
	if len(sessions) != len(sc.Allocations) { // every allocation of the schedule outlasts its alert's for:
		t.Errorf("%d sessions, want %d", len(sessions), len(sc.Allocations))
	}
	for _, x := range sessions {
		if x.End == nil || x.Busy == nil {
			t.Errorf("session %+v: closed and with samples in the fixtures", x)
		}
	}
	if n := len(answers["slices"].([]gpustore.Slice)); n != 2 {
		t.Errorf("%d slices, want 2", n)
	}
	if n := len(answers["devices"].([]gpustore.Device)); n != 4 {
		t.Errorf("%d devices, want 4", n)
	}
	if p := answers["projects"].([]gpustore.Project); len(p) != 2 || p[0].GPUAllocation == nil || *p[0].GPUAllocation != 4 {
		t.Errorf("projects: %+v", p)
	}
	var idle []string
	for _, a := range sc.Allocations {
		if a.Busy < gpustore.IdleBusyThreshold {
			idle = append(idle, a.Pod)
		}
	}
	var gotIdle []string
	for _, x := range answers["idle-window"].([]gpustore.IdleAllocation) {
		gotIdle = append(gotIdle, x.Pod)
	}
	sort.Strings(gotIdle)
	if fmt.Sprint(gotIdle) != fmt.Sprint(idle) {
		t.Errorf("idle: %v, want %v", gotIdle, idle)
	}
	if u := answers["utilization-a100-0"].([]gpustore.UtilizationPoint); len(u) != 24 || !within(u[8].Busy, 0.9) {
		t.Errorf("utilization: %d points %+v", len(u), u)
	}
}

// Hostile values are data: a namespace with SQL in it selects nothing, and
// the zero scope sees nothing; an engine error comes back wrapped.
func checkHostileAndScope(t *testing.T, s *Store, w gpustore.Window) {
	ctx := context.Background()
	hostile := gpustore.Scope{Projects: []gpustore.ProjectKey{{Hub: "moc", Cluster: "nerc-ocp-prod", Namespace: "x' OR 1=1 --"}}}
	rows, err := s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: gpustore.Filter{Scope: hostile, Window: w}, Aggregate: []string{"device"}})
	if err != nil || len(rows) != 0 {
		t.Errorf("hostile project scope: %v %v", rows, err)
	}
	sessions, err := s.Sessions(ctx, gpustore.Filter{Scope: gpustore.Scope{All: true}, Namespace: "x' OR 1=1 --"})
	if err != nil || len(sessions) != 0 {
		t.Errorf("hostile namespace filter: %v %v", sessions, err)
	}
	devs, err := s.Devices(ctx, gpustore.Filter{Scope: gpustore.Scope{Projects: []gpustore.ProjectKey{{Hub: "moc", Cluster: "nerc-ocp-prod", Namespace: "team-b"}}}})
	if err != nil || len(devs) != 1 || devs[0].ID != "GPU-6b0d4e93-2f8a-4c17-b3e5-91a7c2d8f604" {
		t.Errorf("team-b's devices: %+v %v", devs, err)
	}
	s.queries["broken"] = query{name: "broken", text: "SELECT nosuch FROM gpu_samples"}
	if _, err := s.run(ctx, "broken", params{}); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("an engine error: %v", err)
	} else {
		var target interface{ Error() string }
		_ = errors.As(err, &target)
		t.Logf("engine error as returned: %v", err)
	}
}
