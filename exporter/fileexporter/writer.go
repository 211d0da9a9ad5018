package fileexporter // import "github.com/nerc-project/ai-telemetry-collector/exporter/fileexporter"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

var (
	// errSymlink: the path's last component is a symbolic link. Anyone who
	// can write the directory could plant one to have the collector append
	// to, or create, a file elsewhere with its rights.
	errSymlink = errors.New("is a symbolic link: the exporter writes only to the file the path names")
	// errNotRegular: a FIFO, socket or device at the path.
	errNotRegular = errors.New("is not a regular file")
)

// openFlags: append, create, never through a symbolic link (O_NOFOLLOW fails
// with ELOOP on one), and without waiting for a reader should a FIFO be
// there (O_NONBLOCK; it changes nothing for a regular file).
const openFlags = os.O_WRONLY | os.O_APPEND | os.O_CREATE | syscall.O_NOFOLLOW | syscall.O_NONBLOCK

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
	f, err := openFile(abs, mode)
	if err != nil {
		return nil, fmt.Errorf("opening %q: %w", path, err)
	}
	w := &lineWriter{path: abs, refs: 1, file: f}
	r.byPath[abs] = w
	return w, nil
}

// openFile opens path for appending, refusing a symbolic link or a file that
// is not regular, and gives the file exactly mode (fchmod on the open file:
// an existing file keeps no wider mode, a new one is not narrowed by the
// umask).
func openFile(path string, mode os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, openFlags, mode)
	if errors.Is(err, syscall.ELOOP) {
		return nil, errSymlink
	}
	if errors.Is(err, syscall.ENXIO) { // O_NONBLOCK on a FIFO without a reader
		return nil, fmt.Errorf("%w: %w", errNotRegular, err)
	}
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	switch {
	case err != nil:
	case !info.Mode().IsRegular():
		err = fmt.Errorf("%w (%s)", errNotRegular, info.Mode().Type())
	case info.Mode().Perm() != mode:
		if err = f.Chmod(mode); err != nil {
			err = fmt.Errorf("setting file_mode %#o: %w", mode, err)
		}
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
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
