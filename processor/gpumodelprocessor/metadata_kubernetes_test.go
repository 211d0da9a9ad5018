package gpumodelprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func gpuPod(ns, name, node string, phase corev1.PodPhase, requests corev1.ResourceList, limits corev1.ResourceList) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{
			Name: "main", Resources: corev1.ResourceRequirements{Requests: requests, Limits: limits},
		}}},
		Status: corev1.PodStatus{Phase: phase},
	}
}

func TestKubernetesSource(t *testing.T) {
	client := fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Annotations: map[string]string{
			"cf_project_id": "1342", "openshift.io/requester": "alice", "openshift.io/display-name": "LLM fine-tuning",
		}, Labels: map[string]string{"nerc.mghpcc.org/project": "true"}}},
		&corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "gpu"}, Spec: corev1.ResourceQuotaSpec{
			Hard: corev1.ResourceList{"requests.nvidia.com/gpu": resource.MustParse("4")},
		}},
		&corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "tighter"}, Spec: corev1.ResourceQuotaSpec{
			Hard: corev1.ResourceList{"requests.nvidia.com/gpu": resource.MustParse("3")},
		}},
		gpuPod("team-a", "train-0", "wrk-1", corev1.PodRunning, corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("2"), corev1.ResourceCPU: resource.MustParse("8")}, nil),
		gpuPod("team-a", "nb-0", "wrk-2", corev1.PodRunning, nil, corev1.ResourceList{"nvidia.com/mig-1g.5gb": resource.MustParse("1")}),
		gpuPod("team-a", "done-0", "wrk-2", corev1.PodSucceeded, corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}, nil),
		gpuPod("nvidia-gpu-operator", "nvidia-dcgm-exporter-sn5rp", "wrk-7", corev1.PodRunning, nil, nil),
	)
	s := newKubernetesSource(authServiceAccount, "nerc-ocp-prod", true, zap.NewNop())
	s.client = client
	require.NoError(t, s.start(context.Background()))
	defer s.shutdown()

	p, ok := s.project(projectKey{cluster: "nerc-ocp-prod", namespace: "team-a"})
	require.True(t, ok)
	assert.Equal(t, "1342", p.ID)
	assert.Equal(t, "alice", p.PI, "openshift.io/requester when cf_pi is absent")
	assert.Equal(t, "LLM fine-tuning", p.Name)
	assert.Equal(t, some(3), p.Quota, "the tightest quota binds")
	assert.InDelta(t, 2+1.0/7, p.Requests.value, 1e-12, "finished pods hold no GPU; a MIG limit counts as its request")

	_, ok = s.project(projectKey{cluster: "nerc-ocp-test", namespace: "team-a"})
	assert.False(t, ok, "the API only speaks for its own cluster")

	node, ok := s.podNode("nerc-ocp-prod", "nvidia-dcgm-exporter-sn5rp")
	require.True(t, ok)
	assert.Equal(t, "wrk-7", node)

	// A pod moving shows through the informer.
	gen := s.generation()
	_, err := client.CoreV1().Pods("nvidia-gpu-operator").Create(context.Background(),
		gpuPod("nvidia-gpu-operator", "nvidia-dcgm-exporter-new01", "wrk-8", corev1.PodRunning, nil, nil), metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		n, ok := s.podNode("nerc-ocp-prod", "nvidia-dcgm-exporter-new01")
		return ok && n == "wrk-8"
	}, 10*time.Second, 10*time.Millisecond)
	// The informer updates its store before it notifies the handler that
	// bumps the generation, so the bump may come a moment after the pod shows.
	require.Eventually(t, func() bool { return s.generation() > gen }, 10*time.Second, 10*time.Millisecond,
		"the generation moves when a pod changes")
}
