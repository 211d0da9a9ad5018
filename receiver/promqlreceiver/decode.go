package promqlreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/promqlreceiver"

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/prometheus/common/model"
)

// result is a decoded query answer, every result type as series of samples:
// a vector sample is a series of one, a scalar a series without labels.
type result struct {
	streams     []*model.SampleStream
	unsupported int // native histogram samples, which have no gauge form
	warnings    []string
}

// apiDocument is the Prometheus HTTP API envelope.
type apiDocument struct {
	Status string `json:"status"`
	Data   struct {
		ResultType model.ValueType `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
	ErrorType string   `json:"errorType"`
	Error     string   `json:"error"`
	Warnings  []string `json:"warnings"`
}

// decodeResponse decodes an API answer; an error document becomes errAPI with
// Prometheus' errorType and message.
func decodeResponse(r io.Reader) (*result, error) {
	var doc apiDocument
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %w", errDecode, err)
	}
	switch doc.Status {
	case "success":
	case "error":
		return nil, fmt.Errorf("%w: %s: %s", errAPI, truncate(doc.ErrorType, 64), truncate(doc.Error, 512))
	default:
		return nil, fmt.Errorf("%w: status %q", errDecode, doc.Status)
	}
	res := &result{warnings: doc.Warnings}
	switch doc.Data.ResultType {
	case model.ValMatrix:
		var m model.Matrix
		if err := json.Unmarshal(doc.Data.Result, &m); err != nil {
			return nil, fmt.Errorf("%w: matrix: %w", errDecode, err)
		}
		for _, s := range m {
			res.unsupported += len(s.Histograms)
		}
		res.streams = m
	case model.ValVector:
		var v model.Vector
		if err := json.Unmarshal(doc.Data.Result, &v); err != nil {
			return nil, fmt.Errorf("%w: vector: %w", errDecode, err)
		}
		res.streams = make([]*model.SampleStream, 0, len(v))
		for _, s := range v {
			if s.Histogram != nil {
				res.unsupported++
				continue
			}
			res.streams = append(res.streams, &model.SampleStream{
				Metric: s.Metric,
				Values: []model.SamplePair{{Timestamp: s.Timestamp, Value: s.Value}},
			})
		}
	case model.ValScalar:
		var s model.Scalar
		if err := json.Unmarshal(doc.Data.Result, &s); err != nil {
			return nil, fmt.Errorf("%w: scalar: %w", errDecode, err)
		}
		res.streams = []*model.SampleStream{{
			Metric: model.Metric{},
			Values: []model.SamplePair{{Timestamp: s.Timestamp, Value: s.Value}},
		}}
	default:
		return nil, fmt.Errorf("%w: %q (only vector, matrix and scalar results are metrics)", errUnsupported, doc.Data.ResultType)
	}
	return res, nil
}

// truncate bounds a message from the API before it reaches logs and errors.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
