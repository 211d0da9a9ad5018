package promqlreceiver

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/prometheus/common/model"
)

// largeMatrix is a raw-sample answer the size of a big cluster's DCGM pull:
// series with a DCGM exporter's labels (as federated, exported_*), samples each.
func largeMatrix(series, samples int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"status":"success","data":{"resultType":"matrix","result":[`)
	for i := range series {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"metric":{"__name__":"DCGM_FI_PROF_GR_ENGINE_ACTIVE","DCGM_FI_DRIVER_VERSION":"550.90.07",`+
			`"Hostname":"gpu-node-%d","UUID":"GPU-%08x-7b4d-4e1a-9c55-0d2b8e6f1a70","cluster":"nerc-ocp-prod",`+
			`"container":"nvidia-dcgm-exporter","device":"nvidia%d","exported_container":"trainer",`+
			`"exported_namespace":"team-%d","exported_pod":"train-%d","gpu":"%d","instance":"10.128.4.%d:9400",`+
			`"job":"nvidia-dcgm-exporter","modelName":"NVIDIA A100-SXM4-80GB","namespace":"nvidia-gpu-operator",`+
			`"pci_bus_id":"00000000:17:00.0","pod":"nvidia-dcgm-exporter-x7k2p"},"values":[`,
			i/8, i, i%8, i%50, i, i%8, i%250)
		for s := range samples {
			if s > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `[%d,"0.%06d"]`, 1764320400+300*s, (i*7+s)%1000000)
		}
		b.WriteString("]}")
	}
	b.WriteString("]}}")
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
