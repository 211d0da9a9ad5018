//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// storedSpan is a span as Jaeger's query API returns it, with span and
// resource (process) attributes merged.
type storedSpan struct {
	TraceID, SpanID, Name string
	Start, End            time.Time
	Attrs                 map[string]any
}

type jaegerTag struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

type jaegerResponse struct {
	Data []struct {
		TraceID string `json:"traceID"`
		Spans   []struct {
			TraceID       string      `json:"traceID"`
			SpanID        string      `json:"spanID"`
			OperationName string      `json:"operationName"`
			StartTime     int64       `json:"startTime"` // µs
			Duration      int64       `json:"duration"`  // µs
			Tags          []jaegerTag `json:"tags"`
			ProcessID     string      `json:"processID"`
		} `json:"spans"`
		Processes map[string]struct {
			ServiceName string      `json:"serviceName"`
			Tags        []jaegerTag `json:"tags"`
		} `json:"processes"`
	} `json:"data"`
}

// jaegerSpans finds every span of a service through Jaeger's HTTP query API
// (/api/traces, the UI's API), unadjusted (raw=true), with starts in [from, to].
func jaegerSpans(queryURL, service string, from, to time.Time) ([]storedSpan, error) {
	q := url.Values{
		"service": {service},
		"start":   {fmt.Sprint(from.UnixMicro())},
		"end":     {fmt.Sprint(to.UnixMicro())},
		"limit":   {"10000"},
		"raw":     {"true"},
	}
	resp, err := http.Get(queryURL + "/api/traces?" + q.Encode()) //nolint:noctx // loopback test URL
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jaeger query: %s", resp.Status)
	}
	var body jaegerResponse
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("jaeger query: %w", err)
	}
	var out []storedSpan
	for _, tr := range body.Data {
		for _, s := range tr.Spans {
			attrs := map[string]any{}
			for _, tag := range tr.Processes[s.ProcessID].Tags {
				attrs[tag.Key] = tag.Value
			}
			for _, tag := range s.Tags {
				attrs[tag.Key] = tag.Value
			}
			start := time.UnixMicro(s.StartTime)
			out = append(out, storedSpan{
				TraceID: s.TraceID, SpanID: s.SpanID, Name: s.OperationName,
				Start: start, End: start.Add(time.Duration(s.Duration) * time.Microsecond), Attrs: attrs,
			})
		}
	}
	return out, nil
}
