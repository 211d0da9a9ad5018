package promqlreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/promqlreceiver"

import (
	"context"
	"errors"
	"fmt"
	"text/template"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// clusterLabel is the label prom-keycloak-proxy authorizes by and ACM
// Observability puts on every series of a managed cluster.
const clusterLabel = "cluster"

// clusterMarker is what {{.Cluster}} renders to for the startup check, so
// that a refused selector reads as the template wrote it.
const clusterMarker = "{{.Cluster}}"

var (
	errPromQL        = errors.New("query is not valid PromQL")
	errClusterScope  = errors.New(`every selector of a per-cluster query needs the matcher cluster="{{.Cluster}}" (equality)`)
	errUnscoped      = errors.New(`query has no {{.Cluster}}: it would read every cluster the credentials reach; add cluster="{{.Cluster}}" to each selector, or set unscoped: true`)
	errUnscopedUsage = errors.New("unscoped is for queries without {{.Cluster}}")
)

var promqlParser = parser.NewParser(parser.Options{})

// checkClusterScope renders a per-cluster template for the marker and for
// each configured cluster and checks every vector selector of the result
// (plain, in functions, binary expressions, subqueries, range selectors):
// each must carry cluster="<that cluster>" and no other matcher on the
// cluster label. prom-keycloak-proxy authorizes a negated or regex matcher
// against the cluster it names and returns the others, so only equality to
// the generated cluster keeps a query within what was authorized.
func checkClusterScope(tmpl *template.Template, clusters []string) error {
	if err := checkRendered(tmpl, clusterMarker); err != nil {
		return err
	}
	// A template may branch on the cluster: the queries sent are checked too.
	for _, cl := range clusters {
		if err := checkRendered(tmpl, cl); err != nil {
			return fmt.Errorf("for cluster %q: %w", cl, err)
		}
	}
	return nil
}

func checkRendered(tmpl *template.Template, cluster string) error {
	text, err := render(tmpl, cluster)
	if err != nil {
		return fmt.Errorf("%w: %w", errQueryTemplate, err)
	}
	expr, err := promqlParser.ParseExpr(text)
	if err != nil {
		return fmt.Errorf("%w: %w", errPromQL, err)
	}
	var bad error
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok || bad != nil {
			return nil
		}
		if problem := clusterMatcherProblem(vs.LabelMatchers, cluster); problem != "" {
			bad = fmt.Errorf("selector %s: %s: %w", vs, problem, errClusterScope)
		}
		return nil
	})
	return bad
}

// clusterMatcherProblem says what is wrong with a selector's matchers on the
// cluster label, "" when it has exactly the equality to cluster.
func clusterMatcherProblem(ms []*labels.Matcher, cluster string) string {
	found := false
	for _, m := range ms {
		if m.Name != clusterLabel {
			continue
		}
		switch {
		case m.Type == labels.MatchNotEqual || m.Type == labels.MatchNotRegexp:
			return fmt.Sprintf("negated cluster matcher %s", m)
		case m.Type == labels.MatchRegexp:
			return fmt.Sprintf("regex cluster matcher %s", m)
		case m.Value != cluster:
			return fmt.Sprintf("cluster matcher %s is not bound to {{.Cluster}}", m)
		}
		found = true
	}
	if !found {
		return "no cluster matcher"
	}
	return ""
}

// Reasons a returned series is dropped, in receiver_promql_series_dropped.
const (
	reasonOtherCluster = "other_cluster"
	reasonNoCluster    = "no_cluster" // raw queries only
)

// scopeFiltered is what filterCluster left out of an answer.
type scopeFiltered struct {
	other, missing int
	example        string // an offending cluster value, for the log
}

// filterCluster keeps, of a per-cluster query's answer, the series of the
// query's cluster. The query was checked to select that cluster only, so a
// series labelled with another one came from a gate or upstream that did not
// apply it, and would be emitted under the wrong k8s.cluster.name. A raw
// query is a selector on cluster="<cluster>": each of its series carries the
// label, so one without it is dropped too. An evaluated query's aggregations
// and scalars legitimately lose the label; theirs are kept (every selector
// they were computed from was checked at start).
func filterCluster(q query, res *result) scopeFiltered {
	var f scopeFiltered
	if q.cluster == "" {
		return f
	}
	kept := res.streams[:0]
	for _, s := range res.streams {
		v, ok := s.Metric[clusterLabel]
		switch {
		case !ok && !q.raw:
			kept = append(kept, s)
		case !ok:
			f.missing++
		case v != model.LabelValue(q.cluster):
			f.other++
			if f.example == "" {
				f.example = truncate(string(v), 64)
			}
		default:
			kept = append(kept, s)
		}
	}
	clear(res.streams[len(kept):])
	res.streams = kept
	return f
}

// dropOutOfScope removes from a per-cluster answer the series of another
// cluster or of none, counting and logging them: a gate that leaks is a
// security problem to look into, not a failure of the query, so the rest of
// the answer is emitted and the cursor moves.
func (r *promqlReceiver) dropOutOfScope(ctx context.Context, q query, res *result) {
	f := filterCluster(q, res)
	withQuery := attribute.String("query", q.id)
	if f.other > 0 {
		r.telemetry.ReceiverPromqlSeriesDropped.Add(ctx, int64(f.other),
			metric.WithAttributes(withQuery, attribute.String("reason", reasonOtherCluster)))
	}
	if f.missing > 0 {
		r.telemetry.ReceiverPromqlSeriesDropped.Add(ctx, int64(f.missing),
			metric.WithAttributes(withQuery, attribute.String("reason", reasonNoCluster)))
	}
	if f.other+f.missing > 0 {
		r.set.Logger.Warn("PromQL answer holds series outside the query's cluster; dropped",
			zap.String("query", q.id), zap.String("cluster", q.cluster),
			zap.Int(reasonOtherCluster, f.other), zap.String("other_cluster_example", f.example),
			zap.Int(reasonNoCluster, f.missing))
	}
}
