package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

var update = flag.Bool("update", false, "rewrite internal/gpustore/testdata/conformance.embedded.json")

var (
	conformanceCases   = filepath.Join("..", "testdata", "conformance.json")
	conformanceAnswers = filepath.Join("..", "testdata", "conformance.embedded.json")
)

type conformanceCase struct {
	Name      string                `json:"name"`
	Report    string                `json:"report"`
	Aggregate []string              `json:"aggregate,omitempty"`
	Step      gpustore.Step         `json:"step,omitempty"`
	Source    gpustore.Source       `json:"source,omitempty"`
	Projects  []gpustore.ProjectKey `json:"projects,omitempty"`
	Device    string                `json:"device,omitempty"`
	MaxPoints int                   `json:"max_points,omitempty"`
	// Window overrides the file's window for this case ("none": the zero
	// window, i.e. the last sample); the ClickHouse runner reads it alike.
	Window *caseWindow `json:"window,omitempty"`
}

type caseWindow struct{ gpustore.Window }

func (w *caseWindow) UnmarshalJSON(b []byte) error {
	if string(b) == `"none"` {
		w.Window = gpustore.Window{}
		return nil
	}
	var x struct{ From, To time.Time }
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	w.Window = gpustore.Window{From: x.From, To: x.To}
	return nil
}

type conformanceAnswer struct {
	Name   string `json:"name"`
	Report string `json:"report"`
	Result any    `json:"result"`
}

// TestConformance answers every case of conformance.json on the recorded
// fixtures and fails when conformance.embedded.json differs (stale, or not
// deterministic); -update rewrites it. The store's clock is the window's
// end, so open sessions' durations are fixed.
func TestConformance(t *testing.T) {
	b, err := os.ReadFile(conformanceCases)
	require.NoError(t, err)
	var raw struct {
		Window struct {
			From string `json:"from"`
			To   string `json:"to"`
		} `json:"window"`
		Cases []conformanceCase `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(b, &raw))
	var win gpustore.Window
	require.NoError(t, win.From.UnmarshalText([]byte(raw.Window.From)))
	require.NoError(t, win.To.UnmarshalText([]byte(raw.Window.To)))
	require.Equal(t, fixtureEnd, win.To, "the fixtures' clock is the window's end")
	// Every case's fields must be known here: a field this runner ignored
	// would give an answer to another question.
	var strict struct {
		Cases []json.RawMessage `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(b, &strict))
	for _, c := range strict.Cases {
		d := json.NewDecoder(bytes.NewReader(c))
		d.DisallowUnknownFields()
		var cc conformanceCase
		require.NoError(t, d.Decode(&cc), string(c))
	}

	s, _ := openFixture(t)
	ctx := context.Background()
	var answers []conformanceAnswer
	for _, c := range raw.Cases {
		w := win
		if c.Window != nil {
			w = c.Window.Window
		}
		f := gpustore.Filter{Scope: allScope, Window: w, Device: c.Device, Limit: gpustore.MaxLimit}
		if len(c.Projects) > 0 {
			f.Scope = gpustore.Scope{Projects: c.Projects}
		}
		var res any
		var err error
		switch c.Report {
		case "gpu_hours":
			f.Limit = 0
			res, err = s.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: f, Aggregate: c.Aggregate, Step: c.Step, Source: c.Source})
		case "idle":
			res, err = s.Idle(ctx, f)
		case "sessions":
			res, err = s.Sessions(ctx, f)
		case "devices":
			res, err = s.Devices(ctx, f)
		case "slices":
			res, err = s.Slices(ctx, f)
		case "projects":
			res, err = s.Projects(ctx, f)
		case "hubs":
			res, err = s.Hubs(ctx, f)
		case "clusters":
			res, err = s.Clusters(ctx, f)
		case "nodes":
			res, err = s.Nodes(ctx, f)
		case "utilization":
			f.Limit = 0
			res, err = s.Utilization(ctx, gpustore.UtilizationQuery{Filter: f, MaxPoints: c.MaxPoints})
		default:
			t.Fatalf("case %s: unknown report %q", c.Name, c.Report)
		}
		require.NoError(t, err, c.Name)
		answers = append(answers, conformanceAnswer{Name: c.Name, Report: c.Report, Result: res})
	}
	got, err := json.MarshalIndent(struct {
		Comment string              `json:"comment"`
		Cases   []conformanceAnswer `json:"cases"`
	}{
		Comment: "The embedded backend's answers to conformance.json on the recorded fixtures, " +
			"written by go test ./internal/gpustore/embedded -update (read time: the window's end).",
		Cases: answers,
	}, "", "  ")
	require.NoError(t, err)
	got = append(got, '\n')
	if *update {
		require.NoError(t, os.WriteFile(conformanceAnswers, got, 0o644))
		t.Logf("wrote %s", conformanceAnswers)
		return
	}
	want, err := os.ReadFile(conformanceAnswers)
	require.NoError(t, err, "run go test ./internal/gpustore/embedded -update")
	if !bytes.Equal(want, got) {
		t.Fatalf("%s is stale or the answers are not deterministic (rerun with -update if the change is intended)\n%s",
			conformanceAnswers, firstDiff(want, got))
	}
}

// firstDiff shows the first differing line of two documents.
func firstDiff(a, b []byte) string {
	al, bl := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := 0; i < len(al) && i < len(bl); i++ {
		if !bytes.Equal(al[i], bl[i]) {
			return "line " + itoa(i+1) + ":\ncommitted: " + string(al[i]) + "\nthis run:  " + string(bl[i])
		}
	}
	return "lengths differ: " + itoa(len(al)) + " committed lines, " + itoa(len(bl)) + " now"
}
