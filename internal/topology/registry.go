package topology // import "github.com/nerc-project/ai-telemetry-collector/internal/topology"

// Origin says who defines an attribute.
type Origin string

const (
	OriginSemconvStable      Origin = "OpenTelemetry semantic conventions (stable)"
	OriginSemconvDevelopment Origin = "OpenTelemetry semantic conventions (development)"
	OriginVendor             Origin = "NVIDIA vendor prefix (no convention covers it)"
	OriginProject            Origin = "this project (prefix aitelemetry.)"
	OriginAlertmanager       Origin = "this project (Alertmanager receiver)"
)

// AttributeDoc documents one attribute of the vocabulary. docs/semantic-conventions.md
// and docs/vocabulary.jsonld are generated from Vocabulary; a test fails when
// they are stale.
type AttributeDoc struct {
	Key         string
	Type        string // string, int, double or boolean
	Origin      Origin
	Where       string // resource, data point, span or log record
	Description string
	Example     string
	// IRI is the term's identifier in the JSON-LD context.
	IRI string
}

const (
	semconvIRI = "https://opentelemetry.io/docs/specs/semconv/attributes-registry/"
	projectIRI = "https://github.com/nerc-project/ai-telemetry-collector/blob/main/docs/semantic-conventions.md#"
)

// Vocabulary lists every attribute the project's components emit, in the
// order the documentation shows them.
var Vocabulary = []AttributeDoc{
	{AttrHubName, "string", OriginProject, "resource, span", "ACM hub the cluster belongs to.", "moc", ""},
	{AttrK8sClusterName, "string", OriginSemconvStable, "resource, span", "AI cluster. `local-cluster` is replaced by the hub's own cluster name.", "nerc-ocp-prod", semconvIRI + "k8s/"},
	{AttrK8sNodeName, "string", OriginSemconvStable, "resource, span", "AI node: the Kubernetes node holding the GPU.", "wrk-10", semconvIRI + "k8s/"},
	{AttrNodeUnresolved, "boolean", OriginProject, "resource", "True when the node could only be taken from a DCGM `Hostname` that names the exporter pod and no metadata source resolved it.", "true", ""},
	{AttrK8sNamespaceName, "string", OriginSemconvStable, "resource, span", "Research project: the OpenShift namespace.", "team-a", semconvIRI + "k8s/"},
	{AttrK8sPodName, "string", OriginSemconvStable, "resource, span", "Pod the GPU or slice is allocated to.", "train-0", semconvIRI + "k8s/"},
	{AttrK8sPodUID, "string", OriginSemconvStable, "resource, span", "UID of that pod (DCGM `pod_uid`, time-slicing).", "0b7c6e4e-1c1e-4b7a-9d7c-2f0d5c1e8a11", semconvIRI + "k8s/"},
	{AttrK8sContainerName, "string", OriginSemconvStable, "resource, span", "Container of that pod.", "trainer", semconvIRI + "k8s/"},
	{AttrProjectID, "string", OriginProject, "resource", "ColdFront project id of the namespace (`cf_project_id`).", "1234", ""},
	{AttrProjectName, "string", OriginProject, "resource", "Display name of the project (`openshift.io/display-name`, or ColdFront title).", "LLM fine-tuning", ""},
	{AttrProjectPI, "string", OriginProject, "resource", "Principal investigator (`cf_pi`, else `openshift.io/requester`).", "alice@example.edu", ""},
	{AttrProjectFieldOfScience, "string", OriginProject, "resource", "Field of science of the ColdFront project.", "Computer Science", ""},
	{AttrProjectGPUAllocation, "double", OriginProject, "resource", "GPUs allocated to the project in ColdFront (metadata file).", "4", ""},
	{AttrProjectGPUQuota, "double", OriginProject, "resource", "GPU quota: ResourceQuota hard `requests.nvidia.com/gpu`.", "4", ""},
	{AttrProjectGPURequests, "double", OriginProject, "resource", "GPUs currently requested by the project's pods (`nvidia.com/gpu`, MIG resources counted by slice fraction).", "2.43", ""},
	{AttrKeycloakResource, "string", OriginProject, "resource, span", "Keycloak authorization resource guarding the data: `HUB-{hub}-CLUSTER-{cluster}-PROJECT-{namespace}`, or the cluster's or hub's when no project applies.", "HUB-moc-CLUSTER-nerc-ocp-prod-PROJECT-team-a", ""},
	{AttrHwID, "string", OriginSemconvDevelopment, "data point, span", "GPU UUID; for a MIG slice `{GPU UUID}/{GPU_I_ID}`.", "GPU-603a8873-0edd-c157-ce48-2078e8b1a935/1", semconvIRI + "hardware/"},
	{AttrHwType, "string", OriginSemconvDevelopment, "data point, span", "Always `gpu`.", "gpu", semconvIRI + "hardware/"},
	{AttrHwVendor, "string", OriginSemconvDevelopment, "data point, span", "Always `NVIDIA`.", "NVIDIA", semconvIRI + "hardware/"},
	{AttrHwModel, "string", OriginSemconvDevelopment, "data point, span", "GPU model (DCGM `modelName`).", "NVIDIA A100-SXM4-80GB", semconvIRI + "hardware/"},
	{AttrHwName, "string", OriginSemconvDevelopment, "data point, span", "Device name (DCGM `device`).", "nvidia0", semconvIRI + "hardware/"},
	{AttrHwDriverVersion, "string", OriginSemconvDevelopment, "data point, span", "NVIDIA driver version.", "550.90.07", semconvIRI + "hardware/"},
	{AttrHwParent, "string", OriginSemconvDevelopment, "data point, span", "On a MIG slice: the `hw.id` of its GPU.", "GPU-603a8873-0edd-c157-ce48-2078e8b1a935", semconvIRI + "hardware/"},
	{AttrHwGPUTask, "string", OriginSemconvDevelopment, "data point", "Task of `hw.gpu.utilization`: general, encoder or decoder.", "general", semconvIRI + "hardware/"},
	{AttrNvidiaGPUIndex, "string", OriginVendor, "data point, span", "GPU index on its node (DCGM `gpu`).", "0", ""},
	{AttrNvidiaGPUPCIBusID, "string", OriginVendor, "data point, span", "PCI bus id of the GPU.", "00000000:31:00.0", ""},
	{AttrNvidiaMIGProfile, "string", OriginVendor, "data point, span", "MIG profile of the slice (DCGM `GPU_I_PROFILE`).", "3g.40gb", ""},
	{AttrNvidiaMIGGPUInstanceID, "string", OriginVendor, "data point, span", "MIG GPU instance id of the slice (DCGM `GPU_I_ID`).", "1", ""},
	{AttrNvidiaVGPU, "string", OriginVendor, "data point, span", "Time-sliced replica index (DCGM `vgpu`).", "2", ""},
	{AttrSliceFraction, "double", OriginProject, "data point", "Share of the whole GPU the data point covers: 1 for a GPU, compute slices / slices of the model for a MIG slice (3g on an A100 = 3/7).", "0.428571", ""},
	{AttrGPUAllocated, "boolean", OriginProject, "data point", "Whether a pod holds the GPU or slice.", "true", ""},
	{AttrNGSILDID, "string", OriginProject, "data point", "NGSI-LD entity id of the GPU device: `urn:ngsi-ld:GpuDevice:{cluster}:{node}:{index}`.", "urn:ngsi-ld:GpuDevice:nerc-ocp-prod:wrk-10:0", ""},
	{AttrAlertName, "string", OriginAlertmanager, "span", "Alert name.", "GPUInUse", ""},
	{AttrAlertSeverity, "string", OriginAlertmanager, "span", "Alert severity label.", "info", ""},
	{AttrAlertStatus, "string", OriginAlertmanager, "span", "firing (start marker) or resolved (session).", "resolved", ""},
	{AttrAlertFingerprint, "string", OriginAlertmanager, "span", "Alertmanager fingerprint of the alert's label set.", "a1b2c3d4e5f60718", ""},
	{AttrAlertGeneratorURL, "string", OriginAlertmanager, "span", "Link to the rule's expression.", "https://thanos.example/graph?g0.expr=...", ""},
	{AttrExternalURL, "string", OriginAlertmanager, "span, log record", "Alertmanager's external URL.", "https://alertmanager.example", ""},
	{AttrReceiver, "string", OriginAlertmanager, "span, log record", "Alertmanager receiver name.", "ai-telemetry", ""},
	{AttrGroupKey, "string", OriginAlertmanager, "span, log record", "Alertmanager group key.", "{}:{alertname=\"GPUInUse\"}", ""},
	{AttrLabelPrefix + "<name>", "string", OriginAlertmanager, "span", "Every alert label without a topology meaning.", "", ""},
	{AttrAnnotationPrefix + "<name>", "string", OriginAlertmanager, "span", "Every alert annotation.", "", ""},
}
