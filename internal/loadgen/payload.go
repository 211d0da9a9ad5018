package loadgen // import "github.com/nerc-project/ai-telemetry-collector/internal/loadgen"

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/nerc-project/ai-telemetry-collector/internal/amwebhook"
)

// Span names the receiver gives the alerts of a payload (configured with
// span_names GPUInUse: gpu.usage, as in configs/gateway.yaml): a firing alert
// of a new session yields a start marker, a resolved one the whole session.
const (
	SpanStart   = "gpu.usage.start"
	SpanSession = "gpu.usage"
)

// Payload builds the webhook bodies of one run. Alert seq (request index *
// AlertsPerRequest + position) has the fingerprint Fingerprint(seq); even
// positions are firing, odd ones resolved, so both of the receiver's paths
// carry load. The run ID keeps the sessions of different runs apart.
type Payload struct {
	RunID            uint32
	AlertsPerRequest int
	// StartsAt is every session's start; sessions differ by fingerprint.
	StartsAt time.Time
}

// Fingerprint is alert seq's fingerprint: 16 hex digits like Alertmanager's,
// the run ID then the sequence number.
func (p Payload) Fingerprint(seq uint64) string {
	return fmt.Sprintf("%08x%08x", p.RunID, seq)
}

// ParseFingerprint returns the sequence number of one of this run's
// fingerprints; ok is false for anything else.
func (p Payload) ParseFingerprint(fp string) (seq uint64, ok bool) {
	if len(fp) != 16 || fp[:8] != fmt.Sprintf("%08x", p.RunID) {
		return 0, false
	}
	seq, err := strconv.ParseUint(fp[8:], 16, 32)
	return seq, err == nil
}

// ExpectedSpan is the name of the span alert seq must yield.
func (p Payload) ExpectedSpan(seq uint64) string {
	if p.firing(seq) {
		return SpanStart
	}
	return SpanSession
}

func (p Payload) firing(seq uint64) bool {
	return seq%uint64(p.AlertsPerRequest)%2 == 0 //nolint:gosec // AlertsPerRequest is positive
}

// Body is the notification of request index req.
func (p Payload) Body(req uint64) ([]byte, error) {
	n := amwebhook.Message{
		Version:  amwebhook.Version,
		GroupKey: `{}:{alertname="GPUInUse"}`,
		Data: &template.Data{
			Status:            "firing",
			Receiver:          "ai-telemetry",
			GroupLabels:       template.KV{"alertname": "GPUInUse"},
			CommonLabels:      template.KV{"alertname": "GPUInUse", "severity": "info"},
			CommonAnnotations: template.KV{},
			ExternalURL:       "https://alertmanager.example.org",
			Alerts:            make(template.Alerts, p.AlertsPerRequest),
		},
	}
	for i := range n.Alerts {
		seq := req*uint64(p.AlertsPerRequest) + uint64(i) //nolint:gosec // positive
		gpu := seq % 8
		a := template.Alert{
			Status: "firing",
			Labels: map[string]string{
				"alertname": "GPUInUse",
				"severity":  "info",
				"cluster":   "nerc-ocp-prod",
				"Hostname":  fmt.Sprintf("wrk-%d", seq/8%100),
				"UUID":      fmt.Sprintf("GPU-%08x-0000-4000-8000-%012x", p.RunID, seq/8),
				"gpu":       strconv.FormatUint(gpu, 10),
				"modelName": "NVIDIA A100-SXM4-80GB",
				"namespace": fmt.Sprintf("team-%c", 'a'+rune(seq%26)),
				"pod":       fmt.Sprintf("train-%d-0", seq),
				"container": "trainer",
			},
			Annotations: map[string]string{
				"summary":   "GPU busy",
				"active_at": strconv.FormatInt(p.StartsAt.Add(-5*time.Minute).Unix(), 10),
			},
			StartsAt:     p.StartsAt,
			GeneratorURL: "https://thanos-querier.example.org/graph?g0.expr=gpu%3Ausage%3Aactive+%3E+0.05",
			Fingerprint:  p.Fingerprint(seq),
		}
		if gpu >= 6 { // the last two GPUs of each node are in MIG mode
			a.Labels["GPU_I_PROFILE"] = "3g.40gb"
			a.Labels["GPU_I_ID"] = strconv.FormatUint(gpu-5, 10)
		}
		if !p.firing(seq) {
			a.Status = "resolved"
			a.EndsAt = p.StartsAt.Add(time.Hour + time.Duration(seq%60)*time.Minute)
		}
		n.Alerts[i] = a
	}
	return json.Marshal(n)
}
