package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

var update = flag.Bool("update", false, "rewrite the committed example")

const example = "../../deploy/clickhouse/policies/project-row-policies.example.sql"

// exampleOptions: the dashboards' test projects and schedule (team-a names no
// cluster and takes the schedule's), on the database and user the chDB test
// loads (tests/dashboards checks this SQL there).
var exampleOptions = options{
	projects: "../../tests/dashboards/testdata/projects.yaml",
	database: "default",
	managers: "grafana_managers",
	allRows:  "otel",
	cluster:  "nerc-ocp-prod",
}

func TestExampleIsCurrent(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(&out, exampleOptions))
	if *update {
		require.NoError(t, os.WriteFile(example, out.Bytes(), 0o644))
		return
	}
	want, err := os.ReadFile(example)
	require.NoError(t, err)
	require.Equal(t, string(want), out.String(), "stale: go test ./cmd/gen-row-policies -update")
}

func writeProjects(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "projects.yaml")
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

// Each project's policies name its cluster and its namespace, and its role
// both; a project the file places on no cluster takes -cluster.
func TestPoliciesNameClusterAndNamespace(t *testing.T) {
	path := writeProjects(t, "projects:\n"+
		"  - namespace: team-a\n"+
		"  - namespace: team-a\n    cluster: other.example.org\n")
	var out bytes.Buffer
	require.NoError(t, run(&out, options{projects: path, database: "otel", managers: "m", allRows: "otel", cluster: "prod"}))
	sql := out.String()
	for _, want := range []string{
		"CREATE ROLE IF NOT EXISTS `project_prod_team-a`;",
		"CREATE ROW POLICY OR REPLACE `project_prod_team-a` ON `otel`.`otel_metrics_gauge` FOR SELECT USING " +
			"ResourceAttributes['k8s.cluster.name'] = 'prod' AND ResourceAttributes['k8s.namespace.name'] = 'team-a' TO `project_prod_team-a`;",
		"CREATE ROW POLICY OR REPLACE `project_other.example.org_team-a` ON `otel`.`gpu_topology` FOR SELECT USING " +
			"cluster = 'other.example.org' AND namespace = 'team-a' TO `project_other.example.org_team-a`;",
		"CREATE ROW POLICY OR REPLACE all_rows ON `otel`.`gpu_hours_hourly` FOR SELECT USING 1 TO `m`, `otel`;",
		"DROP ROLE IF EXISTS `project_team-a`;",
	} {
		require.Contains(t, sql, want)
	}
	// Every policy and role statement re-applies: nothing is left that an
	// existing object would make a no-op or an error.
	require.NotContains(t, sql, "POLICY IF NOT EXISTS")
	for _, line := range strings.Split(sql, "\n") {
		if strings.HasPrefix(line, "CREATE ROLE") {
			require.True(t, strings.HasPrefix(line, "CREATE ROLE IF NOT EXISTS "), line)
		}
		if strings.HasPrefix(line, "CREATE ROW POLICY") {
			require.True(t, strings.HasPrefix(line, "CREATE ROW POLICY OR REPLACE "), line)
			if strings.Contains(line, "`project_") {
				require.Contains(t, line, " AND ", "a project policy filters on cluster and namespace: %s", line)
			}
		}
	}
	require.Equal(t, 1, strings.Count(sql, "DROP ROLE IF EXISTS `project_team-a`;"), "the legacy role of a namespace is dropped once")
}

func TestRejects(t *testing.T) {
	tests := []struct {
		name, body, cluster string
		err                 error
		msg                 string
	}{
		{"not a namespace", "projects:\n  - namespace: \"team-a'; DROP TABLE x; --\"\n    cluster: prod\n", "", topology.ErrInvalidName, "projects[0]"},
		{"upper case", "projects:\n  - namespace: Team-A\n    cluster: prod\n", "", topology.ErrInvalidName, "namespace"},
		{"empty namespace", "projects:\n  - namespace: \"\"\n    cluster: prod\n", "", topology.ErrInvalidName, "namespace"},
		{"no cluster", "projects:\n  - namespace: team-a\n", "", errNoCluster, "projects[0] (team-a)"},
		{"bad cluster in file", "projects:\n  - namespace: team-a\n    cluster: \"prod#GET#\"\n", "", topology.ErrInvalidName, "cluster"},
		{"bad -cluster", "projects:\n  - namespace: team-a\n", "Prod", topology.ErrInvalidName, "-cluster"},
		{"not yaml", "projects: [\n", "prod", nil, "projects.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(&out, options{projects: writeProjects(t, tt.body), database: "otel", managers: "m", allRows: "w", cluster: tt.cluster})
			require.Error(t, err)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
			}
			require.ErrorContains(t, err, tt.msg)
			require.Zero(t, out.Len(), "nothing written on error")
		})
	}
	ok := writeProjects(t, "projects:\n  - namespace: team-a\n    cluster: prod\n")
	for name, o := range map[string]options{
		"empty all-rows name": {projects: ok, database: "otel", managers: "m", allRows: "otel,"},
		"empty database":      {projects: ok, managers: "m", allRows: "otel"},
		"empty managers":      {projects: ok, database: "otel", allRows: "otel"},
	} {
		t.Run(name, func(t *testing.T) {
			require.ErrorIs(t, run(new(bytes.Buffer), o), errNoName)
		})
	}
	require.ErrorIs(t, run(new(bytes.Buffer), options{projects: filepath.Join(t.TempDir(), "absent")}), os.ErrNotExist)
}
