package topology // import "github.com/nerc-project/ai-telemetry-collector/internal/topology"

import "strings"

// DCGM exporter label names, in every dialect the exporter and its scrapers
// produce (see the exporter's -o "old namespace" mode, the 2026 rename of
// Hostname, and Prometheus' exported_* renaming with honorLabels: false).
const (
	labelNode              = "node"
	labelHostname          = "Hostname"
	labelHostnameLower     = "hostname"
	labelUUID              = "UUID"
	labelUUIDLower         = "uuid"
	labelGPU               = "gpu"
	labelDevice            = "device"
	labelModelName         = "modelName"
	labelPCIBusID          = "pci_bus_id"
	labelDriverVersion     = "DCGM_FI_DRIVER_VERSION"
	labelMIGProfile        = "GPU_I_PROFILE"
	labelMIGInstanceID     = "GPU_I_ID"
	labelVGPU              = "vgpu"
	labelPodUID            = "pod_uid"
	labelNamespace         = "namespace"
	labelPod               = "pod"
	labelContainer         = "container"
	labelPodNamespaceOld   = "pod_namespace"
	labelPodNameOld        = "pod_name"
	labelContainerNameOld  = "container_name"
	labelExportedNamespace = "exported_namespace"
	labelExportedPod       = "exported_pod"
	labelExportedContainer = "exported_container"
	// DefaultClusterLabel is the label that carries the cluster name on
	// federated and ACM-forwarded series.
	DefaultClusterLabel = "cluster"
	// HubLocalCluster is what an ACM hub calls itself in the cluster label.
	HubLocalCluster = "local-cluster"
)

// Labels is read access to one label set (a Prometheus series, an alert, a
// data point's attributes), so that no caller has to copy it into a map.
type Labels interface {
	Get(name string) (value string, ok bool)
}

// MapLabels adapts a plain map.
type MapLabels map[string]string

// Get returns the value of a label and whether it is present.
func (m MapLabels) Get(name string) (string, bool) {
	v, ok := m[name]
	return v, ok
}

// Entity is where one DCGM series or alert sits in the topology. Empty fields
// are unknown.
type Entity struct {
	Cluster       string
	Node          string
	Namespace     string
	Pod           string
	PodUID        string
	Container     string
	GPUIndex      string
	GPUUUID       string
	GPUDevice     string
	GPUModel      string
	PCIBusID      string
	DriverVersion string
	MIGProfile    string
	MIGInstanceID string
	VGPU          string
}

// IsSlice reports whether the entity is a MIG slice rather than a whole GPU.
func (e Entity) IsSlice() bool { return e.MIGInstanceID != "" }

// Allocated reports whether a pod holds the GPU or slice.
func (e Entity) Allocated() bool { return e.Pod != "" }

// HwID is the hw.id of the GPU, or of the slice: "{UUID}/{GPU_I_ID}".
func (e Entity) HwID() string {
	if e.GPUUUID == "" || !e.IsSlice() {
		return e.GPUUUID
	}
	return e.GPUUUID + "/" + e.MIGInstanceID
}

// Parser turns label sets of any DCGM dialect into entities.
type Parser struct {
	// ClusterLabel names the label holding the cluster (default "cluster").
	ClusterLabel string
	// DefaultCluster is used when the label is absent: the collector serves one cluster.
	DefaultCluster string
	// HubCluster replaces "local-cluster", the name an ACM hub gives itself.
	HubCluster string
}

// Parse reads the topology from a label set. Workload labels are taken in the
// order exported_* (the workload's, when a scrape renamed them), the -o
// dialect's pod_* names, then the plain names; whichever is present first wins,
// even when empty, so an unallocated GPU never inherits the exporter pod's own
// labels.
func (p Parser) Parse(l Labels) Entity {
	e := Entity{
		Node:          first(l, labelNode, labelHostname, labelHostnameLower),
		GPUUUID:       first(l, labelUUID, labelUUIDLower),
		GPUIndex:      get(l, labelGPU),
		GPUDevice:     get(l, labelDevice),
		GPUModel:      get(l, labelModelName),
		PCIBusID:      get(l, labelPCIBusID),
		DriverVersion: get(l, labelDriverVersion),
		MIGProfile:    get(l, labelMIGProfile),
		MIGInstanceID: get(l, labelMIGInstanceID),
		VGPU:          get(l, labelVGPU),
		PodUID:        get(l, labelPodUID),
		Namespace:     firstPresent(l, labelExportedNamespace, labelPodNamespaceOld, labelNamespace),
		Pod:           firstPresent(l, labelExportedPod, labelPodNameOld, labelPod),
		Container:     firstPresent(l, labelExportedContainer, labelContainerNameOld, labelContainer),
	}
	// Prometheus drops empty labels, so an unallocated GPU scraped with
	// honorLabels: false has no exported_* labels left, only the exporter
	// pod's own: the exporter never holds a GPU, so that is "not allocated".
	if IsExporterPod(e.Pod) {
		e.Namespace, e.Pod, e.Container = "", "", ""
	}
	clusterLabel := p.ClusterLabel
	if clusterLabel == "" {
		clusterLabel = DefaultClusterLabel
	}
	e.Cluster = get(l, clusterLabel)
	if e.Cluster == "" {
		e.Cluster = p.DefaultCluster
	}
	if e.Cluster == HubLocalCluster && p.HubCluster != "" {
		e.Cluster = p.HubCluster
	}
	return e
}

// exporterPodMarker is in the names of DCGM exporter pods
// (nvidia-dcgm-exporter-x7k2p, dcgm-exporter-sn5rp).
const exporterPodMarker = "dcgm-exporter"

// IsExporterPod reports whether a pod or host name is a DCGM exporter pod's.
func IsExporterPod(name string) bool { return strings.Contains(name, exporterPodMarker) }

// IsTopologyLabel reports whether Parse reads the label, so callers can keep
// every other label under their own prefix.
func (p Parser) IsTopologyLabel(name string) bool {
	if name == p.ClusterLabel || (p.ClusterLabel == "" && name == DefaultClusterLabel) {
		return true
	}
	switch name {
	case labelNode, labelHostname, labelHostnameLower, labelUUID, labelUUIDLower, labelGPU, labelDevice,
		labelModelName, labelPCIBusID, labelDriverVersion, labelMIGProfile, labelMIGInstanceID, labelVGPU,
		labelPodUID, labelNamespace, labelPod, labelContainer, labelPodNamespaceOld, labelPodNameOld,
		labelContainerNameOld, labelExportedNamespace, labelExportedPod, labelExportedContainer:
		return true
	}
	return false
}

func get(l Labels, name string) string {
	v, _ := l.Get(name)
	return v
}

// first returns the first non-empty value among the names.
func first(l Labels, names ...string) string {
	for _, n := range names {
		if v, ok := l.Get(n); ok && v != "" {
			return v
		}
	}
	return ""
}

// firstPresent returns the value of the first name present, even if empty.
func firstPresent(l Labels, names ...string) string {
	for _, n := range names {
		if v, ok := l.Get(n); ok {
			return v
		}
	}
	return ""
}
