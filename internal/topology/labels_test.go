package topology

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

const (
	uuidA = "GPU-585834da-79ca-0599-5140-4ffdb131ae93"
	uuidB = "GPU-603a8873-0edd-c157-ce48-2078e8b1a935"
)

func TestParseDialects(t *testing.T) {
	tests := []struct {
		name   string
		parser Parser
		labels MapLabels
		want   Entity
	}{
		{
			name: "direct scrape, whole GPU, allocated",
			labels: MapLabels{
				"gpu": "0", "UUID": uuidA, "pci_bus_id": "00000000:4E:00.0", "device": "nvidia0",
				"modelName": "NVIDIA L40S", "Hostname": "l40s.example.com", "DCGM_FI_DRIVER_VERSION": "550.90.07",
				"container": "tensorflow", "namespace": "team-a", "pod": "tensorflow-0",
			},
			want: Entity{
				Node: "l40s.example.com", GPUUUID: uuidA, GPUIndex: "0", GPUDevice: "nvidia0", GPUModel: "NVIDIA L40S",
				PCIBusID: "00000000:4E:00.0", DriverVersion: "550.90.07",
				Namespace: "team-a", Pod: "tensorflow-0", Container: "tensorflow",
			},
		},
		{
			name: "MIG slice, unallocated, exporter pod name in Hostname",
			labels: MapLabels{
				"gpu": "0", "UUID": uuidB, "device": "nvidia0", "modelName": "NVIDIA A30",
				"GPU_I_PROFILE": "2g.12gb", "GPU_I_ID": "1", "Hostname": "dcgm-exporter-sn5rp",
				"container": "", "namespace": "", "pod": "",
			},
			want: Entity{
				Node: "dcgm-exporter-sn5rp", GPUUUID: uuidB, GPUIndex: "0", GPUDevice: "nvidia0", GPUModel: "NVIDIA A30",
				MIGProfile: "2g.12gb", MIGInstanceID: "1",
			},
		},
		{
			name: "Prometheus scrape with honorLabels false: exported_* win over the exporter pod's own",
			labels: MapLabels{
				"UUID": uuidA, "gpu": "1", "hostname": "gpu-node-7",
				"exported_namespace": "team-b", "exported_pod": "train-1", "exported_container": "main",
				"namespace": "nvidia-gpu-operator", "pod": "nvidia-dcgm-exporter-x7k2p", "container": "nvidia-dcgm-exporter",
			},
			want: Entity{
				Node: "gpu-node-7", GPUUUID: uuidA, GPUIndex: "1",
				Namespace: "team-b", Pod: "train-1", Container: "main",
			},
		},
		{
			name: "exported_* present but empty: unallocated, never the exporter pod",
			labels: MapLabels{
				"UUID": uuidA, "exported_namespace": "", "exported_pod": "", "exported_container": "",
				"namespace": "nvidia-gpu-operator", "pod": "nvidia-dcgm-exporter-x7k2p",
			},
			want: Entity{GPUUUID: uuidA},
		},
		{
			name: "empty exported_* dropped by Prometheus: the exporter pod's own labels mean unallocated",
			labels: MapLabels{
				"UUID": uuidA, "namespace": "nvidia-gpu-operator", "pod": "nvidia-dcgm-exporter-x7k2p", "container": "nvidia-dcgm-exporter",
			},
			want: Entity{GPUUUID: uuidA},
		},
		{
			name: "old namespace mode (-o): lowercase uuid and pod_* labels",
			labels: MapLabels{
				"uuid": uuidA, "gpu": "2", "Hostname": "node-3",
				"pod_namespace": "team-c", "pod_name": "job-0", "container_name": "cuda",
				"namespace": "nvidia-gpu-operator", "pod": "nvidia-dcgm-exporter-abc",
			},
			want: Entity{Node: "node-3", GPUUUID: uuidA, GPUIndex: "2", Namespace: "team-c", Pod: "job-0", Container: "cuda"},
		},
		{
			name:   "node label from Kubernetes discovery wins over Hostname",
			labels: MapLabels{"node": "wrk-5", "Hostname": "nvidia-dcgm-exporter-q8m2d", "UUID": uuidA},
			want:   Entity{Node: "wrk-5", GPUUUID: uuidA},
		},
		{
			name:   "time-slicing labels",
			labels: MapLabels{"UUID": uuidA, "vgpu": "3", "pod_uid": "0b7c6e4e-1c1e-4b7a-9d7c-2f0d5c1e8a11", "pod": "p", "namespace": "ns"},
			want:   Entity{GPUUUID: uuidA, VGPU: "3", PodUID: "0b7c6e4e-1c1e-4b7a-9d7c-2f0d5c1e8a11", Pod: "p", Namespace: "ns"},
		},
		{
			name:   "cluster label, local-cluster mapped to the hub's own name",
			parser: Parser{HubCluster: "nerc-ocp-infra"},
			labels: MapLabels{"cluster": "local-cluster"},
			want:   Entity{Cluster: "nerc-ocp-infra"},
		},
		{
			name:   "configured cluster label",
			parser: Parser{ClusterLabel: "managed_cluster", DefaultCluster: "unused"},
			labels: MapLabels{"managed_cluster": "nerc-ocp-prod", "cluster": "other"},
			want:   Entity{Cluster: "nerc-ocp-prod"},
		},
		{
			name:   "default cluster when the collector serves one",
			parser: Parser{DefaultCluster: "nerc-ocp-test"},
			labels: MapLabels{},
			want:   Entity{Cluster: "nerc-ocp-test"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.parser.Parse(tt.labels))
		})
	}
}

func TestEntityDerived(t *testing.T) {
	gpu := Entity{GPUUUID: uuidA, Pod: "p"}
	slice := Entity{GPUUUID: uuidB, MIGInstanceID: "3"}
	assert.Equal(t, uuidA, gpu.HwID())
	assert.Equal(t, uuidB+"/3", slice.HwID())
	assert.False(t, gpu.IsSlice())
	assert.True(t, slice.IsSlice())
	assert.True(t, gpu.Allocated())
	assert.False(t, slice.Allocated())
}

func TestIsTopologyLabel(t *testing.T) {
	p := Parser{}
	for _, l := range []string{"cluster", "Hostname", "exported_pod", "GPU_I_ID", "pod_uid"} {
		assert.True(t, p.IsTopologyLabel(l), l)
	}
	for _, l := range []string{"alertname", "severity", "instance", "job"} {
		assert.False(t, p.IsTopologyLabel(l), l)
	}
	custom := Parser{ClusterLabel: "managed_cluster"}
	assert.True(t, custom.IsTopologyLabel("managed_cluster"))
	assert.False(t, custom.IsTopologyLabel("cluster"))
}

func TestResourceNames(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{HubResource("moc"), "HUB-moc"},
		{ClusterResource("moc", "nerc-ocp-prod"), "HUB-moc-CLUSTER-nerc-ocp-prod"},
		{ProjectResource("moc", "nerc-ocp-prod", "team-a"), "HUB-moc-CLUSTER-nerc-ocp-prod-PROJECT-team-a"},
		{NodeResource("moc", "nerc-ocp-prod", "wrk-3"), "HUB-moc-CLUSTER-nerc-ocp-prod-AINODE-wrk-3"},
		{GPUDeviceResource("moc", "nerc-ocp-prod", "wrk-3", "0"), "HUB-moc-CLUSTER-nerc-ocp-prod-AINODE-wrk-3-GPUDEVICE-0"},
		{Entity{Cluster: "c", Namespace: "n"}.Resource("moc"), "HUB-moc-CLUSTER-c-PROJECT-n"},
		{Entity{Cluster: "c"}.Resource("moc"), "HUB-moc-CLUSTER-c"},
		{Entity{}.Resource("moc"), "HUB-moc"},
		{Entity{Cluster: "c", Namespace: "n"}.Resource(""), ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.got)
	}
}
