package gpumodelprocessor

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processortest"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
	"github.com/nerc-project/ai-telemetry-collector/processor/gpumodelprocessor/internal/metadata"
)

const (
	testCluster  = "nerc-ocp-prod"
	exporterPod  = "nvidia-dcgm-exporter-sn5rp"
	exporterNode = "wrk-7"
)

// ksmExport is what kube-state-metrics exports of pods:
// kube_pod_container_resource_requests for every container and resource,
// finished pods included, with a limit-only extended resource as its request
// (the API server defaults requests to limits); kube_pod_info with the node;
// kube_pod_status_phase, 1 on the pod's phase and 0 on the others.
func ksmExport(t *testing.T, pods []*corev1.Pod) pmetric.Metrics {
	t.Helper()
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	// What the agent's resource/cluster processor puts on every scrape.
	rm.Resource().Attributes().PutStr(topology.AttrK8sClusterName, testCluster)
	sm := rm.ScopeMetrics().AppendEmpty()
	newGauge := func(name string) pmetric.NumberDataPointSlice {
		m := sm.Metrics().AppendEmpty()
		m.SetName(name)
		return m.SetEmptyGauge().DataPoints()
	}
	requests, info, phases := newGauge(ksmPodRequests), newGauge(ksmPodInfo), newGauge(ksmPodPhase)
	point := func(dps pmetric.NumberDataPointSlice, value float64, labels map[string]any) {
		dp := dps.AppendEmpty()
		dp.SetDoubleValue(value)
		require.NoError(t, dp.Attributes().FromRaw(labels))
	}
	sanitize := strings.NewReplacer(".", "_", "/", "_", "-", "_")
	for _, pod := range pods {
		for _, c := range pod.Spec.Containers {
			res := corev1.ResourceList{}
			for name, q := range c.Resources.Limits {
				res[name] = q
			}
			for name, q := range c.Resources.Requests {
				res[name] = q
			}
			for name, q := range res {
				point(requests, q.AsApproximateFloat64(), map[string]any{
					"namespace": pod.Namespace, "pod": pod.Name, "container": c.Name, "node": pod.Spec.NodeName,
					"resource": sanitize.Replace(string(name)), "unit": "integer",
				})
			}
		}
		point(info, 1, map[string]any{"namespace": pod.Namespace, "pod": pod.Name, "node": pod.Spec.NodeName})
		for _, phase := range []corev1.PodPhase{corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown} {
			v := 0.0
			if pod.Status.Phase == phase {
				v = 1
			}
			point(phases, v, map[string]any{"namespace": pod.Namespace, "pod": pod.Name, "phase": string(phase)})
		}
	}
	return md
}

// dcgmPoint is a GPU held by team-a's pod, scraped from an exporter without
// NODE_NAME: Hostname is the exporter pod's name, to be resolved to its node.
func dcgmPoint(t testing.TB) pmetric.Metrics {
	t.Helper()
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr(topology.AttrK8sClusterName, testCluster)
	gauge(t, rm.ScopeMetrics().AppendEmpty(), "DCGM_FI_DEV_POWER_USAGE", 201.5, map[string]any{
		"gpu": "0", "UUID": "GPU-603a8873-0edd-c157-ce48-2078e8b1a935", "device": "nvidia0",
		"modelName": "NVIDIA A100-SXM4-40GB", "Hostname": exporterPod,
		"namespace": "team-a", "pod": "train-0", "container": "main",
	})
	return md
}

func containerPod(ns, name, node string, phase corev1.PodPhase, containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.PodSpec{NodeName: node, Containers: containers},
		Status:     corev1.PodStatus{Phase: phase},
	}
}

func gpus(n string) corev1.ResourceList {
	return corev1.ResourceList{"nvidia.com/gpu": resource.MustParse(n)}
}

// TestPodsOff: with metadata.kubernetes.pods false the Kubernetes source never
// lists or watches a pod (the fake API refuses, as the trimmed ClusterRole
// would), and the processor still finds the same GPU requests and exporter
// pod nodes, now from kube-state-metrics, while project annotations and the
// quota still come from the Kubernetes source.
func TestPodsOff(t *testing.T) {
	exporter := gpuPod("nvidia-gpu-operator", exporterPod, exporterNode, corev1.PodRunning, nil, nil)
	podSets := []struct {
		name     string
		pods     []*corev1.Pod
		requests float64
	}{
		{"GPUs, a limit-only MIG slice, finished pods", []*corev1.Pod{
			gpuPod("team-a", "train-0", "wrk-1", corev1.PodRunning, corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("2"), corev1.ResourceCPU: resource.MustParse("8")}, nil),
			gpuPod("team-a", "nb-0", "wrk-2", corev1.PodRunning, nil, corev1.ResourceList{"nvidia.com/mig-1g.5gb": resource.MustParse("1")}),
			gpuPod("team-a", "done-0", "wrk-2", corev1.PodSucceeded, gpus("1"), nil),
			gpuPod("team-a", "crashed-0", "wrk-3", corev1.PodFailed, gpus("1"), nil),
			gpuPod("team-b", "other-0", "wrk-3", corev1.PodRunning, gpus("4"), nil),
		}, 2 + 1.0/7},
		{"a pending pod holds its request", []*corev1.Pod{
			gpuPod("team-a", "train-0", "wrk-1", corev1.PodRunning, gpus("2"), nil),
			gpuPod("team-a", "queued-0", "", corev1.PodPending, gpus("1"), nil),
		}, 3},
		{"several containers, an A30 slice, a CPU-only container", []*corev1.Pod{
			containerPod("team-a", "train-0", "wrk-1", corev1.PodRunning,
				corev1.Container{Name: "main", Resources: corev1.ResourceRequirements{Requests: gpus("1")}},
				corev1.Container{Name: "side", Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/mig-2g.12gb": resource.MustParse("1")}}},
				corev1.Container{Name: "proxy", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}),
		}, 1.5},
		{"every GPU pod finished: 0, not unknown", []*corev1.Pod{
			gpuPod("team-a", "done-0", "wrk-2", corev1.PodSucceeded, gpus("1"), nil),
		}, 0},
	}
	modes := []struct {
		name      string
		pods, ksm bool
		// Whether requests and the exporter's node are known at all.
		podFacts bool
	}{
		{"pods on", true, false, true},
		{"pods on, kube-state-metrics on", true, true, true},
		{"pods off, kube-state-metrics on", false, true, true},
		// Without kube-state-metrics nothing else knows pods: shows the facts
		// above came from kube-state-metrics, not from the Kubernetes source.
		{"pods off, no kube-state-metrics", false, false, false},
	}
	for _, ps := range podSets {
		for _, mode := range modes {
			t.Run(ps.name+"/"+mode.name, func(t *testing.T) {
				pods := append([]*corev1.Pod{exporter}, ps.pods...)
				objects := []runtime.Object{
					&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Annotations: map[string]string{
						"cf_project_id": "1342", "cf_pi": "alice@example.edu",
					}}},
					&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "nvidia-gpu-operator"}},
					&corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "gpu"}, Spec: corev1.ResourceQuotaSpec{
						Hard: corev1.ResourceList{"requests.nvidia.com/gpu": resource.MustParse("4")},
					}},
				}
				for _, p := range pods {
					objects = append(objects, p)
				}
				client := fake.NewClientset(objects...)
				var podCalls atomic.Int64
				// A refused pods call ends the start at once (an informer
				// whose list is refused never syncs).
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if !mode.pods {
					// What the API server answers without a grant on pods.
					forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("no grant on pods"))
					client.PrependReactor("*", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
						podCalls.Add(1)
						cancel()
						return true, nil, forbidden
					})
					client.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
						podCalls.Add(1)
						cancel()
						return true, nil, forbidden
					})
				}

				cfg := createDefaultConfig().(*Config)
				cfg.Hub = "moc"
				cfg.Cluster.Name = testCluster
				cfg.Metadata.Kubernetes.Enabled = true
				cfg.Metadata.Kubernetes.Pods = mode.pods
				cfg.Metadata.KubeStateMetrics.Enabled = mode.ksm
				require.NoError(t, cfg.Validate())
				p, err := newGPUModelProcessor(processortest.NewNopSettings(metadata.Type), cfg)
				require.NoError(t, err)
				p.k8s.client = client
				require.NoError(t, p.start(ctx, componenttest.NewNopHost()))
				defer func() { require.NoError(t, p.shutdown(context.Background())) }()
				assert.Zero(t, podCalls.Load(), "pods are never listed or watched with pods: false")

				// The agent scrapes kube-state-metrics and DCGM in separate jobs.
				_, err = p.processMetrics(context.Background(), ksmExport(t, pods))
				require.NoError(t, err)
				out, err := p.processMetrics(context.Background(), dcgmPoint(t))
				require.NoError(t, err)
				points := flatten(out)
				require.Len(t, points, 1)
				res := points[0].resource

				// The Kubernetes source's share, in every mode.
				assert.Equal(t, "1342", res[topology.AttrProjectID])
				assert.Equal(t, "alice@example.edu", res[topology.AttrProjectPI])
				assert.Equal(t, 4.0, res[topology.AttrProjectGPUQuota])
				// The pods' share: the Kubernetes source's with pods on,
				// kube-state-metrics' with pods off.
				if !mode.podFacts {
					assert.NotContains(t, res, topology.AttrProjectGPURequests)
					assert.Equal(t, exporterPod, res[topology.AttrK8sNodeName])
					assert.Equal(t, true, res[topology.AttrNodeUnresolved])
					return
				}
				require.Contains(t, res, topology.AttrProjectGPURequests)
				assert.InDelta(t, ps.requests, res[topology.AttrProjectGPURequests], 1e-12)
				assert.Equal(t, exporterNode, res[topology.AttrK8sNodeName])
				assert.NotContains(t, res, topology.AttrNodeUnresolved)
			})
		}
	}
}
