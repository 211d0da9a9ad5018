package promqlreceiver

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGenerateQueries(t *testing.T) {
	cfg := &Config{
		Interval: time.Minute, MaxCatchUp: time.Hour,
		Clusters: []string{"nerc-ocp-prod", "nerc-ocp-test"},
		Queries: []QueryConfig{
			{Name: "dcgm", Query: ` {__name__=~"DCGM_FI_.*",cluster="{{.Cluster}}"} `, RawSamples: true},
			{Name: "hub", Query: `count(up)`, Unscoped: true, Interval: 5 * time.Minute},
			{Name: "quota", Query: `kube_resourcequota{cluster="{{ .Cluster }}",resource="requests.nvidia.com/gpu"}`},
		},
	}
	got, err := generateQueries(cfg)
	require.NoError(t, err)
	type row struct{ id, cluster, promql string }
	var rows []row
	for _, q := range got {
		rows = append(rows, row{q.id, q.cluster, q.promql})
	}
	assert.Equal(t, []row{
		{"dcgm/nerc-ocp-prod", "nerc-ocp-prod", `{__name__=~"DCGM_FI_.*",cluster="nerc-ocp-prod"}`},
		{"dcgm/nerc-ocp-test", "nerc-ocp-test", `{__name__=~"DCGM_FI_.*",cluster="nerc-ocp-test"}`},
		{"hub", "", `count(up)`},
		{"quota/nerc-ocp-prod", "nerc-ocp-prod", `kube_resourcequota{cluster="nerc-ocp-prod",resource="requests.nvidia.com/gpu"}`},
		{"quota/nerc-ocp-test", "nerc-ocp-test", `kube_resourcequota{cluster="nerc-ocp-test",resource="requests.nvidia.com/gpu"}`},
	}, rows)
	assert.True(t, got[0].raw)
	assert.False(t, got[2].raw)
	assert.Equal(t, 5*time.Minute, got[2].interval)
	assert.Equal(t, time.Minute, got[3].interval)
}

func TestUsesCluster(t *testing.T) {
	tests := []struct {
		query string
		want  bool
	}{
		{`up`, false},
		{`up{cluster="{{.Cluster}}"}`, true},
		{`{{if .Cluster}}up{{end}}`, false}, // the text does not depend on which cluster
		{`up{job="{{printf "%s-x" .Cluster}}"}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			tmpl, err := parseQuery(tt.query)
			require.NoError(t, err)
			got, err := usesCluster(tmpl)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
