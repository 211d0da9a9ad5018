// Package dashboardfixture turns the dashboards' known schedule
// (tests/dashboards/testdata/schedule.json) into what the real pipeline
// receives: DCGM expositions with explicit sample timestamps, one per scrape
// of each source, and the Alertmanager webhooks the project's rules would
// send for the schedule's allocations. Its test replays them through the
// prometheus receiver, the gpumodel processor, the alertmanager receiver and
// the file exporter, and keeps the output as the dashboards' test fixtures.
package dashboardfixture // import "github.com/nerc-project/ai-telemetry-collector/internal/dashboardfixture"

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"

	"github.com/nerc-project/ai-telemetry-collector/internal/amwebhook"
)

var (
	errUnknownSource = errors.New("unknown source")
	errUnknownDevice = errors.New("unknown device")
	errBadSchedule   = errors.New("bad schedule")
)

// Schedule is schedule.json.
type Schedule struct {
	From        time.Time    `json:"from"`
	Hours       float64      `json:"hours"`
	Hub         string       `json:"hub"`
	Cluster     string       `json:"cluster"`
	Sources     []Source     `json:"sources"`
	Devices     []Device     `json:"devices"`
	Allocations []Allocation `json:"allocations"`
	XIDErrors   []XIDError   `json:"xid_errors"`
	Alerts      AlertRules   `json:"alerts"`
}

// Source is one scrape target: a DCGM exporter scraped directly by an agent
// ("direct") or the ACM hub's federation endpoint ("federated": workload
// labels exported_*, the plain ones naming the exporter pod, a cluster label).
type Source struct {
	Name              string `json:"name"`
	Dialect           string `json:"dialect"`
	IntervalS         int    `json:"interval_s"`
	Node              string `json:"node"`
	ExporterNamespace string `json:"exporter_namespace"`
	ExporterPod       string `json:"exporter_pod"`
}

// Device is a whole GPU or a MIG slice.
type Device struct {
	Source     string  `json:"source"`
	GPU        int     `json:"gpu"`
	UUID       string  `json:"uuid"`
	Model      string  `json:"model"`
	MIGProfile string  `json:"mig_profile"`
	MIGID      int     `json:"mig_id"`
	Idle       Reading `json:"idle"`
}

// Reading is what a device reports while nothing else is scheduled on it.
type Reading struct {
	PowerW float64 `json:"power_w"`
	TempC  float64 `json:"temp_c"`
}

// Allocation is a pod holding a device for a time.
type Allocation struct {
	Device    string  `json:"device"`
	Namespace string  `json:"namespace"`
	Pod       string  `json:"pod"`
	Container string  `json:"container"`
	StartH    float64 `json:"start_h"`
	Hours     float64 `json:"hours"`
	Busy      float64 `json:"busy"`
	FBUsedMiB float64 `json:"fb_used_mib"`
	PowerW    float64 `json:"power_w"`
	TempC     float64 `json:"temp_c"`
}

// XIDError is one sample reporting an XID code.
type XIDError struct {
	Device string  `json:"device"`
	AtH    float64 `json:"at_h"`
	Code   int     `json:"code"`
}

// AlertRules mirrors configs/prometheus/gpu-usage-rules.yaml: which alert an
// allocation fires and after how long.
type AlertRules struct {
	BusyThreshold float64   `json:"busy_threshold"`
	InUse         AlertRule `json:"in_use"`
	Idle          AlertRule `json:"idle"`
}

// AlertRule is one alerting rule and the span name the receiver maps it to.
type AlertRule struct {
	AlertName string `json:"alertname"`
	Span      string `json:"span"`
	ForS      int    `json:"for_s"`
}

// HWID is the device's hw.id as the gpumodel processor writes it.
func (d Device) HWID() string {
	if d.MIGProfile != "" {
		return d.UUID + "/" + strconv.Itoa(d.MIGID)
	}
	return d.UUID
}

// Load reads and checks a schedule.
func Load(path string) (*Schedule, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var s Schedule
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}

func (s *Schedule) check() error {
	if s.From.IsZero() || s.Hours <= 0 || s.Cluster == "" || s.Hub == "" {
		return fmt.Errorf("%w: from, hours, hub and cluster are required", errBadSchedule)
	}
	for _, src := range s.Sources {
		if src.IntervalS <= 0 || (src.Dialect != "direct" && src.Dialect != "federated") {
			return fmt.Errorf("%w: source %q needs interval_s and dialect direct or federated", errBadSchedule, src.Name)
		}
	}
	for _, d := range s.Devices {
		if _, err := s.source(d.Source); err != nil {
			return err
		}
	}
	for _, a := range s.Allocations {
		if _, err := s.device(a.Device); err != nil {
			return err
		}
	}
	for _, x := range s.XIDErrors {
		if _, err := s.device(x.Device); err != nil {
			return err
		}
	}
	return nil
}

func (s *Schedule) source(name string) (Source, error) {
	for _, src := range s.Sources {
		if src.Name == name {
			return src, nil
		}
	}
	return Source{}, fmt.Errorf("%w: %q", errUnknownSource, name)
}

func (s *Schedule) device(hwID string) (Device, error) {
	for _, d := range s.Devices {
		if d.HWID() == hwID {
			return d, nil
		}
	}
	return Device{}, fmt.Errorf("%w: %q", errUnknownDevice, hwID)
}

func (s *Schedule) at(h float64) time.Time {
	return s.From.Add(time.Duration(math.Round(h * float64(time.Hour))))
}

// allocationAt is the allocation holding hwID at t, if any.
func (s *Schedule) allocationAt(hwID string, t time.Time) (Allocation, bool) {
	for _, a := range s.Allocations {
		if a.Device == hwID && !t.Before(s.at(a.StartH)) && t.Before(s.at(a.StartH+a.Hours)) {
			return a, true
		}
	}
	return Allocation{}, false
}

// Steps are the sample times of a source over the schedule.
func (s *Schedule) Steps(src Source) []time.Time {
	n := int(math.Round(s.Hours * 3600 / float64(src.IntervalS)))
	out := make([]time.Time, n)
	for i := range out {
		out[i] = s.From.Add(time.Duration(i*src.IntervalS) * time.Second)
	}
	return out
}

type sample struct {
	name   string
	labels []string // alternating name, value, in print order
	value  string
}

// frameBufferMiB is the frame buffer of an A100 80GB and of its 3g.40gb slice.
func frameBufferMiB(d Device) float64 {
	if d.MIGProfile != "" {
		return 40192
	}
	return 81920
}

// Exposition is what the source serves at t: the Prometheus text format with
// each sample's timestamp, as a federation endpoint writes it.
func (s *Schedule) Exposition(src Source, t time.Time) []byte {
	var samples []sample
	for _, d := range s.Devices {
		if d.Source != src.Name {
			continue
		}
		labels := []string{
			"gpu", strconv.Itoa(d.GPU), "UUID", d.UUID, "device", "nvidia" + strconv.Itoa(d.GPU),
			"modelName", d.Model,
		}
		if d.MIGProfile != "" {
			labels = append(labels, "GPU_I_PROFILE", d.MIGProfile, "GPU_I_ID", strconv.Itoa(d.MIGID))
		}
		labels = append(labels, "Hostname", src.Node, "DCGM_FI_DRIVER_VERSION", "550.90.07")
		a, allocated := s.allocationAt(d.HWID(), t)
		switch {
		case src.Dialect == "federated":
			labels = append(labels, "cluster", s.Cluster, "container", "nvidia-dcgm-exporter",
				"namespace", src.ExporterNamespace, "pod", src.ExporterPod)
			if allocated {
				labels = append(labels, "exported_container", a.Container, "exported_namespace", a.Namespace,
					"exported_pod", a.Pod)
			}
		case allocated:
			labels = append(labels, "container", a.Container, "namespace", a.Namespace, "pod", a.Pod)
		default:
			labels = append(labels, "container", "", "namespace", "", "pod", "")
		}
		busy, fb, power, temp := 0.0, 0.0, d.Idle.PowerW, d.Idle.TempC
		if allocated {
			busy, fb, power, temp = a.Busy, a.FBUsedMiB, a.PowerW, a.TempC
		}
		add := func(name, value string) { samples = append(samples, sample{name, labels, value}) }
		add("DCGM_FI_PROF_GR_ENGINE_ACTIVE", strconv.FormatFloat(busy, 'f', 6, 64))
		add("DCGM_FI_DEV_FB_USED", strconv.FormatFloat(fb, 'f', 0, 64))
		add("DCGM_FI_DEV_FB_FREE", strconv.FormatFloat(frameBufferMiB(d)-fb, 'f', 0, 64))
		if d.MIGProfile != "" {
			continue // DCGM has no GPU_UTIL, power or temperature per slice
		}
		add("DCGM_FI_DEV_GPU_UTIL", strconv.FormatFloat(math.Round(busy*100), 'f', 0, 64))
		add("DCGM_FI_DEV_POWER_USAGE", strconv.FormatFloat(power, 'f', 6, 64))
		add("DCGM_FI_DEV_GPU_TEMP", strconv.FormatFloat(temp, 'f', 0, 64))
		xid := 0
		for _, x := range s.XIDErrors {
			at := s.at(x.AtH)
			if x.Device == d.HWID() && !t.Before(at) && t.Before(at.Add(time.Duration(src.IntervalS)*time.Second)) {
				xid = x.Code
			}
		}
		add("DCGM_FI_DEV_XID_ERRORS", strconv.Itoa(xid))
	}
	sort.SliceStable(samples, func(i, j int) bool { return samples[i].name < samples[j].name })
	var b bytes.Buffer
	ms := t.UnixMilli()
	for i, smp := range samples {
		if i == 0 || samples[i-1].name != smp.name {
			fmt.Fprintf(&b, "# TYPE %s gauge\n", smp.name)
		}
		b.WriteString(smp.name)
		b.WriteByte('{')
		for j := 0; j < len(smp.labels); j += 2 {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%s=%q", smp.labels[j], smp.labels[j+1])
		}
		fmt.Fprintf(&b, "} %s %d\n", smp.value, ms)
	}
	return b.Bytes()
}

// Webhook is one Alertmanager notification (webhook version 4).
type Webhook struct {
	At   time.Time
	Body []byte
}

// Webhooks are the notifications Alertmanager would deliver for the
// schedule's allocations, in time order: a firing one when the rule fires
// (for: after the allocation began; annotation active_at = the start, as the
// project's rules set it) and a resolved one when the allocation ends. The
// labels are the rules' normalized set; the fingerprint is Alertmanager's
// own (model.LabelSet.Fingerprint).
func (s *Schedule) Webhooks() ([]Webhook, error) {
	var out []Webhook
	for _, a := range s.Allocations {
		d, err := s.device(a.Device)
		if err != nil {
			return nil, err
		}
		src, err := s.source(d.Source)
		if err != nil {
			return nil, err
		}
		rule := s.Alerts.InUse
		if a.Busy < s.Alerts.BusyThreshold {
			rule = s.Alerts.Idle
		}
		labels := map[string]string{
			"alertname": rule.AlertName, "severity": "info", "cluster": s.Cluster,
			"node": src.Node, "UUID": d.UUID, "gpu": strconv.Itoa(d.GPU), "modelName": d.Model,
			"namespace": a.Namespace, "pod": a.Pod, "container": a.Container,
		}
		if d.MIGProfile != "" {
			labels["GPU_I_PROFILE"], labels["GPU_I_ID"] = d.MIGProfile, strconv.Itoa(d.MIGID)
		}
		ls := model.LabelSet{}
		for k, v := range labels {
			ls[model.LabelName(k)] = model.LabelValue(v)
		}
		start, end := s.at(a.StartH), s.at(a.StartH+a.Hours)
		fired := start.Add(time.Duration(rule.ForS) * time.Second)
		if !fired.Before(end) {
			continue // never fired: shorter than the rule's for:
		}
		al := template.Alert{
			Labels: labels, StartsAt: fired,
			Annotations:  map[string]string{"active_at": strconv.FormatInt(start.Unix(), 10)},
			GeneratorURL: "https://thanos-querier.example.org/graph?g0.expr=ALERTS",
			Fingerprint:  ls.Fingerprint().String(),
		}
		for _, ev := range []struct {
			status string
			at     time.Time
			endsAt time.Time
		}{{"firing", fired, time.Time{}}, {"resolved", end, end}} {
			al.Status, al.EndsAt = ev.status, ev.endsAt
			if al.EndsAt.IsZero() {
				al.EndsAt = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
			}
			body, err := json.Marshal(amwebhook.Message{
				Version:  amwebhook.Version,
				GroupKey: fmt.Sprintf("{}:{alertname=%q, namespace=%q}", rule.AlertName, a.Namespace),
				Data: &template.Data{
					Status: ev.status, Receiver: "ai-telemetry",
					GroupLabels:  template.KV{"alertname": rule.AlertName, "namespace": a.Namespace},
					CommonLabels: labels, CommonAnnotations: al.Annotations,
					ExternalURL: "https://alertmanager.example.org", Alerts: template.Alerts{al},
				},
			})
			if err != nil {
				return nil, err
			}
			out = append(out, Webhook{At: ev.at, Body: body})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}

// SourceByName is the named source.
func (s *Schedule) SourceByName(name string) (Source, error) { return s.source(name) }
