// Package statuswriter remembers the status an http.Handler answered, for
// the request telemetry of the API and the pages.
package statuswriter // import "github.com/nerc-project/ai-telemetry-collector/extension/gpuqueryextension/internal/statuswriter"

import "net/http"

// Writer is an http.ResponseWriter that remembers the first status written.
type Writer struct {
	http.ResponseWriter
	status int
}

// Wrap wraps w.
func Wrap(w http.ResponseWriter) *Writer { return &Writer{ResponseWriter: w} }

// Status is the status answered: 200 once a body is written without one, 0
// while nothing is.
func (w *Writer) Status() int { return w.status }

// WriteHeader records the first status.
func (w *Writer) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200.
func (w *Writer) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}
