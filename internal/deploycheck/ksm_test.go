package deploycheck

import (
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// TestAgentKeepsKubeStateMetricsSeries: the agent's kube-state-metrics job
// keeps every series its gpumodel processor learns from (with
// metadata.kubernetes.pods: false, the only source of the projects' GPU
// requests and the exporter pods' nodes) and drops the rest, run through
// Prometheus' own relabeling.
func TestAgentKeepsKubeStateMetricsSeries(t *testing.T) {
	cfg := parseMap(t, "configs/agent.yaml", read(t, "configs/agent.yaml"))
	var rules any
	for _, job := range list(get(cfg, "receivers", "prometheus/gpu", "config", "scrape_configs")) {
		if get(job, "job_name") == "kube-state-metrics" {
			rules = get(job, "metric_relabel_configs")
		}
	}
	require.NotNil(t, rules, "the kube-state-metrics job has metric_relabel_configs")
	text, err := yaml.Marshal(rules)
	require.NoError(t, err)
	var cfgs []*relabel.Config
	require.NoError(t, yaml.Unmarshal(text, &cfgs))
	for _, c := range cfgs {
		require.NoError(t, c.Validate(model.UTF8Validation))
	}

	tests := []struct {
		name   string
		labels []string
		keep   bool
	}{
		{"project annotations", []string{"__name__", "kube_namespace_annotations", "namespace", "team-a", "annotation_cf_project_id", "1342"}, true},
		{"namespace labels", []string{"__name__", "kube_namespace_labels", "namespace", "team-a"}, true},
		{"GPU quota", []string{"__name__", "kube_resourcequota", "namespace", "team-a", "resource", "requests.nvidia.com/gpu", "type", "hard"}, true},
		{"GPU request", []string{"__name__", "kube_pod_container_resource_requests", "namespace", "team-a", "pod", "p", "resource", "nvidia_com_gpu"}, true},
		{"MIG request", []string{"__name__", "kube_pod_container_resource_requests", "namespace", "team-a", "pod", "p", "resource", "nvidia_com_mig_1g_5gb"}, true},
		{"CPU request", []string{"__name__", "kube_pod_container_resource_requests", "namespace", "team-a", "pod", "p", "resource", "cpu"}, false},
		{"pod node", []string{"__name__", "kube_pod_info", "namespace", "nvidia-gpu-operator", "pod", "nvidia-dcgm-exporter-sn5rp", "node", "wrk-7"}, true},
		{"finished pod", []string{"__name__", "kube_pod_status_phase", "namespace", "team-a", "pod", "p", "phase", "Succeeded"}, true},
		{"failed pod", []string{"__name__", "kube_pod_status_phase", "namespace", "team-a", "pod", "p", "phase", "Failed"}, true},
		{"running phase", []string{"__name__", "kube_pod_status_phase", "namespace", "team-a", "pod", "p", "phase", "Running"}, false},
		{"another series", []string{"__name__", "kube_node_info", "node", "wrk-7"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lb := labels.NewBuilder(labels.FromStrings(tt.labels...))
			assert.Equal(t, tt.keep, relabel.ProcessBuilder(lb, cfgs...))
		})
	}
}
