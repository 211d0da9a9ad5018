package promqlreceiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.uber.org/zap/zapcore"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// fakeAPI is a Prometheus HTTP API for unit tests of the receiver's own
// logic: it records each request and answers with answer's document.
type fakeAPI struct {
	*httptest.Server
	mu       sync.Mutex
	requests []apiRequest
}

type apiRequest struct {
	path, query      string
	time, start, end time.Time
	step             time.Duration
}

func newFakeAPI(t testing.TB, answer func(req apiRequest) (int, string)) *fakeAPI {
	return serveFakeAPI(t, func(w http.ResponseWriter, req apiRequest) {
		code, body := answer(req)
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	})
}

// newFakeAPIWriter answers 200 with what write streams, so that a large
// answer is never held in memory whole.
func newFakeAPIWriter(t testing.TB, write func(w io.Writer, req apiRequest)) *fakeAPI {
	return serveFakeAPI(t, func(w http.ResponseWriter, req apiRequest) { write(w, req) })
}

func serveFakeAPI(t testing.TB, respond func(w http.ResponseWriter, req apiRequest)) *fakeAPI {
	f := &fakeAPI{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		req := apiRequest{
			path: r.URL.Path, query: q.Get("query"), time: parseTime(q.Get("time")),
			start: parseTime(q.Get("start")), end: parseTime(q.Get("end")),
		}
		if s := q.Get("step"); s != "" {
			f, _ := strconv.ParseFloat(s, 64)
			req.step = time.Duration(f * float64(time.Second))
		}
		f.mu.Lock()
		f.requests = append(f.requests, req)
		f.mu.Unlock()
		respond(w, req)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAPI) last() apiRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[len(f.requests)-1]
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	f, _ := strconv.ParseFloat(s, 64)
	return time.UnixMilli(int64(f * 1000)).UTC()
}

// matrix answers with one series holding a sample at each time.
func matrix(name string, times ...time.Time) string {
	var values []string
	for i, ts := range times {
		values = append(values, fmt.Sprintf(`[%.3f,"%d"]`, float64(ts.UnixMilli())/1000, i+1))
	}
	return fmt.Sprintf(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":%q,"gpu":"0"},"values":[%s]}]}}`,
		name, strings.Join(values, ","))
}

// clusterMatrix answers with one series of the cluster holding a sample at each time.
func clusterMatrix(name, cluster string, times ...time.Time) string {
	return strings.Replace(matrix(name, times...), `"gpu":"0"`, fmt.Sprintf(`"gpu":"0","cluster":%q`, cluster), 1)
}

var clusterMatcherRE = regexp.MustCompile(`cluster="([^"]*)"`)

// clusterOf is the cluster a query's matcher selects, as Prometheus would.
func clusterOf(query string) string {
	if m := clusterMatcherRE.FindStringSubmatch(query); m != nil {
		return m[1]
	}
	return ""
}

// evaluate answers instant and range queries as Prometheus evaluates a
// constant series: one point at each evaluation time.
func evaluate(req apiRequest) (int, string) {
	if req.path == "/api/v1/query" {
		return 200, fmt.Sprintf(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"busy"},"value":[%.3f,"1"]}]}}`,
			float64(req.time.UnixMilli())/1000)
	}
	var times []time.Time
	for ts := req.start; !ts.After(req.end); ts = ts.Add(req.step) {
		times = append(times, ts)
	}
	return 200, matrix("busy", times...)
}

func testConfig(endpoint string, queries ...QueryConfig) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Endpoint = endpoint
	cfg.Queries = queries
	return cfg
}

func TestRawSamplesWindowFollowsTheCursor(t *testing.T) {
	var samples []time.Time
	api := newFakeAPI(t, func(apiRequest) (int, string) { return 200, matrix("DCGM_FI_DEV_GPU_UTIL", samples...) })
	cfg := testConfig(api.URL, QueryConfig{Name: "dcgm", Query: `DCGM_FI_DEV_GPU_UTIL`, Unscoped: true, RawSamples: true})
	cfg.Interval, cfg.MaxCatchUp = time.Minute, time.Hour
	cfg.CatchUpChunk = 0 // one request per catch-up; chunks are tested below
	sink := new(consumertest.MetricsSink)
	h := newHarness(t, cfg, sink, componenttest.NewNopHost())
	defer h.shutdown()

	tests := []struct {
		name       string
		at         time.Time
		samples    []time.Time
		wantQuery  string
		wantPoints []time.Time
	}{
		{
			"no cursor: one interval back", t0,
			[]time.Time{t0.Add(-50 * time.Second), t0.Add(-20 * time.Second)},
			"DCGM_FI_DEV_GPU_UTIL[60s]",
			[]time.Time{t0.Add(-50 * time.Second), t0.Add(-20 * time.Second)},
		},
		{
			"back to the cursor, emitted ones skipped", t0.Add(time.Minute),
			[]time.Time{t0.Add(-20 * time.Second), t0.Add(40 * time.Second)},
			"DCGM_FI_DEV_GPU_UTIL[80s]",
			[]time.Time{t0.Add(40 * time.Second)},
		},
		{
			"nothing new", t0.Add(2 * time.Minute),
			[]time.Time{t0.Add(40 * time.Second)},
			"DCGM_FI_DEV_GPU_UTIL[80s]", nil,
		},
		{
			"after an outage: bounded by max_catch_up", t0.Add(3 * time.Hour),
			[]time.Time{t0.Add(2*time.Hour + 30*time.Minute)},
			"DCGM_FI_DEV_GPU_UTIL[3600s]",
			[]time.Time{t0.Add(2*time.Hour + 30*time.Minute)},
		},
		{
			"a longer outage with nothing since: the cursor moves to the window's start", t0.Add(6 * time.Hour), nil,
			"DCGM_FI_DEV_GPU_UTIL[3600s]", nil,
		},
		{"still nothing", t0.Add(6*time.Hour + time.Minute), nil, "DCGM_FI_DEV_GPU_UTIL[3600s]", nil},
		{
			"a sample", t0.Add(6*time.Hour + 2*time.Minute),
			[]time.Time{t0.Add(6*time.Hour + 90*time.Second)},
			"DCGM_FI_DEV_GPU_UTIL[3600s]",
			[]time.Time{t0.Add(6*time.Hour + 90*time.Second)},
		},
		{
			"the window is back to one run", t0.Add(6*time.Hour + 3*time.Minute),
			[]time.Time{t0.Add(6*time.Hour + 90*time.Second), t0.Add(6*time.Hour + 150*time.Second)},
			"DCGM_FI_DEV_GPU_UTIL[90s]",
			[]time.Time{t0.Add(6*time.Hour + 150*time.Second)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			samples = tt.samples
			sink.Reset()
			h.runAll(tt.at)
			req := api.last()
			assert.Equal(t, "/api/v1/query", req.path)
			assert.Equal(t, tt.wantQuery, req.query)
			assert.Equal(t, tt.at, req.time)
			var got []time.Time
			for _, p := range pointsOf(sink.AllMetrics()) {
				got = append(got, p.ts)
			}
			assert.Equal(t, tt.wantPoints, got)
		})
	}
	withQuery := attribute.String("query", "dcgm")
	assert.Equal(t, int64(6), h.count("points", withQuery))
	assert.Equal(t, int64(3), h.count("points_skipped", withQuery, attribute.String("reason", "already_emitted")))
	assert.Equal(t, int64(8), h.count("queries", withQuery, attribute.String("api", "query")))
	assert.Len(t, h.logs.FilterMessage("Gap since the last emitted sample exceeds max_catch_up; older samples are not fetched").All(), 2,
		"the two outages, once each")
}

func TestEvaluatedQueryCatchesUpWithQueryRange(t *testing.T) {
	api := newFakeAPI(t, evaluate)
	cfg := testConfig(api.URL, QueryConfig{Name: "busy", Query: `sum(busy)`, Unscoped: true, MaxCatchUp: 3 * time.Minute})
	cfg.Interval = time.Minute
	sink := new(consumertest.MetricsSink)
	h := newHarness(t, cfg, sink, componenttest.NewNopHost())
	defer h.shutdown()

	tests := []struct {
		name       string
		at         time.Time
		want       apiRequest
		wantPoints []time.Time
	}{
		{"first run: instant", t0, apiRequest{path: "/api/v1/query", query: "sum(busy)", time: t0}, []time.Time{t0}},
		{
			"on time: instant", t0.Add(65 * time.Second),
			apiRequest{path: "/api/v1/query", query: "sum(busy)", time: t0.Add(65 * time.Second)},
			[]time.Time{t0.Add(65 * time.Second)},
		},
		{
			"two runs missed: every step since the cursor, ending now", t0.Add(245 * time.Second),
			apiRequest{path: "/api/v1/query_range", query: "sum(busy)", start: t0.Add(125 * time.Second), end: t0.Add(245 * time.Second), step: time.Minute},
			[]time.Time{t0.Add(125 * time.Second), t0.Add(185 * time.Second), t0.Add(245 * time.Second)},
		},
		{
			"long outage: max_catch_up back", t0.Add(time.Hour),
			apiRequest{path: "/api/v1/query_range", query: "sum(busy)", start: t0.Add(57 * time.Minute), end: t0.Add(time.Hour), step: time.Minute},
			[]time.Time{t0.Add(57 * time.Minute), t0.Add(58 * time.Minute), t0.Add(59 * time.Minute), t0.Add(time.Hour)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink.Reset()
			h.runAll(tt.at)
			assert.Equal(t, tt.want, api.last())
			var got []time.Time
			for _, p := range pointsOf(sink.AllMetrics()) {
				got = append(got, p.ts)
			}
			assert.Equal(t, tt.wantPoints, got)
		})
	}
	assert.Equal(t, int64(2), h.count("queries", attribute.String("api", "query_range")))
}

// everyMinute is a series sampled at every minute since t0-6h, up to the
// request's time.
func everyMinute(at time.Time) []time.Time {
	var out []time.Time
	for ts := t0.Add(-6 * time.Hour); !ts.After(at); ts = ts.Add(time.Minute) {
		out = append(out, ts)
	}
	return out
}

func TestLongCatchUpIsFetchedInChunks(t *testing.T) {
	tests := []struct {
		name        string
		query       QueryConfig
		wantQueries []apiRequest
		wantPoints  int
	}{
		{
			name:  "raw samples: windows of catch_up_chunk, oldest first",
			query: QueryConfig{Name: "dcgm", Query: `DCGM_FI_DEV_GPU_UTIL`, Unscoped: true, RawSamples: true},
			wantQueries: []apiRequest{
				{path: "/api/v1/query", query: "DCGM_FI_DEV_GPU_UTIL[3600s]", time: t0.Add(-90*time.Minute + 30*time.Second)},
				{path: "/api/v1/query", query: "DCGM_FI_DEV_GPU_UTIL[3600s]", time: t0.Add(-30*time.Minute + 30*time.Second)},
				// The rest, up to now: shorter than a chunk.
				{path: "/api/v1/query", query: "DCGM_FI_DEV_GPU_UTIL[1800s]", time: t0.Add(30 * time.Second)},
			},
			// Every minute after the cursor up to now, each once.
			wantPoints: 150,
		},
		{
			name:  "evaluated: query_range of at most catch_up_chunk / step evaluations",
			query: QueryConfig{Name: "busy", Query: `sum(busy)`, Unscoped: true, Step: time.Minute},
			wantQueries: []apiRequest{
				{path: "/api/v1/query_range", query: "sum(busy)", start: t0.Add(-149*time.Minute + 30*time.Second), end: t0.Add(-90*time.Minute + 30*time.Second), step: time.Minute},
				{path: "/api/v1/query_range", query: "sum(busy)", start: t0.Add(-89*time.Minute + 30*time.Second), end: t0.Add(-30*time.Minute + 30*time.Second), step: time.Minute},
				{path: "/api/v1/query_range", query: "sum(busy)", start: t0.Add(-29*time.Minute + 30*time.Second), end: t0.Add(30 * time.Second), step: time.Minute},
			},
			wantPoints: 150,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			answer := evaluate
			if tt.query.RawSamples {
				answer = windowed(t, "DCGM_FI_DEV_GPU_UTIL", everyMinute)
			}
			api := newFakeAPI(t, answer)
			cfg := testConfig(api.URL, tt.query)
			cfg.MaxCatchUp, cfg.CatchUpChunk = 4*time.Hour, time.Hour
			sink := new(consumertest.MetricsSink)
			h := newHarness(t, cfg, sink, componenttest.NewNopHost())
			defer h.shutdown()
			cursor := t0.Add(-150*time.Minute + 30*time.Second)
			require.NoError(t, h.rcv.cursors.set(context.Background(), h.rcv.queries[0].id, model.TimeFromUnixNano(cursor.UnixNano())))

			h.runAll(t0.Add(30 * time.Second))
			api.mu.Lock()
			assert.Equal(t, tt.wantQueries, api.requests)
			api.mu.Unlock()
			assert.Len(t, sink.AllMetrics(), len(tt.wantQueries), "one batch per chunk")
			seen := map[time.Time]bool{}
			for _, p := range pointsOf(sink.AllMetrics()) {
				assert.False(t, seen[p.ts], "emitted twice: %s", p.ts)
				seen[p.ts] = true
				assert.True(t, p.ts.After(cursor) && !p.ts.After(t0.Add(30*time.Second)), p.ts)
			}
			assert.Len(t, seen, tt.wantPoints)
		})
	}
}

func TestChunkedCatchUpEvaluatesEveryStepToTheEnd(t *testing.T) {
	api := newFakeAPI(t, evaluate)
	// A step shorter than the interval: the catch-up's last, short chunk
	// must not fall back to one evaluation at now.
	cfg := testConfig(api.URL, QueryConfig{Name: "busy", Query: `sum(busy)`, Unscoped: true, Step: 30 * time.Second})
	cfg.Interval, cfg.CatchUpChunk = time.Minute, 2*time.Minute
	sink := new(consumertest.MetricsSink)
	h := newHarness(t, cfg, sink, componenttest.NewNopHost())
	defer h.shutdown()
	require.NoError(t, h.rcv.cursors.set(context.Background(), "busy", model.TimeFromUnixNano(t0.Add(-5*time.Minute).UnixNano())))

	h.runAll(t0)
	var got []time.Time
	for _, p := range pointsOf(sink.AllMetrics()) {
		got = append(got, p.ts)
	}
	var want []time.Time
	for ts := t0.Add(-270 * time.Second); !ts.After(t0); ts = ts.Add(30 * time.Second) {
		want = append(want, ts)
	}
	assert.Equal(t, want, got, "every step after the cursor, up to now")
	assert.Equal(t, int64(3), h.count("queries", attribute.String("api", "query_range")))
}

func TestEmptyChunksDoNotStopTheCatchUp(t *testing.T) {
	// A gap in the data: nothing in the first two chunks.
	api := newFakeAPI(t, windowed(t, "DCGM_FI_DEV_GPU_UTIL", func(at time.Time) []time.Time {
		var out []time.Time
		for _, ts := range everyMinute(at) {
			if ts.After(t0.Add(-30 * time.Minute)) {
				out = append(out, ts)
			}
		}
		return out
	}))
	cfg := testConfig(api.URL, QueryConfig{Name: "dcgm", Query: `DCGM_FI_DEV_GPU_UTIL`, Unscoped: true, RawSamples: true})
	cfg.MaxCatchUp, cfg.CatchUpChunk = 4*time.Hour, time.Hour
	sink := new(consumertest.MetricsSink)
	h := newHarness(t, cfg, sink, componenttest.NewNopHost())
	defer h.shutdown()
	require.NoError(t, h.rcv.cursors.set(context.Background(), "dcgm", model.TimeFromUnixNano(t0.Add(-150*time.Minute).UnixNano())))

	h.runAll(t0)
	assert.Len(t, api.requests, 3)
	assert.Equal(t, 30, sink.DataPointCount(), "the samples after the gap, in the same run")
	stored, err := h.rcv.cursors.get(context.Background(), "dcgm")
	require.NoError(t, err)
	assert.Equal(t, t0, stored.Time().UTC())
}

func TestRefusedChunkIsTheOnlyOneFetchedAgain(t *testing.T) {
	api := newFakeAPI(t, windowed(t, "DCGM_FI_DEV_GPU_UTIL", everyMinute))
	cfg := testConfig(api.URL, QueryConfig{Name: "dcgm", Query: `DCGM_FI_DEV_GPU_UTIL`, Unscoped: true, RawSamples: true})
	cfg.MaxCatchUp, cfg.CatchUpChunk = 4*time.Hour, time.Hour
	batches := 0
	next := new(consumertest.MetricsSink)
	h := newHarness(t, cfg, consumerFunc(func(ctx context.Context, md pmetric.Metrics) error {
		batches++
		if batches == 2 {
			return errors.New("memory limiter: data refused")
		}
		return next.ConsumeMetrics(ctx, md)
	}), componenttest.NewNopHost())
	defer h.shutdown()
	cursor := t0.Add(-3 * time.Hour)
	require.NoError(t, h.rcv.cursors.set(context.Background(), "dcgm", model.TimeFromUnixNano(cursor.UnixNano())))

	h.runAll(t0)
	assert.Equal(t, 60, next.DataPointCount(), "the first chunk is emitted, the refused second stops the run")
	stored, err := h.rcv.cursors.get(context.Background(), "dcgm")
	require.NoError(t, err)
	assert.Equal(t, cursor.Add(time.Hour), stored.Time().UTC(), "the cursor stays at the end of the accepted chunk")

	h.runAll(t0.Add(time.Minute))
	require.Len(t, api.requests, 5, "2 chunks, then 3 from the stored cursor")
	assert.Equal(t, api.requests[1], api.requests[2], "the next run starts with the refused chunk")
	var got []time.Time
	for _, p := range pointsOf(next.AllMetrics()) {
		got = append(got, p.ts)
	}
	assert.Len(t, got, 181, "every minute after the cursor up to the second run, once")
	assert.Equal(t, cursor.Add(time.Minute), got[0])
	assert.Equal(t, t0.Add(time.Minute), got[len(got)-1])
}

func TestDelayLooksAtTheAPIAsOfDelayAgo(t *testing.T) {
	api := newFakeAPI(t, evaluate)
	cfg := testConfig(api.URL,
		QueryConfig{Name: "busy", Query: `sum(busy)`, Unscoped: true},
		QueryConfig{Name: "raw", Query: `busy`, Unscoped: true, RawSamples: true})
	cfg.Interval, cfg.Delay = time.Minute, 2*time.Minute
	sink := new(consumertest.MetricsSink)
	h := newHarness(t, cfg, sink, componenttest.NewNopHost())
	defer h.shutdown()

	h.runAll(t0)
	h.runAll(t0.Add(time.Minute))
	api.mu.Lock()
	defer api.mu.Unlock()
	var got []time.Time
	for _, req := range api.requests {
		got = append(got, req.time)
	}
	assert.Equal(t, []time.Time{t0.Add(-2 * time.Minute), t0.Add(-2 * time.Minute), t0.Add(-time.Minute), t0.Add(-time.Minute)}, got)
	assert.Equal(t, "busy[60s]", api.requests[3].query, "the raw window follows the delayed cursor")
}

func TestFailuresAreCountedPerQueryAndLoggedOncePerChange(t *testing.T) {
	deny := true
	var mu sync.Mutex
	api := newFakeAPI(t, func(req apiRequest) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		if deny && strings.Contains(req.query, `cluster="nerc-ocp-test"`) {
			return http.StatusForbidden, "Forbidden: HUB-moc-CLUSTER-nerc-ocp-test"
		}
		return 200, clusterMatrix("DCGM_FI_DEV_GPU_UTIL", clusterOf(req.query), req.time.Add(-time.Second))
	})
	cfg := testConfig(api.URL, QueryConfig{Name: "dcgm", Query: `DCGM_FI_DEV_GPU_UTIL{cluster="{{.Cluster}}"}`, RawSamples: true})
	cfg.Clusters = []string{"nerc-ocp-prod", "nerc-ocp-test"}
	sink := new(consumertest.MetricsSink)
	h := newHarness(t, cfg, sink, componenttest.NewNopHost())
	defer h.shutdown()

	for i := range 3 {
		h.runAll(t0.Add(time.Duration(i) * time.Minute))
	}
	prod, test := attribute.String("query", "dcgm/nerc-ocp-prod"), attribute.String("query", "dcgm/nerc-ocp-test")
	assert.Equal(t, int64(3), h.count("query_failures", test, attribute.String("reason", "denied")))
	assert.Equal(t, int64(0), h.count("query_failures", prod))
	assert.Equal(t, int64(3), h.count("points", prod), "the permitted cluster flows")
	assert.Equal(t, 3, sink.DataPointCount())
	warnings := h.logs.FilterMessage("PromQL query failing").All()
	require.Len(t, warnings, 1, "logged once, not per run")
	assert.Equal(t, "dcgm/nerc-ocp-test", warnings[0].ContextMap()["query"])
	assert.Equal(t, "denied", warnings[0].ContextMap()["reason"])
	assert.Contains(t, warnings[0].ContextMap()["error"], "HTTP 403")

	mu.Lock()
	deny = false
	mu.Unlock()
	h.runAll(t0.Add(3 * time.Minute))
	h.runAll(t0.Add(4 * time.Minute))
	recovered := h.logs.FilterMessage("PromQL query recovered").All()
	require.Len(t, recovered, 1)
	assert.Equal(t, zapcore.InfoLevel, recovered[0].Level)
	assert.Equal(t, int64(2), h.count("points", test))
}

func TestRequestFailureReasons(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	answering := func(code int, body string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(code)
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	tests := []struct {
		name       string
		endpoint   string
		maxSize    int64
		wantReason string
	}{
		{"larger than max_response_size", answering(200, matrixDoc), 100, "too_large"},
		{"as large as max_response_size", answering(200, matrixDoc), int64(len(matrixDoc)), ""},
		{"403 from the proxy", answering(403, "no permission for cluster nerc-ocp-test"), 0, "denied"},
		{"401 without a valid token", answering(401, "unauthorized"), 0, "unauthorized"},
		{"400 with an error document", answering(400, errorDoc), 0, "api_error"},
		{"503 with an error document", answering(503, `{"status":"error","errorType":"unavailable","error":"store unavailable"}`), 0, "api_error"},
		{"200 with an error document", answering(200, errorDoc), 0, "api_error"},
		{"502 from a gateway", answering(502, "<html>Bad Gateway</html>"), 0, "http_error"},
		{"200 with garbage", answering(200, "{"), 0, "decode_error"},
		{"200 with prom-keycloak-proxy's outage body", answering(200, proxyOutageBody), 0, "decode_error"},
		{"string result", answering(200, stringDoc), 0, "unsupported_result"},
		{"timeout", slow.URL, 0, "timeout"},
		{"connection refused", closed.URL, 0, "unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &apiClient{base: tt.endpoint, client: &http.Client{Timeout: 200 * time.Millisecond}, maxSize: tt.maxSize}
			_, err := api.instant(context.Background(), "up", t0)
			if tt.wantReason == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tt.wantReason, reasonOf(err), err.Error())
		})
	}
}

// proxyOutageBody is what prom-keycloak-proxy answers, with HTTP 200, when
// it cannot reach its upstream: its empty error document.
const proxyOutageBody = `{"code":0,"error":"","message":""}` + "\n"

// TestAnswerThatIsNotAPrometheusDocumentKeepsTheCursor: a 200 that is no
// Prometheus API answer (the proxy's outage) is a counted failure, and the
// next good run reaches back to the cursor, so the outage leaves no hole.
func TestAnswerThatIsNotAPrometheusDocumentKeepsTheCursor(t *testing.T) {
	var mu sync.Mutex
	outage := false
	api := newFakeAPI(t, func(req apiRequest) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		if outage {
			return 200, proxyOutageBody
		}
		return 200, matrix("DCGM_FI_DEV_GPU_UTIL", req.time.Add(-time.Second))
	})
	cfg := testConfig(api.URL, QueryConfig{Name: "dcgm", Query: `DCGM_FI_DEV_GPU_UTIL`, Unscoped: true, RawSamples: true})
	cfg.CatchUpChunk = 0
	sink := new(consumertest.MetricsSink)
	h := newHarness(t, cfg, sink, componenttest.NewNopHost())
	defer h.shutdown()
	setOutage := func(v bool) {
		mu.Lock()
		outage = v
		mu.Unlock()
	}

	h.runAll(t0)
	setOutage(true)
	h.runAll(t0.Add(time.Minute))
	h.runAll(t0.Add(2 * time.Minute))
	setOutage(false)
	h.runAll(t0.Add(3 * time.Minute))
	withQuery := attribute.String("query", "dcgm")
	assert.Equal(t, int64(2), h.count("query_failures", withQuery, attribute.String("reason", "decode_error")))
	assert.Equal(t, "DCGM_FI_DEV_GPU_UTIL[181s]", api.last().query, "back to the sample before the outage")
	assert.Equal(t, int64(2), h.count("points", withQuery))
}

// flakyConsumer refuses the first n batches.
type flakyConsumer struct {
	consumertest.MetricsSink
	refuse int
}

func (f *flakyConsumer) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	if f.refuse > 0 {
		f.refuse--
		return errors.New("memory limiter: data refused")
	}
	return f.MetricsSink.ConsumeMetrics(ctx, md)
}

var _ consumer.Metrics = (*flakyConsumer)(nil)

func TestRefusedPointsAreFetchedAgain(t *testing.T) {
	api := newFakeAPI(t, windowed(t, "DCGM_FI_DEV_GPU_UTIL", func(at time.Time) []time.Time {
		return []time.Time{t0.Add(-10 * time.Second), at.Add(-time.Second)}
	}))
	cfg := testConfig(api.URL, QueryConfig{Name: "dcgm", Query: `DCGM_FI_DEV_GPU_UTIL`, Unscoped: true, RawSamples: true})
	next := &flakyConsumer{refuse: 1}
	h := newHarness(t, cfg, next, componenttest.NewNopHost())
	defer h.shutdown()

	h.runAll(t0)
	assert.Equal(t, 0, next.DataPointCount())
	assert.Equal(t, int64(1), h.count("consume_errors", attribute.String("query", "dcgm")))
	assert.Len(t, h.logs.FilterMessage("PromQL query failing").All(), 1)

	h.runAll(t0.Add(time.Minute))
	// No cursor was stored, yet the window reaches back to the refused run's start.
	assert.Equal(t, "DCGM_FI_DEV_GPU_UTIL[121s]", api.last().query)
	var got []time.Time
	for _, p := range pointsOf(next.AllMetrics()) {
		got = append(got, p.ts)
	}
	// t0-10s was refused by the first run and comes now, with the new sample.
	assert.Equal(t, []time.Time{t0.Add(-10 * time.Second), t0.Add(59 * time.Second)}, got)
}

func TestRestartWithFileStorageEmitsNothingTwice(t *testing.T) {
	var samples []time.Time
	api := newFakeAPI(t, func(apiRequest) (int, string) { return 200, matrix("DCGM_FI_DEV_GPU_UTIL", samples...) })
	cfg := testConfig(api.URL, QueryConfig{Name: "dcgm", Query: `DCGM_FI_DEV_GPU_UTIL`, Unscoped: true, RawSamples: true})
	cfg.Storage = &storageID
	dir := t.TempDir()

	life := func(at time.Time, s ...time.Time) []time.Time {
		samples = s
		host := newFileStorage(t, dir)
		sink := new(consumertest.MetricsSink)
		h := newHarness(t, cfg, sink, host)
		h.runAll(at)
		h.shutdown()
		require.NoError(t, host.ext.Shutdown(context.Background()))
		var got []time.Time
		for _, p := range pointsOf(sink.AllMetrics()) {
			got = append(got, p.ts)
		}
		return got
	}
	a, b, c := t0.Add(-30*time.Second), t0.Add(30*time.Second), t0.Add(90*time.Second)
	assert.Equal(t, []time.Time{a}, life(t0, a))
	assert.Equal(t, []time.Time{b, c}, life(t0.Add(2*time.Minute), a, b, c), "the new process resumes after a")
	assert.Empty(t, life(t0.Add(3*time.Minute), a, b, c), "nothing twice")
	assert.Equal(t, "DCGM_FI_DEV_GPU_UTIL[90s]", api.last().query, "the window reaches back to the stored cursor")
}

func TestStartRunsQueriesOnSchedule(t *testing.T) {
	api := newFakeAPI(t, evaluate)
	cfg := testConfig(api.URL, QueryConfig{Name: "busy", Query: `sum(busy)`, Unscoped: true})
	cfg.Interval = time.Second // the shortest valid schedule
	sink := new(consumertest.MetricsSink)
	r, err := NewFactory().CreateMetrics(context.Background(), newHarnessSettings(t), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	require.Eventually(t, func() bool { return sink.DataPointCount() > 0 }, 10*time.Second, 10*time.Millisecond,
		"the first run starts at once")
	require.Eventually(t, func() bool { return sink.DataPointCount() > 1 }, 10*time.Second, 10*time.Millisecond,
		"a second run follows one interval later")
	require.NoError(t, r.Shutdown(context.Background()))
	got := pointsOf(sink.AllMetrics())
	require.GreaterOrEqual(t, len(got), 2)
	assert.Equal(t, "busy", got[0].metric)
	assert.Equal(t, "busy", got[1].metric)
	assert.True(t, got[1].ts.After(got[0].ts), "the second run is evaluated later: %s then %s", got[0].ts, got[1].ts)

	api.mu.Lock()
	defer api.mu.Unlock()
	require.GreaterOrEqual(t, len(api.requests), 2)
	first, second := api.requests[0], api.requests[1]
	assert.Equal(t, "/api/v1/query", first.path)
	assert.Equal(t, "/api/v1/query", second.path)
	assert.GreaterOrEqual(t, second.time.Sub(first.time), cfg.Interval/2,
		"the second run is asked about a later time, about one interval on: %s then %s", first.time, second.time)
}

func TestShutdownGivesUpOnAStuckConsumerAtTheDeadline(t *testing.T) {
	api := newFakeAPI(t, evaluate)
	cfg := testConfig(api.URL, QueryConfig{Name: "busy", Query: `sum(busy)`, Unscoped: true})
	entered, release := make(chan struct{}), make(chan struct{})
	stuck := consumerFunc(func(context.Context, pmetric.Metrics) error {
		close(entered)
		<-release // ignores cancellation
		return nil
	})
	r, err := NewFactory().CreateMetrics(context.Background(), newHarnessSettings(t), cfg, stuck)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = r.Shutdown(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorContains(t, err, "promql runs still in flight")
	close(release)
	require.NoError(t, r.Shutdown(context.Background()), "once the run ends, shutdown completes")
}

func TestStartFailsOnMissingStorage(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:1", QueryConfig{Name: "up", Query: `up`, Unscoped: true})
	cfg.Storage = &storageID
	r, err := NewFactory().CreateMetrics(context.Background(), newHarnessSettings(t), cfg, consumertest.NewNop())
	require.NoError(t, err)
	err = r.Start(context.Background(), componenttest.NewNopHost())
	require.ErrorContains(t, err, "file_storage/promql")
	require.NoError(t, r.Shutdown(context.Background()))
}

// windowed answers selector[Ns] as Prometheus does: only the given samples
// inside the window ending at the request's time.
func windowed(t *testing.T, metricName string, samples func(at time.Time) []time.Time) func(apiRequest) (int, string) {
	return func(req apiRequest) (int, string) {
		var secs int
		_, err := fmt.Sscanf(req.query, metricName+"[%ds]", &secs)
		require.NoError(t, err, req.query)
		var in []time.Time
		for _, ts := range samples(req.time) {
			if ts.After(req.time.Add(-time.Duration(secs) * time.Second)) {
				in = append(in, ts)
			}
		}
		return 200, matrix(metricName, in...)
	}
}

func TestFutureSamplesDoNotMoveTheCursor(t *testing.T) {
	future := t0.Add(24 * time.Hour) // a skewed clock on the source
	api := newFakeAPI(t, windowed(t, "DCGM_FI_DEV_GPU_UTIL", func(at time.Time) []time.Time {
		return []time.Time{t0.Add(-10 * time.Second), at.Add(-time.Second), future}
	}))
	cfg := testConfig(api.URL, QueryConfig{Name: "dcgm", Query: `DCGM_FI_DEV_GPU_UTIL`, Unscoped: true, RawSamples: true})
	next := new(consumertest.MetricsSink)
	h := newHarness(t, cfg, next, componenttest.NewNopHost())
	defer h.shutdown()

	h.runAll(t0)
	h.runAll(t0.Add(time.Minute))
	var got []time.Time
	for _, p := range pointsOf(next.AllMetrics()) {
		got = append(got, p.ts)
	}
	assert.Equal(t, []time.Time{t0.Add(-10 * time.Second), t0.Add(-time.Second), t0.Add(59 * time.Second)}, got,
		"the second run still emits what came after the first")
	assert.Equal(t, int64(2), h.count("points_skipped", attribute.String("query", "dcgm"), attribute.String("reason", "future")))
}

func TestPermanentRefusalIsNotFetchedAgain(t *testing.T) {
	api := newFakeAPI(t, windowed(t, "DCGM_FI_DEV_GPU_UTIL", func(at time.Time) []time.Time {
		return []time.Time{t0.Add(-10 * time.Second), at.Add(-time.Second)}
	}))
	cfg := testConfig(api.URL, QueryConfig{Name: "dcgm", Query: `DCGM_FI_DEV_GPU_UTIL`, Unscoped: true, RawSamples: true})
	refusals := 1
	next := new(consumertest.MetricsSink)
	h := newHarness(t, cfg, consumerFunc(func(ctx context.Context, md pmetric.Metrics) error {
		if refusals > 0 {
			refusals--
			return consumererror.NewPermanent(errors.New("label rejected"))
		}
		return next.ConsumeMetrics(ctx, md)
	}), componenttest.NewNopHost())
	defer h.shutdown()

	h.runAll(t0)
	h.runAll(t0.Add(time.Minute))
	var got []time.Time
	for _, p := range pointsOf(next.AllMetrics()) {
		got = append(got, p.ts)
	}
	assert.Equal(t, []time.Time{t0.Add(59 * time.Second)}, got, "what was refused for good is not fetched again")
	assert.Equal(t, int64(1), h.count("consume_errors", attribute.String("query", "dcgm")))
}

type consumerFunc func(context.Context, pmetric.Metrics) error

func (f consumerFunc) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	return f(ctx, md)
}
func (consumerFunc) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

// getFails is a storage client whose reads fail while fails > 0.
type getFails struct {
	storage.Client
	fails int
}

func (g *getFails) Get(ctx context.Context, key string) ([]byte, error) {
	if g.fails > 0 {
		g.fails--
		return nil, errors.New("disk I/O error")
	}
	return g.Client.Get(ctx, key)
}

func TestUnreadableCursorStorageSkipsTheRun(t *testing.T) {
	api := newFakeAPI(t, windowed(t, "DCGM_FI_DEV_GPU_UTIL", func(at time.Time) []time.Time {
		return []time.Time{at.Add(-time.Second)}
	}))
	cfg := testConfig(api.URL, QueryConfig{Name: "dcgm", Query: `DCGM_FI_DEV_GPU_UTIL`, Unscoped: true, RawSamples: true})
	next := new(consumertest.MetricsSink)
	h := newHarness(t, cfg, next, componenttest.NewNopHost())
	defer h.shutdown()
	h.rcv.cursors = newCursors(&getFails{Client: storage.NewNopClient(), fails: 1})

	h.runAll(t0)
	api.mu.Lock()
	asked := len(api.requests)
	api.mu.Unlock()
	assert.Zero(t, asked, "no query without the cursor: it would repeat or skip samples")
	assert.Equal(t, int64(1), h.count("cursor_errors", attribute.String("query", "dcgm")))

	h.runAll(t0.Add(time.Minute))
	assert.Equal(t, 1, next.DataPointCount(), "the next run goes ahead")
}

func TestRedirectToAnotherHostIsRefused(t *testing.T) {
	other := newFakeAPI(t, func(apiRequest) (int, string) { return 200, matrix("up", t0) })
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, other.URL+req.URL.RequestURI(), http.StatusFound)
	}))
	defer redirector.Close()
	cfg := testConfig(redirector.URL, QueryConfig{Name: "up", Query: `up`, Unscoped: true})
	h := newHarness(t, cfg, new(consumertest.MetricsSink), componenttest.NewNopHost())
	defer h.shutdown()

	h.runAll(t0)
	other.mu.Lock()
	reached := len(other.requests)
	other.mu.Unlock()
	assert.Zero(t, reached, "the other host never sees the request, nor its token")
	assert.Equal(t, int64(1), h.count("query_failures", attribute.String("query", "up")))
}
