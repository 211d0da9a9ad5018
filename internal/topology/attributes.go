package topology // import "github.com/nerc-project/ai-telemetry-collector/internal/topology"

// OpenTelemetry semantic conventions (k8s.* are stable, hw.* in development).
const (
	AttrK8sClusterName   = "k8s.cluster.name"
	AttrK8sNodeName      = "k8s.node.name"
	AttrK8sNamespaceName = "k8s.namespace.name"
	AttrK8sPodName       = "k8s.pod.name"
	AttrK8sPodUID        = "k8s.pod.uid"
	AttrK8sContainerName = "k8s.container.name"

	// AttrHwID identifies the hardware: the GPU's UUID, or for a MIG slice
	// "{GPU UUID}/{GPU instance id}", since DCGM gives slices no UUID.
	AttrHwID            = "hw.id"
	AttrHwName          = "hw.name"
	AttrHwModel         = "hw.model"
	AttrHwVendor        = "hw.vendor"
	AttrHwType          = "hw.type"
	AttrHwDriverVersion = "hw.driver_version"
	// AttrHwParent is set on MIG slices: the hw.id of the GPU they are part of.
	AttrHwParent = "hw.parent"
)

// NVIDIA-specific attributes, under the vendor prefix (no convention covers them).
const (
	AttrNvidiaGPUIndex         = "nvidia.gpu.index"
	AttrNvidiaGPUPCIBusID      = "nvidia.gpu.pci_bus_id"
	AttrNvidiaMIGProfile       = "nvidia.mig.profile"
	AttrNvidiaMIGGPUInstanceID = "nvidia.mig.gpu_instance_id"
	AttrNvidiaVGPU             = "nvidia.vgpu"
)

// Project attributes, under the documented prefix "aitelemetry.".
const (
	AttrHubName               = "aitelemetry.hub.name"
	AttrKeycloakResource      = "aitelemetry.keycloak.resource"
	AttrNGSILDID              = "aitelemetry.ngsi_ld.id"
	AttrNodeUnresolved        = "aitelemetry.node.unresolved"
	AttrGPUAllocated          = "aitelemetry.gpu.allocated"
	AttrSliceFraction         = "aitelemetry.gpu.slice.fraction"
	AttrProjectID             = "aitelemetry.project.id"
	AttrProjectName           = "aitelemetry.project.name"
	AttrProjectPI             = "aitelemetry.project.pi"
	AttrProjectFieldOfScience = "aitelemetry.project.field_of_science"
	AttrProjectGPUAllocation  = "aitelemetry.project.gpu.allocation"
	AttrProjectGPUQuota       = "aitelemetry.project.gpu.quota"
	AttrProjectGPURequests    = "aitelemetry.project.gpu.requests"
)

// Alertmanager attributes (set by the Alertmanager receiver).
const (
	AttrAlertName         = "alertmanager.alert.name"
	AttrAlertSeverity     = "alertmanager.alert.severity"
	AttrAlertStatus       = "alertmanager.alert.status"
	AttrAlertFingerprint  = "alertmanager.alert.fingerprint"
	AttrAlertGeneratorURL = "alertmanager.alert.generator_url"
	AttrExternalURL       = "alertmanager.external_url"
	AttrReceiver          = "alertmanager.receiver"
	AttrGroupKey          = "alertmanager.group_key"
	// AttrLabelPrefix prefixes every alert label that has no topology meaning.
	AttrLabelPrefix = "alertmanager.label."
	// AttrAnnotationPrefix prefixes every alert annotation.
	AttrAnnotationPrefix = "alertmanager.annotation."
)

// AttrHwGPUTask is the semantic conventions' task of hw.gpu.utilization.
const AttrHwGPUTask = "hw.gpu.task"

// Values of hw.type and hw.vendor for the GPUs the DCGM exporter reports.
const (
	HwTypeGPU      = "gpu"
	HwVendorNVIDIA = "NVIDIA"
)
