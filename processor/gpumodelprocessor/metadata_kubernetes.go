package gpumodelprocessor // import "github.com/nerc-project/ai-telemetry-collector/processor/gpumodelprocessor"

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// Namespace annotations set by ColdFront's OpenShift plugin.
const (
	annotationProjectID   = "cf_project_id"
	annotationPI          = "cf_pi"
	annotationRequester   = "openshift.io/requester"
	annotationDisplayName = "openshift.io/display-name"

	resourceGPU       corev1.ResourceName = "nvidia.com/gpu"
	resourceMIGPrefix                     = "nvidia.com/mig-"
	quotaGPU          corev1.ResourceName = "requests.nvidia.com/gpu"

	podNameIndex   = "pod-name"
	cacheSyncLimit = 2 * time.Minute
)

var errCacheSync = errors.New("kubernetes informer caches did not sync")

// kubernetesSource reads namespaces (project annotations), resource quotas
// (GPU quota) and, when pods is set, pods (nodes and GPU requests) through
// client-go informers. Without pods it never lists or watches a pod, so its
// ServiceAccount needs no grant on pods; project and podNode then leave GPU
// requests and pod nodes to the other sources.
type kubernetesSource struct {
	authType string
	cluster  string
	pods     bool
	logger   *zap.Logger
	client   kubernetes.Interface

	namespaces listersv1.NamespaceLister
	podLister  listersv1.PodLister
	podIndex   cache.Indexer
	quotas     listersv1.ResourceQuotaLister
	gen        atomic.Uint64
	stop       chan struct{}
}

func newKubernetesSource(authType, cluster string, pods bool, logger *zap.Logger) *kubernetesSource {
	return &kubernetesSource{authType: authType, cluster: cluster, pods: pods, logger: logger}
}

func (s *kubernetesSource) start(ctx context.Context) error {
	if s.client == nil {
		client, err := newKubernetesClient(s.authType)
		if err != nil {
			return fmt.Errorf("kubernetes metadata: %w", err)
		}
		s.client = client
	}
	factory := informers.NewSharedInformerFactory(s.client, 10*time.Minute)
	// Listers create their informers: only the kinds asked for here are
	// listed and watched.
	s.namespaces = factory.Core().V1().Namespaces().Lister()
	s.quotas = factory.Core().V1().ResourceQuotas().Lister()
	if s.pods {
		if err := s.informPods(factory.Core().V1().Pods()); err != nil {
			return err
		}
	}

	s.stop = make(chan struct{})
	factory.Start(s.stop)
	syncCtx, cancel := context.WithTimeout(ctx, cacheSyncLimit)
	defer cancel()
	for typ, ok := range factory.WaitForCacheSync(syncCtx.Done()) {
		if !ok {
			return fmt.Errorf("%w: %v", errCacheSync, typ)
		}
	}
	s.logger.Info("Kubernetes project metadata synced", zap.String("cluster", s.cluster), zap.Bool("pods", s.pods))
	return nil
}

func (s *kubernetesSource) informPods(pods coreinformers.PodInformer) error {
	// Keep only what the processor reads: a cluster's pods are many.
	if err := pods.Informer().SetTransform(slimPod); err != nil {
		return err
	}
	if err := pods.Informer().AddIndexers(cache.Indexers{podNameIndex: func(obj any) ([]string, error) {
		if pod, ok := obj.(*corev1.Pod); ok {
			return []string{pod.Name}, nil
		}
		return nil, nil
	}}); err != nil {
		return err
	}
	bump := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.gen.Add(1) },
		UpdateFunc: func(any, any) { s.gen.Add(1) },
		DeleteFunc: func(any) { s.gen.Add(1) },
	}
	if _, err := pods.Informer().AddEventHandler(bump); err != nil {
		return err
	}
	s.podLister = pods.Lister()
	s.podIndex = pods.Informer().GetIndexer()
	return nil
}

func (s *kubernetesSource) shutdown() {
	if s.stop != nil {
		close(s.stop)
		s.stop = nil
	}
}

func newKubernetesClient(authType string) (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	switch authType {
	case authKubeConfig:
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	default:
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// slimPod drops every field the processor does not read.
func slimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	slim := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID, ResourceVersion: pod.ResourceVersion},
		Spec:       corev1.PodSpec{NodeName: pod.Spec.NodeName},
		Status:     corev1.PodStatus{Phase: pod.Status.Phase},
	}
	for _, c := range pod.Spec.Containers {
		slim.Spec.Containers = append(slim.Spec.Containers, corev1.Container{
			Name:      c.Name,
			Resources: corev1.ResourceRequirements{Requests: gpuRequests(c.Resources.Requests, c.Resources.Limits)},
		})
	}
	return slim, nil
}

// gpuRequests keeps the GPU resources of a container. Extended resources
// need not repeat the limit as a request, so a limit counts when the request
// is absent.
func gpuRequests(requests, limits corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for _, list := range []corev1.ResourceList{limits, requests} {
		for name, q := range list {
			if name == resourceGPU || strings.HasPrefix(string(name), resourceMIGPrefix) {
				out[name] = q
			}
		}
	}
	return out
}

func (s *kubernetesSource) project(key projectKey) (project, bool) {
	if s.namespaces == nil || key.cluster != s.cluster {
		return project{}, false
	}
	ns, err := s.namespaces.Get(key.namespace)
	if err != nil {
		return project{}, false
	}
	a := ns.Annotations
	p := project{
		ID:   a[annotationProjectID],
		Name: a[annotationDisplayName],
		PI:   firstNonEmpty(a[annotationPI], a[annotationRequester]),
	}
	if quotas, err := s.quotas.ResourceQuotas(key.namespace).List(labels.Everything()); err == nil {
		for _, q := range quotas {
			if hard, ok := q.Spec.Hard[quotaGPU]; ok {
				v := hard.AsApproximateFloat64()
				// Several quotas: the tightest one binds.
				if !p.Quota.set || v < p.Quota.value {
					p.Quota = some(v)
				}
			}
		}
	}
	// pods: false: GPU requests are left to the next source.
	if s.podLister == nil {
		return p, true
	}
	if pods, err := s.podLister.Pods(key.namespace).List(labels.Everything()); err == nil {
		var requested float64
		for _, pod := range pods {
			if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
				continue
			}
			for _, c := range pod.Spec.Containers {
				requested += containerGPUs(c.Resources.Requests)
			}
		}
		p.Requests = some(requested)
	}
	return p, true
}

// containerGPUs converts a container's GPU resources into GPUs (MIG slices
// by their share, as gpusRequested does for kube-state-metrics).
func containerGPUs(requests corev1.ResourceList) float64 {
	var gpus float64
	for name, q := range requests {
		n := q.AsApproximateFloat64()
		if name == resourceGPU {
			gpus += n
			continue
		}
		profile := strings.TrimPrefix(string(name), resourceMIGPrefix)
		if g := gpusRequested(ksmMIGPrefix+strings.Replace(profile, ".", "_", 1), n); g >= 0 {
			gpus += g
		}
	}
	return gpus
}

func (s *kubernetesSource) podNode(cluster, pod string) (string, bool) {
	if s.podIndex == nil || cluster != s.cluster {
		return "", false
	}
	objs, err := s.podIndex.ByIndex(podNameIndex, pod)
	if err != nil || len(objs) != 1 {
		return "", false
	}
	p, ok := objs[0].(*corev1.Pod)
	if !ok || p.Spec.NodeName == "" {
		return "", false
	}
	return p.Spec.NodeName, true
}

func (s *kubernetesSource) generation() uint64 { return s.gen.Load() }

var _ metadataSource = (*kubernetesSource)(nil)
