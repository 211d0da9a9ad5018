package gpustore // import "github.com/nerc-project/ai-telemetry-collector/internal/gpustore"

import "time"

// Hub is a group of clusters (NERC's "moc").
type Hub struct {
	Name     string    `json:"name"`
	Clusters int       `json:"clusters"`
	GPUs     int       `json:"gpus"`
	LastSeen time.Time `json:"lastSeen"`
}

// Cluster is one OpenShift/Kubernetes cluster of a hub.
type Cluster struct {
	Hub      string    `json:"hub"`
	Name     string    `json:"name"`
	Nodes    int       `json:"nodes"`
	GPUs     int       `json:"gpus"`
	Slices   int       `json:"slices"`
	LastSeen time.Time `json:"lastSeen"`
}

// Node is a GPU node of a cluster.
type Node struct {
	Hub      string    `json:"hub"`
	Cluster  string    `json:"cluster"`
	Name     string    `json:"name"`
	GPUs     int       `json:"gpus"`
	Slices   int       `json:"slices"`
	Models   []string  `json:"models"`
	LastSeen time.Time `json:"lastSeen"`
}

// State is what a GPU or slice was doing at its last sample.
type State string

// States of a GPU device or slice, from its last sample.
const (
	StateInUse State = "in_use" // allocated, busy at or above IdleBusyThreshold
	StateIdle  State = "idle"   // allocated, busy below IdleBusyThreshold
	StateFree  State = "free"   // no pod holds it
	StateError State = "error"  // its last sample reported an XID error
)

// Device is a whole GPU (ID is its UUID, hw.id). A GPU in MIG mode has
// Slices instead of a holder of its own.
type Device struct {
	Hub      string    `json:"hub"`
	Cluster  string    `json:"cluster"`
	Node     string    `json:"node"`
	ID       string    `json:"id"`
	Index    string    `json:"index"`
	Model    string    `json:"model"`
	MIG      bool      `json:"mig"`
	Slices   int       `json:"slices"`
	State    State     `json:"state"`
	Holder   *Holder   `json:"holder,omitempty"`
	LastXID  int       `json:"lastXid"`
	LastSeen time.Time `json:"lastSeen"`
}

// Slice is a MIG slice: ID is hw.id ("{GPU UUID}/{GPU instance id}"),
// Parent the GPU's UUID, Fraction its share of the GPU's compute.
type Slice struct {
	Hub      string    `json:"hub"`
	Cluster  string    `json:"cluster"`
	Node     string    `json:"node"`
	ID       string    `json:"id"`
	Parent   string    `json:"parent"`
	Profile  string    `json:"profile"`
	Fraction float64   `json:"fraction"`
	Model    string    `json:"model"`
	State    State     `json:"state"`
	Holder   *Holder   `json:"holder,omitempty"`
	LastSeen time.Time `json:"lastSeen"`
}

// Holder is the pod holding a device or slice at its last sample.
type Holder struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
}

// Project is a research project: a namespace on a cluster, with the metadata
// the gpumodel processor attached (ColdFront or the projects file).
type Project struct {
	Hub            string    `json:"hub"`
	Cluster        string    `json:"cluster"`
	Namespace      string    `json:"namespace"`
	ID             string    `json:"id,omitempty"`
	Name           string    `json:"name,omitempty"`
	PI             string    `json:"pi,omitempty"`
	FieldOfScience string    `json:"fieldOfScience,omitempty"`
	GPUQuota       *float64  `json:"gpuQuota,omitempty"`
	GPUAllocation  *float64  `json:"gpuAllocation,omitempty"`
	GPURequests    *float64  `json:"gpuRequests,omitempty"`
	LastSeen       time.Time `json:"lastSeen"`
}

// SessionKind is the span name of a usage session.
type SessionKind string

// Session kinds (the Alertmanager receiver's span names).
const (
	SessionUsage SessionKind = "gpu.usage"
	SessionIdle  SessionKind = "gpu.idle"
)

// Session is a GPU usage (or idle) session: a span of the Alertmanager
// receiver. End is nil while it is open (only its start span was stored).
type Session struct {
	TraceID   string      `json:"traceId"`
	SpanID    string      `json:"spanId"`
	Kind      SessionKind `json:"kind"`
	Hub       string      `json:"hub"`
	Cluster   string      `json:"cluster"`
	Node      string      `json:"node"`
	Namespace string      `json:"namespace"`
	Pod       string      `json:"pod"`
	Device    string      `json:"device"`
	Profile   string      `json:"profile,omitempty"`
	Fraction  float64     `json:"fraction"`
	Start     time.Time   `json:"start"`
	End       *time.Time  `json:"end,omitempty"`
	// DurationS runs to End, or to the read's time for an open session.
	DurationS float64 `json:"durationS"`
	// Busy is the sample mean of the busy ratio over the session, when the
	// store holds samples of its device and pod in that time.
	Busy *float64 `json:"busy,omitempty"`
}

// GPUHoursRow is one row of the GPU-hours report: a step (the whole window
// when unstepped) and the values of the aggregation keys.
type GPUHoursRow struct {
	Start time.Time         `json:"start"`
	End   time.Time         `json:"end"`
	Keys  map[string]string `json:"keys"`
	// Allocated, Used and Idle are GPU-hours as docs/dashboards.md defines them.
	Allocated float64 `json:"allocated"`
	Used      float64 `json:"used"`
	Idle      float64 `json:"idle"`
	// Devices is the number of distinct GPUs and slices held.
	Devices int `json:"devices"`
}

// IdleAllocation is a device or slice held by a pod while below the idle
// threshold: now (its last sample) or over a window.
type IdleAllocation struct {
	Hub       string    `json:"hub"`
	Cluster   string    `json:"cluster"`
	Node      string    `json:"node"`
	Device    string    `json:"device"`
	Namespace string    `json:"namespace"`
	Pod       string    `json:"pod"`
	Fraction  float64   `json:"fraction"`
	IdleHours float64   `json:"idleHours"`
	Since     time.Time `json:"since"`
	LastSeen  time.Time `json:"lastSeen"`
}

// UtilizationPoint is one bucket of a utilization series: means over the
// bucket's samples (Busy weighted by fraction), maxima for memory, power and
// temperature.
type UtilizationPoint struct {
	Time      time.Time `json:"time"`
	Busy      float64   `json:"busy"`
	FBUsedMiB float64   `json:"fbUsedMiB"`
	PowerW    float64   `json:"powerW"`
	TempC     float64   `json:"tempC"`
	Samples   int       `json:"samples"`
}
