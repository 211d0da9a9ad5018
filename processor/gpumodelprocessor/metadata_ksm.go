package gpumodelprocessor // import "github.com/nerc-project/ai-telemetry-collector/processor/gpumodelprocessor"

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// kube-state-metrics series the processor learns from, and their labels
// (annotations and labels appear only when kube-state-metrics is started with
// --metric-annotations-allowlist / --metric-labels-allowlist for namespaces).
const (
	ksmNamespaceAnnotations = "kube_namespace_annotations"
	ksmPodRequests          = "kube_pod_container_resource_requests"
	ksmResourceQuota        = "kube_resourcequota"
	ksmPodInfo              = "kube_pod_info"
	ksmPodPhase             = "kube_pod_status_phase"

	ksmAnnotationProjectID   = "annotation_cf_project_id"
	ksmAnnotationPI          = "annotation_cf_pi"
	ksmAnnotationRequester   = "annotation_openshift_io_requester"
	ksmAnnotationDisplayName = "annotation_openshift_io_display_name"

	ksmQuotaResource = "requests.nvidia.com/gpu"
	ksmGPUResource   = "nvidia_com_gpu"
	ksmMIGPrefix     = "nvidia_com_mig_"
)

// kube-state-metrics exports the requests of finished pods too (it mirrors the
// API, and a finished pod stays there until deleted); the scheduler and the
// Kubernetes source count them as holding nothing. kube_pod_status_phase says
// which pods are finished: 1 on the phase a pod is in, 0 on the others.
var ksmTerminalPhases = []string{"Succeeded", "Failed"}

// ksmStaleAfter drops pod requests and placements not seen for this long:
// kube-state-metrics stops exposing a pod once it is gone, and ACM forwards a
// sample every 5 minutes.
const ksmStaleAfter = 11 * time.Minute

// ksmSource learns project metadata from kube-state-metrics series as they
// pass through the pipeline.
type ksmSource struct {
	parser topology.Parser
	now    func() time.Time

	mu         sync.RWMutex
	namespaces map[projectKey]project
	quotas     map[projectKey]float64
	requests   map[requestKey]seenValue
	pods       map[podKey]seenString
	// phases holds the Succeeded and Failed series of each pod.
	phases map[phaseKey]seenValue
	gen    atomic.Uint64
}

type requestKey struct {
	projectKey
	pod, container, resource string
}

type podKey struct{ cluster, pod string }

type phaseKey struct {
	projectKey
	pod, phase string
}

type seenValue struct {
	value float64
	seen  time.Time
}

type seenString struct {
	value string
	seen  time.Time
}

func newKSMSource(parser topology.Parser) *ksmSource {
	return &ksmSource{
		parser:     parser,
		now:        time.Now,
		namespaces: map[projectKey]project{},
		quotas:     map[projectKey]float64{},
		requests:   map[requestKey]seenValue{},
		pods:       map[podKey]seenString{},
		phases:     map[phaseKey]seenValue{},
	}
}

// isKSMSeries reports whether the processor learns from a metric.
func isKSMSeries(name string) bool {
	switch name {
	case ksmNamespaceAnnotations, ksmPodRequests, ksmResourceQuota, ksmPodInfo, ksmPodPhase:
		return true
	}
	return false
}

// learn reads one kube-state-metrics metric; cluster is the resource's.
func (s *ksmSource) learn(m pmetric.Metric, resourceCluster string) int {
	dps, ok := numberPoints(m)
	if !ok {
		return 0
	}
	parser := s.parser
	if resourceCluster != "" {
		parser.DefaultCluster = resourceCluster
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	learned := 0
	for _, dp := range dps.All() {
		labels := mapLabels(dp.Attributes())
		// Only the cluster comes from the topology parser: these labels
		// describe Kubernetes objects, the exporter's own pod included.
		cluster := parser.Parse(labels).Cluster
		namespace, pod, container := ksmLabel(labels, "namespace"), ksmLabel(labels, "pod"), ksmLabel(labels, "container")
		if namespace == "" {
			continue
		}
		key := projectKey{cluster: cluster, namespace: namespace}
		value := numberValue(dp)
		switch m.Name() {
		case ksmNamespaceAnnotations:
			p := project{
				ID:   get(labels, ksmAnnotationProjectID),
				Name: get(labels, ksmAnnotationDisplayName),
				PI:   firstNonEmpty(get(labels, ksmAnnotationPI), get(labels, ksmAnnotationRequester)),
			}
			if p != s.namespaces[key] {
				s.namespaces[key] = p
			}
		case ksmResourceQuota:
			if get(labels, "resource") == ksmQuotaResource && get(labels, "type") == "hard" {
				s.quotas[key] = value
			}
		case ksmPodRequests:
			resource := get(labels, "resource")
			gpus := gpusRequested(resource, value)
			if gpus < 0 || pod == "" {
				continue
			}
			s.requests[requestKey{projectKey: key, pod: pod, container: container, resource: resource}] = seenValue{value: gpus, seen: now}
		case ksmPodInfo:
			node := get(labels, "node")
			if pod == "" || node == "" {
				continue
			}
			if old, ok := s.pods[podKey{cluster, pod}]; !ok || old.value != node {
				s.gen.Add(1)
			}
			s.pods[podKey{cluster, pod}] = seenString{value: node, seen: now}
		case ksmPodPhase:
			phase := get(labels, "phase")
			if pod == "" || !slices.Contains(ksmTerminalPhases, phase) {
				continue
			}
			s.phases[phaseKey{projectKey: key, pod: pod, phase: phase}] = seenValue{value: value, seen: now}
		}
		learned++
	}
	return learned
}

// gpusRequested converts a kube-state-metrics resource request into GPUs: one
// per nvidia.com/gpu, and for MIG resources (nvidia.com/mig-3g.40gb, exposed as
// nvidia_com_mig_3g_40gb) the slice's share of a GPU. kube-state-metrics does
// not say the model, so the A30's profiles (1g.6gb, 2g.12gb, 4g.24gb) count in
// quarters and every other profile in sevenths. -1: not a GPU resource.
func gpusRequested(resource string, value float64) float64 {
	if resource == ksmGPUResource {
		return value
	}
	profile, ok := strings.CutPrefix(resource, ksmMIGPrefix)
	if !ok {
		return -1
	}
	profile = strings.Replace(profile, "_", ".", 1)
	model := "A100"
	switch profile {
	case "1g.6gb", "2g.12gb", "4g.24gb":
		model = "A30"
	}
	fraction, ok := topology.SliceFraction(model, profile)
	if !ok {
		return -1
	}
	return value * fraction
}

func (s *ksmSource) project(key projectKey) (project, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, found := s.namespaces[key]
	if q, ok := s.quotas[key]; ok {
		p.Quota = some(q)
		found = true
	}
	cutoff := s.now().Add(-ksmStaleAfter)
	var requested float64
	seen := false
	for k, r := range s.requests {
		if k.projectKey != key || !r.seen.After(cutoff) {
			continue
		}
		// A project whose pods have all finished requests 0, as the
		// Kubernetes source says.
		seen = true
		if !s.finished(key, k.pod, cutoff) {
			requested += r.value
		}
	}
	if seen {
		p.Requests = some(requested)
		found = true
	}
	return p, found
}

// finished reports whether a pod is in a terminal phase; s.mu is held.
func (s *ksmSource) finished(key projectKey, pod string, cutoff time.Time) bool {
	for _, phase := range ksmTerminalPhases {
		if v, ok := s.phases[phaseKey{projectKey: key, pod: pod, phase: phase}]; ok && v.value > 0 && v.seen.After(cutoff) {
			return true
		}
	}
	return false
}

func (s *ksmSource) podNode(cluster, pod string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, ok := s.pods[podKey{cluster, pod}]
	if !ok || !n.seen.After(s.now().Add(-ksmStaleAfter)) {
		return "", false
	}
	return n.value, true
}

func (s *ksmSource) generation() uint64 { return s.gen.Load() }

// expire forgets requests, phases and placements not seen recently, bounding memory.
func (s *ksmSource) expire() {
	cutoff := s.now().Add(-ksmStaleAfter)
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, r := range s.requests {
		if !r.seen.After(cutoff) {
			delete(s.requests, k)
		}
	}
	for k, p := range s.phases {
		if !p.seen.After(cutoff) {
			delete(s.phases, k)
		}
	}
	for k, p := range s.pods {
		if !p.seen.After(cutoff) {
			delete(s.pods, k)
			s.gen.Add(1)
		}
	}
}

var _ metadataSource = (*ksmSource)(nil)

// mapLabels reads a data point's attributes as labels.
type mapLabels pcommon.Map

func (m mapLabels) Get(name string) (string, bool) {
	v, ok := pcommon.Map(m).Get(name)
	if !ok {
		return "", false
	}
	if v.Type() == pcommon.ValueTypeStr {
		return v.Str(), true
	}
	return v.AsString(), true
}

// ksmLabel reads a kube-state-metrics label, preferring the exported_ copy a
// Prometheus scrape with honorLabels: false leaves.
func ksmLabel(l topology.Labels, name string) string {
	if v, ok := l.Get("exported_" + name); ok {
		return v
	}
	return get(l, name)
}

func get(l topology.Labels, name string) string {
	v, _ := l.Get(name)
	return v
}

// numberPoints returns the points of a gauge or sum, the only types DCGM and
// kube-state-metrics series arrive as.
func numberPoints(m pmetric.Metric) (pmetric.NumberDataPointSlice, bool) {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints(), true
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints(), true
	}
	return pmetric.NumberDataPointSlice{}, false
}

func numberValue(dp pmetric.NumberDataPoint) float64 {
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return float64(dp.IntValue())
	}
	return dp.DoubleValue()
}
