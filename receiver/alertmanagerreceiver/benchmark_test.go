package alertmanagerreceiver

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver/internal/metadata"
)

// benchmarkBody is a resolved notification of 100 GPU sessions, the shape a
// busy cluster's GPUInUse group sends.
func benchmarkBody(b *testing.B) []byte {
	alerts := make([]testAlert, 100)
	for i := range alerts {
		mig := ""
		if i%4 == 3 {
			mig = fmt.Sprint(i % 7)
		}
		alerts[i] = testAlert{
			status: "resolved", labels: gpuLabels(fmt.Sprintf("team-%d", i%12), fmt.Sprintf("train-%d", i), mig),
			startsAt: t0.Add(time.Duration(i) * time.Minute), endsAt: t1.Add(time.Duration(i) * time.Minute),
			fingerprint: fmt.Sprintf("%016x", i*7919),
		}
	}
	return notificationJSON(b, 0, alerts...)
}

func reportAlertsPerSecond(b *testing.B) {
	b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "alerts/s")
}

// BenchmarkNotification100Alerts decodes the notification and builds the
// 100 session spans, handing them to a no-op consumer; the record starts empty
// each time, so every span is built.
func BenchmarkNotification100Alerts(b *testing.B) {
	body := benchmarkBody(b)
	cfg := createDefaultConfig().(*Config)
	cfg.Hub = "moc"
	cfg.SpanNames = map[string]string{"GPUInUse": "gpu.usage"}
	r, err := newAlertmanagerReceiver(receivertest.NewNopSettings(metadata.Type), cfg)
	if err != nil {
		b.Fatal(err)
	}
	r.traces = consumertest.NewNop()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r.record = newSessionRecord(cfg.SessionRecordSize)
		n, err := decodeNotification(body)
		if err != nil {
			b.Fatal(err)
		}
		if res := r.process(ctx, n, body, nil); res.consumeErr != nil || len(res.invalid) > 0 {
			b.Fatal(res)
		}
	}
	reportAlertsPerSecond(b)
}

// webhookMessage is Alertmanager's own notify/webhook.Message.
type webhookMessage struct {
	*template.Data
	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
}

// BenchmarkAlertmanagerTemplateDecode100Alerts is the floor: decoding the same
// body into Alertmanager's own types, with no spans built.
func BenchmarkAlertmanagerTemplateDecode100Alerts(b *testing.B) {
	body := benchmarkBody(b)
	b.ReportAllocs()
	for b.Loop() {
		var m webhookMessage
		if err := json.Unmarshal(body, &m); err != nil || len(m.Alerts) != 100 {
			b.Fatal(err)
		}
	}
	reportAlertsPerSecond(b)
}
