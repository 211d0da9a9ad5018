package gpumodelprocessor // import "github.com/nerc-project/ai-telemetry-collector/processor/gpumodelprocessor"

// project is what is known of one research project (a namespace on a cluster).
type project struct {
	ID             string
	Name           string
	PI             string
	FieldOfScience string
	Allocation     optionalFloat // GPUs allocated in ColdFront
	Quota          optionalFloat // ResourceQuota hard requests.nvidia.com/gpu
	Requests       optionalFloat // GPUs requested by the project's pods now
}

type optionalFloat struct {
	value float64
	set   bool
}

func some(v float64) optionalFloat { return optionalFloat{value: v, set: true} }

type projectKey struct{ cluster, namespace string }

// metadataSource is one source of project metadata and pod placement.
type metadataSource interface {
	// project returns what the source knows of a project.
	project(key projectKey) (project, bool)
	// podNode returns the node of a pod, found by the pod's name: DCGM puts
	// the exporter pod's name in Hostname when NODE_NAME is not set.
	podNode(cluster, pod string) (string, bool)
	// generation changes whenever podNode's answers may have changed.
	generation() uint64
}

// metadataSources merges the sources field by field: the first source that knows a
// field wins (precedence: file, Kubernetes API, kube-state-metrics).
type metadataSources struct {
	sources []metadataSource
}

func (m *metadataSources) project(key projectKey) (project, bool) {
	var merged project
	found := false
	for _, s := range m.sources {
		p, ok := s.project(key)
		if !ok {
			continue
		}
		found = true
		merged.ID = firstNonEmpty(merged.ID, p.ID)
		merged.Name = firstNonEmpty(merged.Name, p.Name)
		merged.PI = firstNonEmpty(merged.PI, p.PI)
		merged.FieldOfScience = firstNonEmpty(merged.FieldOfScience, p.FieldOfScience)
		merged.Allocation = firstSet(merged.Allocation, p.Allocation)
		merged.Quota = firstSet(merged.Quota, p.Quota)
		merged.Requests = firstSet(merged.Requests, p.Requests)
	}
	return merged, found
}

func (m *metadataSources) podNode(cluster, pod string) (string, bool) {
	for _, s := range m.sources {
		if node, ok := s.podNode(cluster, pod); ok {
			return node, true
		}
	}
	return "", false
}

func (m *metadataSources) generation() uint64 {
	var g uint64
	for _, s := range m.sources {
		g += s.generation()
	}
	return g
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func firstSet(a, b optionalFloat) optionalFloat {
	if a.set {
		return a
	}
	return b
}
