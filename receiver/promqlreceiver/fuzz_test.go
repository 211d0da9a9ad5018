package promqlreceiver

import (
	"bytes"
	"errors"
	"testing"

	"github.com/prometheus/common/model"
)

// FuzzDecodeResponse: any answer decodes to points or to a classified
// error, never a panic; and what decodes converts.
func FuzzDecodeResponse(f *testing.F) {
	for _, doc := range []string{vectorDoc, matrixDoc, scalarDoc, stringDoc, errorDoc, histogramDoc, emptyVector, unknownStatus} {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		res, err := decodeResponse(bytes.NewReader(doc))
		if err != nil {
			if !errors.Is(err, errDecode) && !errors.Is(err, errAPI) && !errors.Is(err, errUnsupported) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		out := convert(query{name: "q", cluster: "c"}, res, 0, model.Latest, "")
		if out.points+out.skipped != countValues(res) {
			t.Fatalf("%d points + %d skipped != %d samples", out.points, out.skipped, countValues(res))
		}
	})
}

func countValues(res *result) int {
	n := 0
	for _, s := range res.streams {
		n += len(s.Values)
	}
	return n
}
