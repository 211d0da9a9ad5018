package topology // import "github.com/nerc-project/ai-telemetry-collector/internal/topology"

import "go.opentelemetry.io/collector/pdata/pcommon"

// PutNonEmpty sets key only when value is known, so unknown parts of the
// topology are absent rather than empty.
func PutNonEmpty(attrs pcommon.Map, key, value string) {
	if value != "" {
		attrs.PutStr(key, value)
	}
}

// PutWorkload puts the entity's Kubernetes position: cluster, node,
// namespace (the research project), pod, pod UID and container.
func (e Entity) PutWorkload(attrs pcommon.Map) {
	PutNonEmpty(attrs, AttrK8sClusterName, e.Cluster)
	PutNonEmpty(attrs, AttrK8sNodeName, e.Node)
	PutNonEmpty(attrs, AttrK8sNamespaceName, e.Namespace)
	PutNonEmpty(attrs, AttrK8sPodName, e.Pod)
	PutNonEmpty(attrs, AttrK8sPodUID, e.PodUID)
	PutNonEmpty(attrs, AttrK8sContainerName, e.Container)
}

// PutGPU puts the identity of the entity's GPU or MIG slice: hw.* where the
// semantic conventions have a name, nvidia.* for the rest. hw.type and
// hw.vendor are set only when a GPU is named at all.
func (e Entity) PutGPU(attrs pcommon.Map) {
	if e.GPUUUID != "" || e.GPUIndex != "" {
		attrs.PutStr(AttrHwType, HwTypeGPU)
		attrs.PutStr(AttrHwVendor, HwVendorNVIDIA)
	}
	PutNonEmpty(attrs, AttrHwID, e.HwID())
	if e.IsSlice() {
		PutNonEmpty(attrs, AttrHwParent, e.GPUUUID)
	}
	PutNonEmpty(attrs, AttrHwName, e.GPUDevice)
	PutNonEmpty(attrs, AttrHwModel, e.GPUModel)
	PutNonEmpty(attrs, AttrHwDriverVersion, e.DriverVersion)
	PutNonEmpty(attrs, AttrNvidiaGPUIndex, e.GPUIndex)
	PutNonEmpty(attrs, AttrNvidiaGPUPCIBusID, e.PCIBusID)
	PutNonEmpty(attrs, AttrNvidiaMIGProfile, e.MIGProfile)
	PutNonEmpty(attrs, AttrNvidiaMIGGPUInstanceID, e.MIGInstanceID)
	PutNonEmpty(attrs, AttrNvidiaVGPU, e.VGPU)
}
