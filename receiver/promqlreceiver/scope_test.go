package promqlreceiver

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
)

// TestQueriesMustSelectTheirClusterOnly: at start every query is parsed
// with Prometheus' parser and every selector of a per-cluster query must hold
// cluster="{{.Cluster}}", however deep it sits; prom-keycloak-proxy would
// authorize a negated or regex matcher against the cluster it names and
// return the others.
func TestQueriesMustSelectTheirClusterOnly(t *testing.T) {
	tests := []struct {
		name     string
		query    string
		unscoped bool
		wantErr  error
		// wantIn are parts of the message: the query, the selector, the problem.
		wantIn []string
	}{
		{name: "plain selector", query: `up{cluster="{{.Cluster}}"}`},
		{name: "raw selector by name regex", query: `{__name__=~"DCGM_FI_.*",cluster="{{.Cluster}}"}`},
		{name: "in a function", query: `rate(up{cluster="{{.Cluster}}"}[5m])`},
		{name: "aggregation", query: `sum by (cluster, modelName) (DCGM_FI_DEV_GPU_UTIL{cluster="{{.Cluster}}"})`},
		{name: "both sides of a binary expression", query: `up{cluster="{{.Cluster}}"} * on (instance) group_left node_uname_info{cluster="{{.Cluster}}"}`},
		{name: "subquery", query: `max_over_time(rate(up{cluster="{{.Cluster}}"}[5m])[1h:5m])`},
		{name: "offset and @", query: `up{cluster="{{.Cluster}}"} offset 5m + up{cluster="{{.Cluster}}"} @ 1700000000`},
		{name: "no selector at all", query: `vector(1) + 0 * scalar(count(up{cluster="{{.Cluster}}"}))`},
		{
			name: "negated, plain", query: `up{cluster!="{{.Cluster}}"}`, wantErr: errClusterScope,
			wantIn: []string{`queries[0] (q)`, `up{cluster!="{{.Cluster}}"}`, "negated cluster matcher"},
		},
		{
			name: "negated regex in a function", query: `rate(up{cluster!~"{{.Cluster}}"}[5m])`, wantErr: errClusterScope,
			wantIn: []string{`selector up{cluster!~"{{.Cluster}}"}`, "negated cluster matcher"},
		},
		{
			name: "regex, plain", query: `up{cluster=~"{{.Cluster}}"}`, wantErr: errClusterScope,
			wantIn: []string{`up{cluster=~"{{.Cluster}}"}`, "regex cluster matcher"},
		},
		{
			name: "regex alternation in an aggregation", query: `sum(up{cluster=~"{{.Cluster}}|nerc-ocp-test"})`, wantErr: errClusterScope,
			wantIn: []string{"regex cluster matcher"},
		},
		{
			name: "regex in a subquery", query: `max_over_time(up{cluster=~"{{.Cluster}}"}[1h:5m])`, wantErr: errClusterScope,
			wantIn: []string{"regex cluster matcher"},
		},
		{
			name: "missing on one side of a binary expression", query: `up{cluster="{{.Cluster}}"} / on (instance) node_uname_info`, wantErr: errClusterScope,
			wantIn: []string{"selector node_uname_info", "no cluster matcher"},
		},
		{
			name: "missing in a subquery", query: `max_over_time(up{job="x"}[1h:5m]) and up{cluster="{{.Cluster}}"}`, wantErr: errClusterScope,
			wantIn: []string{`up{job="x"}`, "no cluster matcher"},
		},
		{
			name: "missing in a function argument", query: `label_replace(up{job="{{.Cluster}}"}, "a", "b", "", "")`, wantErr: errClusterScope,
			wantIn: []string{"no cluster matcher"},
		},
		{
			name: "an equality plus a negation", query: `up{cluster="{{.Cluster}}",cluster!="nerc-ocp-test"}`, wantErr: errClusterScope,
			wantIn: []string{"negated cluster matcher"},
		},
		{
			name: "equality to another value", query: `up{cluster="nerc-ocp-{{.Cluster}}"}`, wantErr: errClusterScope,
			wantIn: []string{"is not bound to {{.Cluster}}"},
		},
		{
			name: "a literal cluster, the template used elsewhere", query: `up{cluster="nerc-ocp-prod",job="{{.Cluster}}"}`, wantErr: errClusterScope,
			wantIn: []string{"is not bound to {{.Cluster}}"},
		},
		{
			name:  "a branch taken for one configured cluster only",
			query: `{{if eq .Cluster "nerc-ocp-test"}}up{{else}}up{cluster="{{.Cluster}}"}{{end}}`, wantErr: errClusterScope,
			wantIn: []string{`for cluster "nerc-ocp-test"`, "selector up", "no cluster matcher"},
		},
		{
			name: "not PromQL", query: `up{cluster="{{.Cluster}}"`, wantErr: errPromQL,
			wantIn: []string{`queries[0] (q)`},
		},
		{
			name: "no {{.Cluster}}", query: `up`, wantErr: errUnscoped,
			wantIn: []string{`queries[0] (q): "up"`, "unscoped: true"},
		},
		{name: "a literal cluster without {{.Cluster}}", query: `up{cluster="nerc-ocp-prod"}`, wantErr: errUnscoped},
		{name: "unscoped, allowed", query: `count(up)`, unscoped: true},
		{name: "unscoped with {{.Cluster}}", query: `up{cluster="{{.Cluster}}"}`, unscoped: true, wantErr: errUnscopedUsage},
		{name: "unscoped, not PromQL", query: `sum(up`, unscoped: true, wantErr: errPromQL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig("http://127.0.0.1:9090", QueryConfig{Name: "q", Query: tt.query, Unscoped: tt.unscoped})
			cfg.Clusters = []string{"nerc-ocp-prod", "nerc-ocp-test"}
			err := cfg.Validate()
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			for _, part := range tt.wantIn {
				assert.Contains(t, err.Error(), part)
			}
			_, err = newReceiver(newHarnessSettings(t), cfg, consumertest.NewNop())
			require.ErrorIs(t, err, tt.wantErr, "refused at creation too")
		})
	}
}

// seriesDoc is a matrix answer with one series per cluster value ("" for a
// series without the label), each with one sample at ts.
func seriesDoc(ts time.Time, clusters ...string) string {
	var result []string
	for i, cl := range clusters {
		labels := fmt.Sprintf(`"__name__":"DCGM_FI_DEV_GPU_UTIL","gpu":"%d"`, i)
		if cl != "" {
			labels += fmt.Sprintf(`,"cluster":%q`, cl)
		}
		result = append(result, fmt.Sprintf(`{"metric":{%s},"values":[[%.3f,"%d"]]}`, labels, float64(ts.UnixMilli())/1000, i))
	}
	return `{"status":"success","data":{"resultType":"matrix","result":[` + strings.Join(result, ",") + `]}}`
}

// TestSeriesOutsideTheClusterAreDropped: a gate that returns other clusters'
// series (prom-keycloak-proxy does for a negated matcher) cannot get them
// emitted under the query's cluster: they are dropped and counted, the rest
// of the answer flows and the cursor moves.
func TestSeriesOutsideTheClusterAreDropped(t *testing.T) {
	api := newFakeAPI(t, func(req apiRequest) (int, string) {
		return 200, seriesDoc(req.time.Add(-time.Second), "nerc-ocp-prod", "nerc-ocp-test", "", "nerc-ocp-test")
	})
	cfg := testConfig(api.URL,
		QueryConfig{Name: "dcgm", Query: `DCGM_FI_DEV_GPU_UTIL{cluster="{{.Cluster}}"}`, RawSamples: true},
		QueryConfig{Name: "hub", Query: `DCGM_FI_DEV_GPU_UTIL`, RawSamples: true, Unscoped: true})
	cfg.Clusters = []string{"nerc-ocp-prod"}
	sink := new(consumertest.MetricsSink)
	h := newHarness(t, cfg, sink, componenttest.NewNopHost())
	defer h.shutdown()

	h.runAll(t0)
	h.runAll(t0.Add(time.Minute))
	scoped, hub := attribute.String("query", "dcgm/nerc-ocp-prod"), attribute.String("query", "hub")
	assert.Equal(t, int64(2), h.count("points", scoped), "the cluster's series, once per run")
	assert.Equal(t, int64(4), h.count("series_dropped", scoped, attribute.String("reason", "other_cluster")))
	assert.Equal(t, int64(2), h.count("series_dropped", scoped, attribute.String("reason", "no_cluster")))
	assert.Equal(t, int64(0), h.count("query_failures", scoped), "not a failure of the query")
	for _, md := range sink.AllMetrics() {
		if cl, ok := md.ResourceMetrics().At(0).Resource().Attributes().Get("k8s.cluster.name"); ok {
			for _, p := range pointsOf([]pmetric.Metrics{md}) {
				assert.Equal(t, cl.Str(), p.attrs["cluster"], "emitted under its own cluster only")
			}
		}
	}
	assert.Equal(t, int64(8), h.count("points", hub), "an unscoped query's series are not filtered")
	assert.Equal(t, int64(0), h.count("series_dropped", hub))
	assert.Equal(t, `DCGM_FI_DEV_GPU_UTIL{cluster="nerc-ocp-prod"}[61s]`, api.requests[2].query,
		"the second run reaches back to the cursor the first one moved")

	warnings := h.logs.FilterMessage("PromQL answer holds series outside the query's cluster; dropped").All()
	require.Len(t, warnings, 2, "each run that drops says so")
	assert.Equal(t, "dcgm/nerc-ocp-prod", warnings[0].ContextMap()["query"])
	assert.Equal(t, "nerc-ocp-test", warnings[0].ContextMap()["other_cluster_example"])
}

// TestFilterClusterKeepsOnlyTheQuerysCluster: emitted series of a
// per-cluster query all carry its cluster.
func TestFilterClusterKeepsOnlyTheQuerysCluster(t *testing.T) {
	res, err := decodeResponse(strings.NewReader(seriesDoc(t0, "nerc-ocp-test", "nerc-ocp-prod", "", "nerc-ocp-prod")))
	require.NoError(t, err)
	f := filterCluster(query{cluster: "nerc-ocp-prod", raw: true}, res)
	assert.Equal(t, scopeFiltered{other: 1, missing: 1, example: "nerc-ocp-test"}, f)
	require.Len(t, res.streams, 2)
	for _, s := range res.streams {
		assert.Equal(t, "nerc-ocp-prod", string(s.Metric["cluster"]))
	}
}

// TestFilterClusterKeepsAggregationsOfEvaluatedQueries: an evaluated
// query's series without the cluster label (sum, count, scalar) are its
// cluster's; those of another cluster still go.
func TestFilterClusterKeepsAggregationsOfEvaluatedQueries(t *testing.T) {
	res, err := decodeResponse(strings.NewReader(seriesDoc(t0, "", "nerc-ocp-test", "nerc-ocp-prod")))
	require.NoError(t, err)
	f := filterCluster(query{cluster: "nerc-ocp-prod"}, res)
	assert.Equal(t, scopeFiltered{other: 1, example: "nerc-ocp-test"}, f)
	require.Len(t, res.streams, 2)
	assert.NotContains(t, res.streams[0].Metric, model.LabelName("cluster"))
	assert.Equal(t, "nerc-ocp-prod", string(res.streams[1].Metric["cluster"]))

	scalar, err := decodeResponse(strings.NewReader(scalarDoc))
	require.NoError(t, err)
	assert.Equal(t, scopeFiltered{}, filterCluster(query{cluster: "nerc-ocp-prod"}, scalar))
	assert.Len(t, scalar.streams, 1, "a scalar is kept")
}
