package gpumodelprocessor // import "github.com/nerc-project/ai-telemetry-collector/processor/gpumodelprocessor"

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.yaml.in/yaml/v3"
)

var (
	errNoNamespace        = errors.New("namespace must be set")
	errDuplicateNamespace = errors.New("namespace listed twice for the same cluster")
	errNegativeAllocation = errors.New("gpu_allocation must not be negative")
)

// projectsFile is the metadata file: for each namespace, the ColdFront facts
// that no cluster API holds.
type projectsFile struct {
	Projects []projectEntry `yaml:"projects"`
}

type projectEntry struct {
	Namespace      string   `yaml:"namespace"`
	Cluster        string   `yaml:"cluster"` // empty: every cluster
	ID             string   `yaml:"id"`
	Name           string   `yaml:"name"`
	PI             string   `yaml:"pi"`
	FieldOfScience string   `yaml:"field_of_science"`
	GPUAllocation  *float64 `yaml:"gpu_allocation"`
}

// parseProjectsFile decodes strictly: an unknown field is an error naming it.
func parseProjectsFile(raw []byte) (map[projectKey]project, error) {
	var f projectsFile
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	out := make(map[projectKey]project, len(f.Projects))
	for i, e := range f.Projects {
		if e.Namespace == "" {
			return nil, fmt.Errorf("projects[%d]: %w", i, errNoNamespace)
		}
		key := projectKey{cluster: e.Cluster, namespace: e.Namespace}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("projects[%d] (%s): %w", i, e.Namespace, errDuplicateNamespace)
		}
		p := project{ID: e.ID, Name: e.Name, PI: e.PI, FieldOfScience: e.FieldOfScience}
		if e.GPUAllocation != nil {
			if *e.GPUAllocation < 0 {
				return nil, fmt.Errorf("projects[%d] (%s): %w", i, e.Namespace, errNegativeAllocation)
			}
			p.Allocation = some(*e.GPUAllocation)
		}
		out[key] = p
	}
	return out, nil
}

// fileSource serves the metadata file and reloads it when it changes on disk.
// A file that fails to parse leaves the last good content in place.
type fileSource struct {
	path     string
	interval time.Duration
	onReload func(projects int)
	onError  func(error)

	projects atomic.Pointer[map[projectKey]project]
	gen      atomic.Uint64
	lastStat fileStamp

	stop chan struct{}
	done sync.WaitGroup
}

type fileStamp struct {
	modTime time.Time
	size    int64
}

func newFileSource(path string, interval time.Duration, onReload func(int), onError func(error)) *fileSource {
	return &fileSource{path: path, interval: interval, onReload: onReload, onError: onError}
}

// start loads the file once (an error here fails the collector's start, so a
// typo is seen at once) and then watches it.
func (s *fileSource) start() error {
	if err := s.load(); err != nil {
		return fmt.Errorf("metadata file %s: %w", s.path, err)
	}
	s.stop = make(chan struct{})
	s.done.Add(1)
	go s.watch()
	return nil
}

func (s *fileSource) shutdown() {
	if s.stop != nil {
		close(s.stop)
		s.done.Wait()
		s.stop = nil
	}
}

func (s *fileSource) watch() {
	defer s.done.Done()
	ticker := time.NewTicker(s.interval)
	defer ticker.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-ticker.C:
			if err := s.reloadIfChanged(); err != nil {
				s.onError(fmt.Errorf("metadata file %s: %w", s.path, err))
			}
		}
	}
}

func (s *fileSource) reloadIfChanged() error {
	info, err := os.Stat(s.path)
	if err != nil {
		return err
	}
	if (fileStamp{modTime: info.ModTime(), size: info.Size()}) == s.lastStat {
		return nil
	}
	return s.load()
}

func (s *fileSource) load() error {
	info, err := os.Stat(s.path)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(s.path)
	if err != nil {
		return err
	}
	// Remember the stamp even when parsing fails, so a broken file is
	// reported once, not at every tick.
	s.lastStat = fileStamp{modTime: info.ModTime(), size: info.Size()}
	projects, err := parseProjectsFile(raw)
	if err != nil {
		return err
	}
	s.projects.Store(&projects)
	s.gen.Add(1)
	if s.onReload != nil {
		s.onReload(len(projects))
	}
	return nil
}

func (s *fileSource) project(key projectKey) (project, bool) {
	m := s.projects.Load()
	if m == nil {
		return project{}, false
	}
	if p, ok := (*m)[key]; ok {
		return p, true
	}
	p, ok := (*m)[projectKey{namespace: key.namespace}]
	return p, ok
}

func (*fileSource) podNode(string, string) (string, bool) { return "", false }

func (s *fileSource) generation() uint64 { return s.gen.Load() }

var _ metadataSource = (*fileSource)(nil)
