// Command otlp-replay posts a recording of the pipeline's output (the OTLP
// JSON lines internal/dashboardfixture records from the real components) to
// a collector's OTLP/HTTP receiver, every timestamp shifted so that the
// recording ends now: make run uses it to give the site hours of history at
// start, as an agent would have sent them, on the same devices the live
// schedule then continues.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/nerc-project/ai-telemetry-collector/internal/dashboardfixture"
)

var errStatus = errors.New("collector refused the request")

func main() {
	endpoint := flag.String("endpoint", "http://localhost:4318", "the collector's OTLP/HTTP receiver")
	dir := flag.String("dir", "tests/dashboards/testdata", "directory of the recording ("+
		dashboardfixture.MetricsFile+", "+dashboardfixture.TracesFile+")")
	end := flag.String("end", "", "when the recording's last sample is placed (RFC 3339; default: now)")
	flag.Parse()

	if err := run(*endpoint, *dir, *end); err != nil {
		fmt.Fprintln(os.Stderr, "otlp-replay:", err)
		os.Exit(1)
	}
}

func run(endpoint, dir, endFlag string) error {
	end := time.Now()
	if endFlag != "" {
		var err error
		if end, err = time.Parse(time.RFC3339Nano, endFlag); err != nil {
			return fmt.Errorf("-end: %w", err)
		}
	}
	metrics, err := dashboardfixture.RecordedMetrics(dir)
	if err != nil {
		return err
	}
	traces, err := dashboardfixture.RecordedTraces(dir)
	if err != nil {
		return err
	}
	by := end.Sub(lastMetricTime(metrics))
	ctx := context.Background()
	var m pmetric.ProtoMarshaler
	for i, md := range metrics {
		shiftMetrics(md, by)
		body, err := m.MarshalMetrics(md)
		if err != nil {
			return err
		}
		if err := post(ctx, endpoint+"/v1/metrics", body); err != nil {
			return fmt.Errorf("metrics request %d: %w", i+1, err)
		}
	}
	var t ptrace.ProtoMarshaler
	for i, td := range traces {
		shiftTraces(td, by)
		body, err := t.MarshalTraces(td)
		if err != nil {
			return err
		}
		if err := post(ctx, endpoint+"/v1/traces", body); err != nil {
			return fmt.Errorf("traces request %d: %w", i+1, err)
		}
	}
	fmt.Printf("otlp-replay: posted %d metrics and %d traces requests, shifted by %s to end at %s\n",
		len(metrics), len(traces), by.Round(time.Second), end.UTC().Format(time.RFC3339))
	return nil
}

func post(ctx context.Context, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: HTTP %d: %s", errStatus, resp.StatusCode, msg)
	}
	return nil
}
