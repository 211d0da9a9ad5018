package alertmanagerreceiver

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver/internal/metadata"
)

// benchmarkBody is a resolved notification of 100 GPU sessions, the shape a
// busy cluster's GPUInUse group sends.
func benchmarkBody(b testing.TB) []byte {
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
		r.committer = &groupCommitter{rec: r.record}
		n, err := decodeNotification(body)
		if err != nil {
			b.Fatal(err)
		}
		if res := r.process(ctx, n, body); res.consumeErr != nil || len(res.invalid) > 0 {
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

// BenchmarkNotificationsConcurrentFileStorage is the load test's shape without
// HTTP: notifications of 10 new sessions each, handled concurrently, with the
// session record on a real file_storage. Each op is one notification.
func BenchmarkNotificationsConcurrentFileStorage(b *testing.B) {
	// fsync=true is the gateway's setting: a batch is on disk, not just in the
	// page cache, when its notifications are acknowledged.
	for _, fsync := range []bool{false, true} {
		b.Run(fmt.Sprintf("fsync=%t", fsync), func(b *testing.B) { benchmarkNotificationsConcurrent(b, fsync) })
	}
}

func benchmarkNotificationsConcurrent(b *testing.B, fsync bool) {
	ctx := context.Background()
	host := newFileStorageFsync(b, b.TempDir(), fsync)
	defer func() { _ = host.ext.Shutdown(ctx) }()
	cfg := createDefaultConfig().(*Config)
	cfg.Hub = "moc"
	cfg.SpanNames = map[string]string{"GPUInUse": "gpu.usage"}
	cfg.Storage = &host.id
	cfg.SessionRecordSize = 20000 // small enough that the benchmark evicts
	r, err := newAlertmanagerReceiver(receivertest.NewNopSettings(metadata.Type), cfg)
	if err != nil {
		b.Fatal(err)
	}
	r.traces = consumertest.NewNop()
	client, err := r.storageClient(ctx, host)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = client.Close(ctx) }()
	if err := r.record.attach(ctx, client); err != nil {
		b.Fatal(err)
	}
	// Bodies prepared up front: each notification has 10 sessions never seen before.
	const bodies = 4096
	pool := make([][]byte, bodies)
	for i := range pool {
		alerts := make([]testAlert, 10)
		for j := range alerts {
			alerts[j] = testAlert{
				status: "firing", labels: gpuLabels(fmt.Sprintf("team-%d", j), fmt.Sprintf("train-%d", i), ""),
				startsAt: t0.Add(time.Duration(i) * time.Minute), fingerprint: fmt.Sprintf("%08x%08x", i, j),
			}
			if j%2 == 1 {
				alerts[j].status, alerts[j].endsAt = "resolved", alerts[j].startsAt.Add(time.Hour)
			}
		}
		pool[i] = notificationJSON(b, 0, alerts...)
	}
	var next, batches atomic.Int64
	r.committer.onBatch = func(int, int) { batches.Add(1) }
	b.ReportAllocs()
	b.SetParallelism(16) // many requests in flight, as under load
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			body := pool[i%bodies]
			n, err := decodeNotification(body)
			if err != nil {
				b.Error(err)
				return
			}
			// Later rounds over the pool are repeats with a new startsAt: new sessions again.
			for k := range n.Alerts {
				shift := time.Duration(i/bodies) * time.Second
				n.Alerts[k].StartsAt = n.Alerts[k].StartsAt.Add(shift)
				if !n.Alerts[k].EndsAt.IsZero() {
					n.Alerts[k].EndsAt = n.Alerts[k].EndsAt.Add(shift)
				}
			}
			if res := r.process(ctx, n, body); res.consumeErr != nil || len(res.invalid) > 0 {
				b.Error(res)
				return
			}
		}
	})
	b.ReportMetric(float64(10*b.N)/b.Elapsed().Seconds(), "alerts/s")
	b.ReportMetric(float64(b.N)/float64(max(batches.Load(), 1)), "notifications/commit")
}
