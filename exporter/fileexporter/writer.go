package fileexporter // import "github.com/nerc-project/ai-telemetry-collector/exporter/fileexporter"

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// writers shares one open file per path between every exporter that writes to
// it (the traces, metrics and logs exporters of one component, or several
// components naming the same path), so their lines never interleave.
var writers = &writerRegistry{byPath: map[string]*lineWriter{}}

type writerRegistry struct {
	mu     sync.Mutex
	byPath map[string]*lineWriter
}

// lineWriter appends whole lines to one file. Each line is written with a
// single write call under the lock, so a reader never sees half a request
// followed by another request's bytes.
type lineWriter struct {
	path string
	refs int

	mu   sync.Mutex
	file *os.File
}

// acquire opens path for appending, or returns the writer already open for it.
func (r *writerRegistry) acquire(path string, mode os.FileMode) (*lineWriter, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolving path %q: %w", path, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if w, ok := r.byPath[abs]; ok {
		w.refs++
		return w, nil
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("creating directory for %q: %w", path, err)
	}
	f, err := os.OpenFile(abs, os.O_WRONLY|os.O_APPEND|os.O_CREATE, mode)
	if err != nil {
		return nil, fmt.Errorf("opening %q: %w", path, err)
	}
	w := &lineWriter{path: abs, refs: 1, file: f}
	r.byPath[abs] = w
	return w, nil
}

// release closes the file once its last user is done with it.
func (r *writerRegistry) release(w *lineWriter) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	w.refs--
	if w.refs > 0 {
		return nil
	}
	delete(r.byPath, w.path)
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.file.Close()
	w.file = nil
	return err
}

// writeLine appends line, which must already end in a newline.
func (w *lineWriter) writeLine(line []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.file == nil {
		return os.ErrClosed
	}
	_, err := w.file.Write(line)
	return err
}
