package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the committed example")

const example = "../../deploy/clickhouse/policies/project-row-policies.example.sql"

// The committed example is generated from the dashboards' test projects;
// tests/dashboards checks its SQL in chDB.
func TestExampleIsCurrent(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(&out, "../../tests/dashboards/testdata/projects.yaml", "default", "grafana_managers", "otel_exporter"))
	if *update {
		require.NoError(t, os.WriteFile(example, out.Bytes(), 0o644))
		return
	}
	want, err := os.ReadFile(example)
	require.NoError(t, err)
	require.Equal(t, string(want), out.String(), "stale: go test ./cmd/gen-row-policies -update")
}

func TestRejects(t *testing.T) {
	tests := []struct{ name, body, err string }{
		{"not a namespace", "projects:\n  - namespace: \"team-a'; DROP TABLE x; --\"\n", errBadNamespace.Error()},
		{"upper case", "projects:\n  - namespace: Team-A\n", errBadNamespace.Error()},
		{"empty", "projects:\n  - namespace: \"\"\n", errBadNamespace.Error()},
		{"not yaml", "projects: [\n", "projects.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "projects.yaml")
			require.NoError(t, os.WriteFile(path, []byte(tt.body), 0o600))
			var out bytes.Buffer
			require.ErrorContains(t, run(&out, path, "default", "m", "w"), tt.err)
			require.Zero(t, out.Len(), "nothing written on error")
		})
	}
	require.ErrorIs(t, run(new(bytes.Buffer), filepath.Join(t.TempDir(), "absent"), "default", "m", "w"), os.ErrNotExist)
}
