package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nerc-project/ai-telemetry-collector/internal/gpustore/gpustoretest"
)

var update = flag.Bool("update", false, "rewrite internal/gpustore/testdata/conformance.embedded.json")

var (
	conformanceCases   = filepath.Join("..", "testdata", "conformance.json")
	conformanceAnswers = filepath.Join("..", "testdata", "conformance.embedded.json")
)

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
	conf, err := gpustoretest.LoadConformance(conformanceCases)
	require.NoError(t, err)
	require.Equal(t, fixtureEnd, conf.Window.To, "the fixtures' clock is the window's end")

	s, _ := openFixture(t)
	ctx := context.Background()
	var answers []conformanceAnswer
	for _, c := range conf.Cases {
		res, err := conf.Answer(ctx, s, c)
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
