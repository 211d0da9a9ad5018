package dcgmreplay // import "github.com/nerc-project/ai-telemetry-collector/internal/dcgmreplay"

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
)

var errNoSteps = errors.New("no expositions to serve")

// Steps serves successive expositions, one per step, so a recorded or
// generated multi-hour series can be replayed in seconds: each exposition
// carries explicit sample timestamps, which the Prometheus scrape loop (and
// the collector's prometheus receiver, honor_timestamps defaulting to true)
// keeps instead of the scrape time.
//
// A step is served until Advance is called. Advancing on acknowledgement
// rather than on serving makes a replay lossless: a scrape that fails after
// the body was sent (timeout, pipeline refusal) gets the same step again.
// With advanceOnServe the next request gets the next step (cmd/dcgm-replay,
// where nobody acknowledges). After the last step every scrape gets an empty
// exposition: samples with explicit timestamps are not marked stale, so this
// adds nothing downstream.
type Steps struct {
	steps          []*Recording
	advanceOnServe bool

	mu   sync.Mutex
	next int
	done chan struct{}
}

// NewSteps validates every step with Prometheus' own parser.
func NewSteps(steps [][]byte, advanceOnServe bool) (*Steps, error) {
	if len(steps) == 0 {
		return nil, errNoSteps
	}
	s := &Steps{advanceOnServe: advanceOnServe, done: make(chan struct{})}
	for i, body := range steps {
		rec, err := Parse(body)
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", i, err)
		}
		s.steps = append(s.steps, rec)
	}
	return s, nil
}

// Len is the number of steps.
func (s *Steps) Len() int { return len(s.steps) }

// Current is the index of the step served now (Len when all were served).
func (s *Steps) Current() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

// Advance moves to the next step when step is the current one, and reports
// whether it did; acknowledging a step twice moves nothing.
func (s *Steps) Advance(step int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if step != s.next || s.next >= len(s.steps) {
		return false
	}
	s.next++
	if s.next == len(s.steps) {
		close(s.done)
	}
	return true
}

// Done is closed once every step was served (advanceOnServe) or acknowledged.
func (s *Steps) Done() <-chan struct{} { return s.done }

// ServeHTTP answers GET and HEAD with the current step.
func (s *Steps) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.mu.Lock()
	i := s.next
	var body []byte
	if i < len(s.steps) {
		body = s.steps[i].body
	}
	s.mu.Unlock()
	if s.advanceOnServe && req.Method == http.MethodGet {
		s.Advance(i)
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	if req.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}
