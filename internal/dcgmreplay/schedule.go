package dcgmreplay

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// A Schedule scripts which project uses which GPU or MIG slice, from when to
// when, so end-to-end tests know the truth the whole chain must reproduce.
// Times are offsets from the schedule's start.
type Schedule struct {
	Driver      string       `yaml:"driver"`
	GPUs        []GPU        `yaml:"gpus"`
	Allocations []Allocation `yaml:"allocations"`
}

// GPU is one physical GPU of a node; with Slices it is in MIG mode and only its
// slices are exposed, as the DCGM exporter does by default.
type GPU struct {
	Node     string  `yaml:"node"`
	Index    int     `yaml:"index"`
	UUID     string  `yaml:"uuid"`
	Model    string  `yaml:"model"`
	PCIBusID string  `yaml:"pci_bus_id"`
	Slices   []Slice `yaml:"slices"`
}

// Slice is one MIG GPU instance.
type Slice struct {
	ID      string `yaml:"id"`
	Profile string `yaml:"profile"`
}

// Allocation is a pod holding a GPU (or one slice of it) from From to To,
// with the given busy ratio (0-1) all along: above the rules' in-use
// threshold it is a usage session, at 0 an idle allocation.
type Allocation struct {
	Namespace string        `yaml:"namespace"`
	Pod       string        `yaml:"pod"`
	Container string        `yaml:"container"`
	Node      string        `yaml:"node"`
	GPU       int           `yaml:"gpu"`
	Slice     string        `yaml:"slice"`
	From      time.Duration `yaml:"from"`
	To        time.Duration `yaml:"to"`
	Busy      float64       `yaml:"busy"`
}

var (
	errScheduleGPU        = errors.New("allocation names no GPU of the schedule")
	errScheduleTimes      = errors.New("allocation must end after it starts")
	errScheduleBusy       = errors.New("busy must be a ratio from 0 to 1")
	errScheduleOverlap    = errors.New("two allocations hold the same GPU or slice at the same time")
	errScheduleIncomplete = errors.New("GPU needs node, uuid and model")
)

// LoadSchedule reads and validates a schedule file (YAML).
func LoadSchedule(path string) (*Schedule, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading schedule: %w", err)
	}
	var s Schedule
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("parsing schedule %s: %w", path, err)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("schedule %s: %w", path, err)
	}
	return &s, nil
}

// Validate checks that every allocation names a known GPU or slice, has a
// sensible interval and busy ratio, and that no device is held twice at once.
func (s *Schedule) Validate() error {
	for _, g := range s.GPUs {
		if g.Node == "" || g.UUID == "" || g.Model == "" {
			return fmt.Errorf("GPU %d: %w", g.Index, errScheduleIncomplete)
		}
	}
	for i, a := range s.Allocations {
		g := s.gpu(a.Node, a.GPU)
		if g == nil || (a.Slice != "" && !g.hasSlice(a.Slice)) || (a.Slice == "" && len(g.Slices) > 0) {
			return fmt.Errorf("allocation %d (%s/%s on %s GPU %d slice %q): %w", i, a.Namespace, a.Pod, a.Node, a.GPU, a.Slice, errScheduleGPU)
		}
		if a.To <= a.From || a.From < 0 {
			return fmt.Errorf("allocation %d (%s/%s): %w", i, a.Namespace, a.Pod, errScheduleTimes)
		}
		if a.Busy < 0 || a.Busy > 1 {
			return fmt.Errorf("allocation %d (%s/%s): %w", i, a.Namespace, a.Pod, errScheduleBusy)
		}
		for j, b := range s.Allocations[:i] {
			if a.Node == b.Node && a.GPU == b.GPU && a.Slice == b.Slice && a.From < b.To && b.From < a.To {
				return fmt.Errorf("allocations %d and %d: %w", j, i, errScheduleOverlap)
			}
		}
	}
	return nil
}

func (s *Schedule) gpu(node string, index int) *GPU {
	for i := range s.GPUs {
		if s.GPUs[i].Node == node && s.GPUs[i].Index == index {
			return &s.GPUs[i]
		}
	}
	return nil
}

func (g *GPU) hasSlice(id string) bool {
	for _, sl := range g.Slices {
		if sl.ID == id {
			return true
		}
	}
	return false
}

// GPUOf returns the GPU an allocation holds (nil if unknown).
func (s *Schedule) GPUOf(a Allocation) *GPU { return s.gpu(a.Node, a.GPU) }

// ProfileOf returns the MIG profile of an allocation's slice ("" for a whole GPU).
func (s *Schedule) ProfileOf(a Allocation) string {
	g := s.gpu(a.Node, a.GPU)
	if g == nil {
		return ""
	}
	for _, sl := range g.Slices {
		if sl.ID == a.Slice {
			return sl.Profile
		}
	}
	return ""
}

// active returns the allocation holding a device at offset t, if any.
func (s *Schedule) active(node string, gpu int, slice string, t time.Duration) *Allocation {
	for i := range s.Allocations {
		a := &s.Allocations[i]
		if a.Node == node && a.GPU == gpu && a.Slice == slice && t >= a.From && t < a.To {
			return a
		}
	}
	return nil
}

// dcgmMetric is one field the replay exposes, with its value for a device
// given the busy ratio of what runs on it (and whether it is a slice).
type dcgmMetric struct {
	name, help string
	wholeOnly  bool
	value      func(busy float64) string
}

var scheduleMetrics = []dcgmMetric{
	{"DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", true, func(b float64) string { return fmt.Sprintf("%d", int(b*100+0.5)) }},
	{"DCGM_FI_PROF_GR_ENGINE_ACTIVE", "Ratio of time the graphics engine is active.", false, func(b float64) string { return fmt.Sprintf("%f", b) }},
	{"DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", false, func(b float64) string { return fmt.Sprintf("%d", 512+int(b*30000)) }},
	{"DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", false, func(b float64) string { return fmt.Sprintf("%f", 60+b*300) }},
}

// Render writes the exposition the DCGM exporter would answer at offset t
// into the schedule: every GPU (or, in MIG mode, every slice), with the pod
// labels of the allocation holding it at t and its busy ratio.
func (s *Schedule) Render(t time.Duration) []byte {
	type device struct {
		g     *GPU
		slice Slice
	}
	var devices []device
	for i := range s.GPUs {
		g := &s.GPUs[i]
		if len(g.Slices) == 0 {
			devices = append(devices, device{g: g})
			continue
		}
		for _, sl := range g.Slices {
			devices = append(devices, device{g: g, slice: sl})
		}
	}
	sort.SliceStable(devices, func(i, j int) bool {
		a, b := devices[i], devices[j]
		if a.g.Node != b.g.Node {
			return a.g.Node < b.g.Node
		}
		if a.g.Index != b.g.Index {
			return a.g.Index < b.g.Index
		}
		return a.slice.ID < b.slice.ID
	})
	driver := s.Driver
	if driver == "" {
		driver = "550.90.07"
	}
	var buf bytes.Buffer
	for _, m := range scheduleMetrics {
		fmt.Fprintf(&buf, "# HELP %s %s\n# TYPE %s gauge\n", m.name, m.help, m.name)
		for _, d := range devices {
			if m.wholeOnly && d.slice.ID != "" {
				continue
			}
			busy, ns, pod, ctr := 0.0, "", "", ""
			if a := s.active(d.g.Node, d.g.Index, d.slice.ID, t); a != nil {
				busy, ns, pod, ctr = a.Busy, a.Namespace, a.Pod, a.Container
			}
			var l strings.Builder
			fmt.Fprintf(&l, `gpu="%d",UUID="%s",pci_bus_id="%s",device="nvidia%d",modelName="%s",`, d.g.Index, d.g.UUID, d.g.PCIBusID, d.g.Index, d.g.Model)
			if d.slice.ID != "" {
				fmt.Fprintf(&l, `GPU_I_PROFILE="%s",GPU_I_ID="%s",`, d.slice.Profile, d.slice.ID)
			}
			fmt.Fprintf(&l, `Hostname="%s",DCGM_FI_DRIVER_VERSION="%s",container="%s",namespace="%s",pod="%s"`, d.g.Node, driver, ctr, ns, pod)
			fmt.Fprintf(&buf, "%s{%s} %s\n", m.name, l.String(), m.value(busy))
		}
	}
	return buf.Bytes()
}

// Handler serves the schedule's exposition as of now, the schedule having
// started at start (before start, every device is free and idle).
func (s *Schedule) Handler(start time.Time) http.Handler {
	return &scheduleHandler{s: s, start: start, now: time.Now}
}

type scheduleHandler struct {
	s     *Schedule
	start time.Time
	now   func() time.Time
}

func (h *scheduleHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body := h.s.Render(h.now().Sub(h.start))
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	if req.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}
