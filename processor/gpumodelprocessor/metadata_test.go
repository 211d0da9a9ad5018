package gpumodelprocessor

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseProjectsFile(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr string
		want    map[projectKey]project
	}{
		{name: "empty file", body: "", want: map[projectKey]project{}},
		{
			name: "entries",
			body: "projects:\n  - namespace: a\n    pi: p\n    gpu_allocation: 1.5\n  - namespace: a\n    cluster: c\n    id: \"7\"\n",
			want: map[projectKey]project{
				{namespace: "a"}:               {PI: "p", Allocation: some(1.5)},
				{cluster: "c", namespace: "a"}: {ID: "7"},
			},
		},
		{name: "unknown field named", body: "projects:\n  - namespace: a\n    principal: p\n", wantErr: "field principal not found"},
		{name: "no namespace", body: "projects:\n  - id: \"1\"\n", wantErr: "projects[0]: namespace must be set"},
		{name: "duplicate", body: "projects:\n  - namespace: a\n  - namespace: a\n", wantErr: "projects[1] (a): namespace listed twice"},
		{name: "negative allocation", body: "projects:\n  - namespace: a\n    gpu_allocation: -1\n", wantErr: "must not be negative"},
		{name: "not yaml", body: "projects: [\n", wantErr: "yaml"},
		{name: "wrong type", body: "projects:\n  - namespace: a\n    gpu_allocation: many\n", wantErr: "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProjectsFile([]byte(tt.body))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestFileSourceReloadsWhenTheFileChanges changes the file on disk while the
// source watches it: a good change is taken, a broken one is reported and
// leaves the last good content.
func TestFileSourceReloadsWhenTheFileChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "projects.yaml")
	require.NoError(t, os.WriteFile(path, []byte("projects:\n  - namespace: team-a\n    pi: alice\n"), 0o600))
	var reloads, errs atomic.Int32
	s := newFileSource(path, 20*time.Millisecond, func(int) { reloads.Add(1) }, func(error) { errs.Add(1) })
	require.NoError(t, s.start())
	defer s.shutdown()

	p, ok := s.project(projectKey{cluster: "any", namespace: "team-a"})
	require.True(t, ok)
	assert.Equal(t, "alice", p.PI)
	gen := s.generation()

	require.NoError(t, os.WriteFile(path, []byte("projects:\n  - namespace: team-a\n    pi: carol@example.edu\n    gpu_allocation: 8\n"), 0o600))
	require.Eventually(t, func() bool {
		p, _ := s.project(projectKey{namespace: "team-a"})
		return p.PI == "carol@example.edu"
	}, 10*time.Second, 10*time.Millisecond)
	p, _ = s.project(projectKey{namespace: "team-a"})
	assert.Equal(t, some(8), p.Allocation)
	assert.Greater(t, s.generation(), gen)

	require.NoError(t, os.WriteFile(path, []byte("projects:\n  - namespace: team-a\n    pii: x\n"), 0o600))
	require.Eventually(t, func() bool { return errs.Load() == 1 }, 10*time.Second, 10*time.Millisecond)
	p, _ = s.project(projectKey{namespace: "team-a"})
	assert.Equal(t, "carol@example.edu", p.PI, "a broken file keeps the last good content")
	assert.Equal(t, int32(2), reloads.Load())
}

func TestFileSourceFailsStartOnBrokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "projects.yaml")
	require.NoError(t, os.WriteFile(path, []byte("projects:\n  - nmespace: a\n"), 0o600))
	err := newFileSource(path, time.Second, nil, nil).start()
	require.ErrorContains(t, err, "nmespace")
	require.ErrorContains(t, err, path)
	err = newFileSource(filepath.Join(t.TempDir(), "absent.yaml"), time.Second, nil, nil).start()
	require.ErrorContains(t, err, "absent.yaml")
}

// staticSource is a fixed source for precedence tests.
type staticSource struct {
	projects map[projectKey]project
	nodes    map[string]string
}

func (s staticSource) project(k projectKey) (project, bool) { p, ok := s.projects[k]; return p, ok }
func (s staticSource) podNode(_, pod string) (string, bool) { n, ok := s.nodes[pod]; return n, ok }
func (staticSource) generation() uint64                     { return 0 }

func TestMetadataPrecedenceIsPerField(t *testing.T) {
	key := projectKey{cluster: "c", namespace: "n"}
	file := staticSource{projects: map[projectKey]project{key: {Name: "From ColdFront", Allocation: some(4)}}}
	api := staticSource{projects: map[projectKey]project{key: {Name: "display-name", PI: "alice", Quota: some(2), Requests: some(1)}}, nodes: map[string]string{"exp-1": "wrk-1"}}
	ksm := staticSource{projects: map[projectKey]project{key: {PI: "bob", ID: "9", Quota: some(99)}}, nodes: map[string]string{"exp-1": "wrk-9", "exp-2": "wrk-2"}}
	m := &metadataSources{sources: []metadataSource{file, api, ksm}}
	p, ok := m.project(key)
	require.True(t, ok)
	assert.Equal(t, project{Name: "From ColdFront", PI: "alice", ID: "9", Allocation: some(4), Quota: some(2), Requests: some(1)}, p)
	n, _ := m.podNode("c", "exp-1")
	assert.Equal(t, "wrk-1", n)
	n, _ = m.podNode("c", "exp-2")
	assert.Equal(t, "wrk-2", n)
	_, ok = m.project(projectKey{cluster: "c", namespace: "other"})
	assert.False(t, ok)
}
