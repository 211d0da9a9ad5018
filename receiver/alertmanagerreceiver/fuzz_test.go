package alertmanagerreceiver

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
	"github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver/internal/metadata"
)

// FuzzNotification feeds arbitrary bodies through decoding, validation, span
// building and the record: nothing may panic, and every span built must be
// well formed. `make test` runs it briefly; `go test -fuzz` runs it for real.
func FuzzNotification(f *testing.F) {
	f.Add(notificationJSON(f, 0, testAlert{status: "firing", labels: gpuLabels("team-a", "p", "1"), startsAt: t0, fingerprint: "aa"}))
	f.Add(notificationJSON(f, 3, testAlert{status: "resolved", labels: gpuLabels("team-a", "p", ""), startsAt: t0, endsAt: t1, fingerprint: "bb"}))
	f.Add([]byte(`{"version":"4","alerts":[{"status":"resolved","startsAt":"2026-01-01T00:00:00Z","endsAt":"2025-01-01T00:00:00Z","fingerprint":"x"}]}`))
	f.Add([]byte(`{"version":"4","alerts":[{"labels":{"cluster":"local-cluster","":"","GPU_I_ID":""}}]}`))
	f.Add([]byte(`{"version":"4","alerts":[{"status":"firing","startsAt":"2026-01-01T00:00:00Z","fingerprint":"x","labels":{"cluster":"c-PROJECT-a#GET#","exported_namespace":"b","gpu":"0,1","Hostname":"N"}}]}`))
	f.Add([]byte(`{"version":4}`))
	f.Add([]byte(`[]`))

	cfg := createDefaultConfig().(*Config)
	cfg.Hub = "moc"
	cfg.SpanNames = map[string]string{"GPUInUse": "gpu.usage"}
	sink := new(consumertest.TracesSink)
	r, err := newAlertmanagerReceiver(receivertest.NewNopSettings(metadata.Type), cfg)
	if err != nil {
		f.Fatal(err)
	}
	r.traces = sink

	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := decodeNotification(body)
		if err != nil {
			if reason(err) == "other" {
				t.Fatalf("decode error without a reason: %v", err)
			}
			return
		}
		sink.Reset()
		result := r.process(context.Background(), n, body)
		if result.consumeErr != nil {
			t.Fatalf("nop consumer failed: %v", result.consumeErr)
		}
		for _, td := range sink.AllTraces() {
			for _, rs := range td.ResourceSpans().All() {
				for _, ss := range rs.ScopeSpans().All() {
					for _, s := range ss.Spans().All() {
						if s.TraceID().IsEmpty() || s.SpanID().IsEmpty() {
							t.Fatalf("span %q has an empty ID", s.Name())
						}
						if s.EndTimestamp() < s.StartTimestamp() {
							t.Fatalf("span %q ends before it starts", s.Name())
						}
						// Only valid names reach a resource or a tenant.
						if err := topology.ValidateAttributes(s.Attributes()); err != nil {
							t.Fatalf("span %q: %v", s.Name(), err)
						}
						if err := topology.ValidateAttributes(rs.Resource().Attributes()); err != nil {
							t.Fatalf("resource of span %q: %v", s.Name(), err)
						}
						if res, ok := s.Attributes().Get(topology.AttrKeycloakResource); ok {
							if err := topology.ValidateResource(res.Str()); err != nil {
								t.Fatalf("span %q: %v", s.Name(), err)
							}
						}
					}
				}
			}
		}
	})
}
