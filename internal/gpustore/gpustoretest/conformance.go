// Package gpustoretest runs internal/gpustore/testdata/conformance.json
// against a gpustore.Reader: one reading of the cases for every backend's
// test, so that all of them answer the same questions.
package gpustoretest // import "github.com/nerc-project/ai-telemetry-collector/internal/gpustore/gpustoretest"

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore"
)

var errUnknownReport = errors.New("unknown report")

// Conformance is conformance.json.
type Conformance struct {
	Comment string `json:"comment"`
	// Window applies to every case that names none of its own.
	Window struct{ From, To time.Time } `json:"window"`
	Cases  []Case                       `json:"cases"`
}

// Case is one question to every backend.
type Case struct {
	Name      string                `json:"name"`
	Report    string                `json:"report"`
	Aggregate []string              `json:"aggregate,omitempty"`
	Step      gpustore.Step         `json:"step,omitempty"`
	Source    gpustore.Source       `json:"source,omitempty"`
	Projects  []gpustore.ProjectKey `json:"projects,omitempty"`
	Device    string                `json:"device,omitempty"`
	MaxPoints int                   `json:"max_points,omitempty"`
	// Window overrides the file's window for this case ("none": the zero
	// window, i.e. the last sample).
	Window *CaseWindow `json:"window,omitempty"`
}

// CaseWindow is a case's window: {"from", "to"} or "none".
type CaseWindow struct{ gpustore.Window }

// UnmarshalJSON reads "none" as the zero window.
func (w *CaseWindow) UnmarshalJSON(b []byte) error {
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

// LoadConformance reads the cases. Unknown fields are refused: a field a
// runner ignored would give an answer to another question.
func LoadConformance(path string) (*Conformance, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var c Conformance
	if err := d.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// WindowOf is the case's window, else the file's.
func (c *Conformance) WindowOf(k Case) gpustore.Window {
	if k.Window != nil {
		return k.Window.Window
	}
	return gpustore.Window{From: c.Window.From, To: c.Window.To}
}

// Answer asks r the case's question: every row the case's scope sees (all,
// or its projects), in pages of MaxLimit, reports unpaged.
func (c *Conformance) Answer(ctx context.Context, r gpustore.Reader, k Case) (any, error) {
	f := gpustore.Filter{Scope: gpustore.Scope{All: true}, Window: c.WindowOf(k), Device: k.Device, Limit: gpustore.MaxLimit}
	if len(k.Projects) > 0 {
		f.Scope = gpustore.Scope{Projects: k.Projects}
	}
	switch k.Report {
	case "gpu_hours":
		f.Limit = 0
		return r.GPUHours(ctx, gpustore.GPUHoursQuery{Filter: f, Aggregate: k.Aggregate, Step: k.Step, Source: k.Source})
	case "idle":
		return r.Idle(ctx, f)
	case "sessions":
		return r.Sessions(ctx, f)
	case "devices":
		return r.Devices(ctx, f)
	case "slices":
		return r.Slices(ctx, f)
	case "projects":
		return r.Projects(ctx, f)
	case "hubs":
		return r.Hubs(ctx, f)
	case "clusters":
		return r.Clusters(ctx, f)
	case "nodes":
		return r.Nodes(ctx, f)
	case "utilization":
		f.Limit = 0
		return r.Utilization(ctx, gpustore.UtilizationQuery{Filter: f, MaxPoints: k.MaxPoints})
	default:
		return nil, fmt.Errorf("case %s: %w %q", k.Name, errUnknownReport, k.Report)
	}
}
