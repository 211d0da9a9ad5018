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
// resource (process) attributes merged, and the tenant it was read under.
type storedSpan struct {
	TraceID, SpanID, Name string
	Start, End            time.Time
	Attrs                 map[string]any
	Tenant                string
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

// tenantHeader is the header the trace store reads the tenant from, as Tempo
// does; a Grafana data source sends it with every query.
const tenantHeader = "X-Scope-OrgID"

// jaegerGet asks Jaeger's HTTP query API (the UI's) under a tenant ("" sends
// no tenant header) and returns the status and the spans found.
func jaegerGet(queryURL, tenant, path string, q url.Values) (int, []storedSpan, error) {
	req, err := http.NewRequest(http.MethodGet, queryURL+path+"?"+q.Encode(), nil) //nolint:noctx // loopback test URL
	if err != nil {
		return 0, nil, err
	}
	if tenant != "" {
		req.Header.Set(tenantHeader, tenant)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil, nil
	}
	var body jaegerResponse
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("jaeger query: %w", err)
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
				Tenant: tenant,
			})
		}
	}
	return resp.StatusCode, out, nil
}

// jaegerSpans finds every span of a service under a tenant (/api/traces,
// unadjusted: raw=true) with starts in [from, to].
func jaegerSpans(queryURL, tenant, service string, from, to time.Time) ([]storedSpan, error) {
	status, spans, err := jaegerGet(queryURL, tenant, "/api/traces", url.Values{
		"service": {service},
		"start":   {fmt.Sprint(from.UnixMicro())},
		"end":     {fmt.Sprint(to.UnixMicro())},
		"limit":   {"10000"},
		"raw":     {"true"},
	})
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("jaeger query under tenant %q: HTTP %d", tenant, status)
	}
	return spans, err
}

// jaegerTrace fetches one trace by ID under a tenant: what a reader with
// that tenant gets when it opens a trace link or pastes a trace ID.
func jaegerTrace(queryURL, tenant, traceID string) (int, []storedSpan, error) {
	return jaegerGet(queryURL, tenant, "/api/traces/"+traceID, url.Values{"raw": {"true"}})
}
