package promqlreceiver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/nerc-project/ai-telemetry-collector/receiver/promqlreceiver/internal/metadata"
)

// writeMatrix writes a raw-sample answer the size of a big cluster's DCGM
// pull: series with a DCGM exporter's labels (as federated, exported_*), each
// with a sample at every one of times (Unix seconds).
func writeMatrix(w io.Writer, series int, times []int64) {
	_, _ = io.WriteString(w, `{"status":"success","data":{"resultType":"matrix","result":[`)
	for i := range series {
		if i > 0 {
			_, _ = io.WriteString(w, ",")
		}
		_, _ = fmt.Fprintf(w, `{"metric":{"__name__":"DCGM_FI_PROF_GR_ENGINE_ACTIVE","DCGM_FI_DRIVER_VERSION":"550.90.07",`+
			`"Hostname":"gpu-node-%d","UUID":"GPU-%08x-7b4d-4e1a-9c55-0d2b8e6f1a70","cluster":"nerc-ocp-prod",`+
			`"container":"nvidia-dcgm-exporter","device":"nvidia%d","exported_container":"trainer",`+
			`"exported_namespace":"team-%d","exported_pod":"train-%d","gpu":"%d","instance":"10.128.4.%d:9400",`+
			`"job":"nvidia-dcgm-exporter","modelName":"NVIDIA A100-SXM4-80GB","namespace":"nvidia-gpu-operator",`+
			`"pci_bus_id":"00000000:17:00.0","pod":"nvidia-dcgm-exporter-x7k2p"},"values":[`,
			i/8, i, i%8, i%50, i, i%8, i%250)
		for s, ts := range times {
			if s > 0 {
				_, _ = io.WriteString(w, ",")
			}
			_, _ = fmt.Fprintf(w, `[%d,"0.%06d"]`, ts, (i*7+s)%1000000)
		}
		_, _ = io.WriteString(w, "]}")
	}
	_, _ = io.WriteString(w, "]}}")
}

// largeMatrix is writeMatrix's answer with samples every 300 s.
func largeMatrix(series, samples int) []byte {
	times := make([]int64, samples)
	for s := range times {
		times[s] = 1764320400 + 300*int64(s)
	}
	var b bytes.Buffer
	writeMatrix(&b, series, times)
	return b.Bytes()
}

// BenchmarkDecodeAndConvert: 1,000 series x 12 samples (one hour of ACM data
// for 1,000 GPUs) from the JSON answer to OTLP gauge points.
func BenchmarkDecodeAndConvert(b *testing.B) {
	const series, samples = 1000, 12
	doc := largeMatrix(series, samples)
	q := query{id: "dcgm/nerc-ocp-prod", name: "dcgm", cluster: "nerc-ocp-prod"}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := decodeResponse(bytes.NewReader(doc))
		if err != nil {
			b.Fatal(err)
		}
		if out := convert(q, res, 0, model.Latest, ""); out.points != series*samples {
			b.Fatalf("%d points", out.points)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*series*samples), "ns/point")
}

// BenchmarkCatchUp6h is the gateway's worst catch-up: 6 hours of ACM's 300 s
// raw samples of 2,000 DCGM series (144,000 points) after an outage, fetched
// from a Prometheus API (a local fake that streams its answers) at once or in
// 30-minute chunks. peak-heap-MiB is the heap in use, above the heap before
// the run, when a batch reaches the next consumer.
func BenchmarkCatchUp6h(b *testing.B) {
	const series, step = 2000, 5 * time.Minute
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	api := newFakeAPIWriter(b, func(w io.Writer, req apiRequest) {
		var secs int
		_, _ = fmt.Sscanf(req.query, "DCGM_FI_DEV_GPU_UTIL[%ds]", &secs)
		from := req.time.Add(-time.Duration(secs) * time.Second)
		// Samples every step since now-6h, in (from, req.time].
		first := now.Add(-6 * time.Hour)
		if from.After(first) {
			first = from.Truncate(step)
		}
		var times []int64
		for ts := first.Add(step); !ts.After(req.time); ts = ts.Add(step) {
			times = append(times, ts.Unix())
		}
		writeMatrix(w, series, times)
	})
	for _, chunk := range []time.Duration{0, 30 * time.Minute} {
		b.Run("catch_up_chunk="+chunk.String(), func(b *testing.B) {
			cfg := testConfig(api.URL, QueryConfig{Name: "dcgm", Query: `DCGM_FI_DEV_GPU_UTIL`, Unscoped: true, RawSamples: true})
			cfg.Interval, cfg.MaxCatchUp, cfg.CatchUpChunk = step, 6*time.Hour, chunk
			var peak, base uint64
			points := 0
			next := consumerFunc(func(_ context.Context, md pmetric.Metrics) error {
				points += md.DataPointCount()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse-min(ms.HeapInuse, base))
				return nil
			})
			r, err := newReceiver(receivertest.NewNopSettings(metadata.Type), cfg, next)
			require.NoError(b, err)
			require.NoError(b, r.setup(context.Background(), componenttest.NewNopHost()))
			defer func() { require.NoError(b, r.Shutdown(context.Background())) }()
			r.now = func() time.Time { return now }
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				points = 0
				require.NoError(b, r.cursors.set(context.Background(), "dcgm", model.TimeFromUnixNano(now.Add(-6*time.Hour).UnixNano())))
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				base = ms.HeapInuse
				b.StartTimer()
				r.run(context.Background(), r.queries[0], &queryState{})
				if points != series*72 {
					b.Fatalf("%d points", points)
				}
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}
