package promqlreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/promqlreceiver"

import (
	"strings"
	"text/template"

	"github.com/prometheus/prometheus/promql/parser"
)

// query is one scheduled query after per-cluster generation.
type query struct {
	id      string // {name} or {name}/{cluster}: telemetry, logs and storage key
	name    string
	cluster string // empty for a query without {{.Cluster}}
	promql  string
	raw     bool
	schedule
}

type templateData struct{ Cluster string }

// parseQuery parses a query template; missing keys are errors so a misspelled
// field ({{.cluster}}) fails validation instead of querying "<no value>".
func parseQuery(text string) (*template.Template, error) {
	return template.New("query").Option("missingkey=error").Parse(text)
}

// usesCluster reports whether the template's text depends on the cluster,
// by rendering it for two different clusters.
func usesCluster(tmpl *template.Template) (bool, error) {
	a, err := render(tmpl, "a")
	if err != nil {
		return false, err
	}
	b, err := render(tmpl, "b")
	if err != nil {
		return false, err
	}
	return a != b, nil
}

func render(tmpl *template.Template, cluster string) (string, error) {
	var sb strings.Builder
	if err := tmpl.Execute(&sb, templateData{Cluster: cluster}); err != nil {
		return "", err
	}
	return strings.TrimSpace(sb.String()), nil
}

// generateQueries expands the configured queries: one per cluster for those
// that use {{.Cluster}}, else one. The configuration is validated first.
func generateQueries(cfg *Config) ([]query, error) {
	var out []query
	for _, qc := range cfg.Queries {
		tmpl, err := parseQuery(qc.Query)
		if err != nil {
			return nil, err
		}
		perCluster, err := usesCluster(tmpl)
		if err != nil {
			return nil, err
		}
		base := query{name: qc.Name, raw: qc.RawSamples, schedule: cfg.effective(qc)}
		if !perCluster {
			q := base
			q.id = qc.Name
			if q.promql, err = render(tmpl, ""); err != nil {
				return nil, err
			}
			out = append(out, q)
			continue
		}
		for _, cluster := range cfg.Clusters {
			q := base
			q.id, q.cluster = qc.Name+"/"+cluster, cluster
			if q.promql, err = render(tmpl, cluster); err != nil {
				return nil, err
			}
			out = append(out, q)
		}
	}
	return out, nil
}

// isVectorSelector says whether a raw_samples query takes the [window]
// suffix the receiver appends: with it, Prometheus' own parser must read a
// range selector without offset or @ (a trailing comment would swallow it).
func isVectorSelector(query string) bool {
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(query + "[60s]")
	if err != nil {
		return false
	}
	ms, ok := expr.(*parser.MatrixSelector)
	if !ok {
		return false
	}
	vs, ok := ms.VectorSelector.(*parser.VectorSelector)
	return ok && vs.OriginalOffset == 0 && vs.Timestamp == nil && vs.StartOrEnd == 0
}
