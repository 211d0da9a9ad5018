// Command gen-row-policies writes the ClickHouse roles, grants and row
// policies that restrict each research project's Grafana data source to its
// own namespace on its own cluster. Grafana variables are no security
// boundary (a viewer can edit a panel's SQL); a ClickHouse user whose role only
// sees its project's rows is. Input: the projects file the gpumodel processor
// reads (metadata.file: projects[].namespace and, optionally, .cluster).
//
//	go run ./cmd/gen-row-policies -projects projects.yaml -cluster nerc-ocp-prod > policies.sql
//
// The output can be applied again after any change: roles are created if
// missing, and every policy is created or replaced, so a changed condition or
// all-rows list takes effect.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

var (
	// errNoCluster: a project the file does not place on a cluster, and no
	// -cluster default. A namespace-only policy would show a same-named
	// namespace of every other cluster, so none is written.
	errNoCluster = errors.New("no cluster: set the project's cluster in the file or pass -cluster")
	errNoName    = errors.New("must not be empty")
)

// A table the dashboards read (directly, or through the gpu_samples view,
// which runs with the reader's rights) and the expressions naming a row's
// cluster and namespace in it.
type table struct{ name, cluster, namespace string }

const (
	resourceCluster   = "ResourceAttributes['k8s.cluster.name']"
	resourceNamespace = "ResourceAttributes['k8s.namespace.name']"
)

var tables = []table{
	{"otel_metrics_gauge", resourceCluster, resourceNamespace},
	{"otel_metrics_sum", resourceCluster, resourceNamespace},
	{"otel_metrics_histogram", resourceCluster, resourceNamespace},
	{"otel_metrics_exponential_histogram", resourceCluster, resourceNamespace},
	{"otel_metrics_summary", resourceCluster, resourceNamespace},
	{"otel_traces", resourceCluster, resourceNamespace},
	{"gpu_hours_hourly", "cluster", "namespace"},
	{"gpu_topology", "cluster", "namespace"},
}

// views project roles may read besides the tables above.
var views = []string{"gpu_samples"}

type projectsFile struct {
	Projects []struct {
		Namespace string `yaml:"namespace"`
		Cluster   string `yaml:"cluster"`
	} `yaml:"projects"`
}

type options struct {
	projects string // path of the projects file
	database string // database of the clickhouse exporter's tables
	managers string // role that sees every row
	allRows  string // comma-separated users or roles that see every row
	cluster  string // cluster of a project the file places on none
}

// Defaults match configs/gateway.yaml: the clickhouse exporter writes to
// database otel as user otel (CLICKHOUSE_DATABASE, CLICKHOUSE_USERNAME).
func main() {
	var o options
	flag.StringVar(&o.projects, "projects", "", "projects file (the gpumodel processor's metadata.file format)")
	flag.StringVar(&o.database, "database", "otel", "database of the clickhouse exporter's tables")
	flag.StringVar(&o.managers, "managers-role", "grafana_managers", "role that sees every project (the cluster manager data source)")
	flag.StringVar(&o.allRows, "all-rows", "otel", "comma-separated users or roles that must keep seeing every row: "+
		"the exporter's user and the definer of the materialized views, which select the exporter's inserts")
	flag.StringVar(&o.cluster, "cluster", "", "cluster of the projects the file places on none (a project entry's cluster wins)")
	flag.Parse()
	if err := run(os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "gen-row-policies:", err)
		os.Exit(1)
	}
}

// project is one role: a namespace on one cluster.
type project struct{ cluster, namespace string }

func (p project) role() string { return "project_" + p.cluster + "_" + p.namespace }

func run(w io.Writer, o options) error {
	projects, err := readProjects(o.projects, o.cluster)
	if err != nil {
		return err
	}
	for _, n := range []struct{ flag, value string }{{"-database", o.database}, {"-managers-role", o.managers}} {
		if strings.TrimSpace(n.value) == "" {
			return fmt.Errorf("%s: %w", n.flag, errNoName)
		}
	}
	var allRows []string
	for _, u := range strings.Split(o.allRows, ",") {
		if u = strings.TrimSpace(u); u == "" {
			return fmt.Errorf("-all-rows %q: a name %w", o.allRows, errNoName)
		}
		allRows = append(allRows, u)
	}
	_, err = io.WriteString(w, render(o.database, o.managers, allRows, projects))
	return err
}

func readProjects(path, defaultCluster string) ([]project, error) {
	if defaultCluster != "" {
		if err := topology.ValidateName(topology.KindCluster, defaultCluster); err != nil {
			return nil, fmt.Errorf("-cluster: %w", err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pf projectsFile
	if err := yaml.Unmarshal(b, &pf); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	seen := map[project]bool{}
	var out []project
	for i, e := range pf.Projects {
		if err := topology.ValidateName(topology.KindNamespace, e.Namespace); err != nil {
			return nil, fmt.Errorf("%s: projects[%d]: %w", path, i, err)
		}
		p := project{cluster: e.Cluster, namespace: e.Namespace}
		if p.cluster == "" {
			p.cluster = defaultCluster
		}
		if p.cluster == "" {
			return nil, fmt.Errorf("%s: projects[%d] (%s): %w", path, i, e.Namespace, errNoCluster)
		}
		if err := topology.ValidateName(topology.KindCluster, p.cluster); err != nil {
			return nil, fmt.Errorf("%s: projects[%d] (%s): %w", path, i, e.Namespace, err)
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].cluster != out[j].cluster {
			return out[i].cluster < out[j].cluster
		}
		return out[i].namespace < out[j].namespace
	})
	return out, nil
}

func ident(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// literal quotes a string for ClickHouse. Names are validated Kubernetes
// names, which hold no quote or backslash; escaping anyway keeps the SQL right
// should that ever change.
func literal(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func render(db, managers string, allRows []string, projects []project) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("-- Generated by cmd/gen-row-policies: one role per research project, a namespace on one cluster,\n")
	p("-- that can read only the rows of that namespace on that cluster (rows of a same-named namespace on\n")
	p("-- another cluster, and cluster-level rows with no namespace, are not its project's), and a managers'\n")
	p("-- role that reads every row. Apply as a ClickHouse user with access management, after 001 and 002,\n")
	p("-- once the users named in the all_rows policies exist; apply it again after any change: roles are\n")
	p("-- created if missing and every policy is created or replaced. Grant each project role to the\n")
	p("-- ClickHouse user of that project's Grafana data source (users are created separately: they carry\n")
	p("-- credentials), e.g.\n")
	p("--   CREATE USER grafana_team_a IDENTIFIED WITH sha256_hash BY '<hex>' SETTINGS readonly = 1;\n")
	p("--   GRANT `project_nerc-ocp-prod_team-a` TO grafana_team_a;\n")
	p("-- Policies are permissive and FOR SELECT only: inserts are not filtered. A user that no policy of a\n")
	p("-- table names sees none of its rows when the server's\n")
	p("-- access_control_improvements.users_without_row_policies_can_read_rows is false, every row when it\n")
	p("-- is true; so project roles always get their own policy, and the managers, the exporter's user and\n")
	p("-- the materialized views' definer (they select the exporter's inserts) an all-rows one.\n")
	p("-- A role or grant this file no longer names is not removed by applying it: drop it by hand.\n\n")
	quoted := make([]string, 0, len(allRows)+1)
	for _, r := range append([]string{managers}, allRows...) {
		quoted = append(quoted, ident(r))
	}
	p("CREATE ROLE IF NOT EXISTS %s;\n", ident(managers))
	for _, t := range tables {
		p("GRANT SELECT ON %s.%s TO %s;\n", ident(db), ident(t.name), ident(managers))
		p("CREATE ROW POLICY OR REPLACE all_rows ON %s.%s FOR SELECT USING 1 TO %s;\n",
			ident(db), ident(t.name), strings.Join(quoted, ", "))
	}
	for _, v := range views {
		p("GRANT SELECT ON %s.%s TO %s;\n", ident(db), ident(v), ident(managers))
	}
	for _, pr := range projects {
		role := ident(pr.role())
		p("\n-- project %s on cluster %s\n", pr.namespace, pr.cluster)
		p("CREATE ROLE IF NOT EXISTS %s;\n", role)
		for _, t := range tables {
			p("GRANT SELECT ON %s.%s TO %s;\n", ident(db), ident(t.name), role)
			p("CREATE ROW POLICY OR REPLACE %s ON %s.%s FOR SELECT USING %s = %s AND %s = %s TO %s;\n",
				role, ident(db), ident(t.name), t.cluster, literal(pr.cluster), t.namespace, literal(pr.namespace), role)
		}
		for _, v := range views {
			p("GRANT SELECT ON %s.%s TO %s;\n", ident(db), ident(v), role)
		}
	}
	// Earlier versions of this command wrote roles project_{namespace} whose
	// policies ignored the cluster. Dropping them closes that view; a data
	// source user that held one sees nothing until granted its new role.
	legacy := map[string]bool{}
	for _, pr := range projects {
		if legacy[pr.namespace] {
			continue
		}
		if len(legacy) == 0 {
			p("\n-- roles of earlier versions, named by namespace only, whose policies ignored the cluster\n")
		}
		legacy[pr.namespace] = true
		name := ident("project_" + pr.namespace)
		for _, t := range tables {
			p("DROP ROW POLICY IF EXISTS %s ON %s.%s;\n", name, ident(db), ident(t.name))
		}
		p("DROP ROLE IF EXISTS %s;\n", name)
	}
	return b.String()
}
