package loadgen // import "github.com/nerc-project/ai-telemetry-collector/internal/loadgen"

import (
	"bufio"
	"fmt"
	"io"
	"net/http"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// maxLine bounds one OTLP JSON line (one export request of the file exporter).
const maxLine = 512 << 20

// Tally is what the output holds for the alerts of a run.
type Tally struct {
	Spans int // spans of this run found
	// Found: accepted alerts with exactly one span of the expected name.
	Found int
	// Missing: accepted alerts without their span (lost).
	Missing int
	// Duplicated: alerts with more than one span.
	Duplicated int
	// WrongName: spans whose name is not the one their alert must yield.
	WrongName int
	// Unexpected: spans of alerts whose request was refused (an HTTP status
	// other than 200): the receiver answered that it did not take them.
	Unexpected int
	// OfUnanswered: spans of alerts whose request got no response (at most one
	// each; the server may have taken them before the client gave up).
	OfUnanswered int
	// Foreign: spans carrying a fingerprint of no alert of this run.
	Foreign int
}

// Lost is true when an accepted alert has no span, or any alert more than one.
func (t Tally) Lost() bool {
	return t.Missing > 0 || t.Duplicated > 0 || t.WrongName > 0 || t.Unexpected > 0 || t.Foreign > 0
}

// Count reads OTLP JSON trace lines (the file exporter's output) and checks
// them against the run: every alert of an accepted request must have exactly
// one span of the expected name.
func (r *Result) Count(output io.Reader) (Tally, error) {
	p := r.Config.Payload
	per := uint64(p.AlertsPerRequest) //nolint:gosec // positive
	total := uint64(len(r.Requests)) * per
	seen := make([]uint8, total)
	var t Tally
	sc := bufio.NewScanner(output)
	sc.Buffer(make([]byte, 0, 1<<20), maxLine)
	var um ptrace.JSONUnmarshaler
	line := 0
	for sc.Scan() {
		line++
		td, err := um.UnmarshalTraces(sc.Bytes())
		if err != nil {
			return t, fmt.Errorf("output line %d is not OTLP JSON traces: %w", line, err)
		}
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					fp, ok := sp.Attributes().Get(topology.AttrAlertFingerprint)
					if !ok {
						t.Foreign++
						continue
					}
					seq, ok := p.ParseFingerprint(fp.Str())
					if !ok || seq >= total {
						t.Foreign++
						continue
					}
					t.Spans++
					if sp.Name() != p.ExpectedSpan(seq) {
						t.WrongName++
					}
					if seen[seq] < 255 {
						seen[seq]++
					}
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return t, fmt.Errorf("reading output: %w", err)
	}
	for seq, n := range seen {
		if n > 1 {
			t.Duplicated++
		}
		status := r.Requests[uint64(seq)/per].Status
		switch {
		case status == http.StatusOK && n == 0:
			t.Missing++
		case status == http.StatusOK && n == 1:
			t.Found++
		case status == http.StatusOK, n == 0: // a duplicate (counted above), or nothing asked and nothing found
		case status == StatusError:
			t.OfUnanswered++
		default:
			t.Unexpected++
		}
	}
	return t, nil
}
