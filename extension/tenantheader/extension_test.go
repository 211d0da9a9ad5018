package tenantheader

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcmetadata "google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/nerc-project/ai-telemetry-collector/extension/tenantheader/internal/metadatatest"
)

const (
	teamA = "HUB-moc-CLUSTER-nerc-ocp-prod-PROJECT-team-a"
	teamB = "HUB-moc-CLUSTER-nerc-ocp-prod-PROJECT-team-b"
)

// received is one request as the trace store saw it: the values of its
// X-Scope-OrgID header and the namespaces of the data in it.
type received struct {
	orgID      []string
	namespaces []string
}

// store is a trace store's OTLP endpoint (gRPC or HTTP) that records what
// it receives, as Tempo's distributor would read it.
type store struct {
	mu   sync.Mutex
	reqs []received
}

func (s *store) record(orgID []string, td ptrace.Traces) {
	var ns []string
	for _, rs := range td.ResourceSpans().All() {
		v, _ := rs.Resource().Attributes().Get("k8s.namespace.name")
		ns = append(ns, v.Str())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, received{orgID: orgID, namespaces: ns})
}

func (s *store) received() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]received(nil), s.reqs...)
	sort.Slice(out, func(i, j int) bool { return out[i].namespaces[0] < out[j].namespaces[0] })
	return out
}

type grpcStore struct {
	ptraceotlp.UnimplementedGRPCServer
	*store
}

func (g *grpcStore) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	md, _ := grpcmetadata.FromIncomingContext(ctx)
	g.record(md.Get("x-scope-orgid"), req.Traces())
	return ptraceotlp.NewExportResponse(), nil
}

// startGRPCStore serves OTLP/gRPC on loopback and returns its address.
func startGRPCStore(t *testing.T) (*store, string) {
	s := &store{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, &grpcStore{store: s})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return s, lis.Addr().String()
}

// startHTTPStore serves OTLP/HTTP (protobuf) and returns its URL.
func startHTTPStore(t *testing.T) (*store, string) {
	s := &store{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.record(r.Header.Values("X-Scope-OrgID"), req.Traces())
		out, _ := ptraceotlp.NewExportResponse().MarshalProto()
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return s, srv.URL
}

type host struct {
	component.Host
	extensions map[component.ID]component.Component
}

func (h host) GetExtensions() map[component.ID]component.Component { return h.extensions }

// exporterKind builds one of the upstream OTLP exporters of the distribution
// with this extension as its client middleware.
type exporterKind struct {
	name    string
	factory exporter.Factory
	start   func(t *testing.T) (*store, string)
	conf    func(endpoint string) map[string]any
}

var exporterKinds = []exporterKind{
	{name: "otlp_grpc", factory: otlpexporter.NewFactory(), start: startGRPCStore, conf: func(endpoint string) map[string]any {
		return map[string]any{"endpoint": endpoint, "tls": map[string]any{"insecure": true}}
	}},
	{name: "otlp_http", factory: otlphttpexporter.NewFactory(), start: startHTTPStore, conf: func(endpoint string) map[string]any {
		return map[string]any{"endpoint": endpoint, "compression": "none"}
	}},
}

// newExporter starts an exporter to endpoint with the extension (telemetry
// in tel) as middleware, static headers setting a shared tenant (which the
// extension must replace), no retries, and the given sending_queue.
func newExporter(t *testing.T, kind exporterKind, endpoint string, tel *componenttest.Telemetry, queue map[string]any) exporter.Traces {
	ext, err := NewFactory().Create(context.Background(), metadatatest.NewSettings(tel), createDefaultConfig())
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })

	raw := kind.conf(endpoint)
	raw["headers"] = map[string]any{"X-Scope-OrgID": "shared"}
	raw["middlewares"] = []any{map[string]any{"id": "tenantheader"}}
	raw["retry_on_failure"] = map[string]any{"enabled": false}
	raw["sending_queue"] = queue
	cfg := kind.factory.CreateDefaultConfig()
	require.NoError(t, confmap.NewFromStringMap(raw).Unmarshal(cfg))
	require.NoError(t, confmap.Validate(cfg))
	exp, err := kind.factory.CreateTraces(context.Background(), exportertest.NewNopSettings(kind.factory.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), host{
		Host:       componenttest.NewNopHost(),
		extensions: map[component.ID]component.Component{component.MustNewID("tenantheader"): ext},
	}))
	t.Cleanup(func() { require.NoError(t, exp.Shutdown(context.Background())) })
	return exp
}

// traces is one resource per namespace with n spans each.
func traces(n int, namespaces ...string) ptrace.Traces {
	td := ptrace.NewTraces()
	for _, ns := range namespaces {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("k8s.namespace.name", ns)
		ss := rs.ScopeSpans().AppendEmpty()
		for range n {
			ss.Spans().AppendEmpty().SetName("gpu.usage")
		}
	}
	return td
}

func withMetadata(md map[string][]string) context.Context {
	return client.NewContext(context.Background(), client.Info{Metadata: client.NewMetadata(md)})
}

func refusedPoints(t *testing.T, tel *componenttest.Telemetry) map[string]int64 {
	out := map[string]int64{}
	m, err := tel.GetMetric("otelcol_tenantheader_requests_refused")
	if err != nil {
		return out
	}
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		r, _ := dp.Attributes.Value("reason")
		out[r.AsString()] += dp.Value
	}
	return out
}

func TestHeaderFromClientMetadata(t *testing.T) {
	tests := []struct {
		name        string
		metadata    map[string][]string
		wantOrgID   []string
		wantRefused string // reason, "" when sent
	}{
		{name: "the tenant replaces the static header", metadata: map[string][]string{"x-scope-orgid": {teamA}}, wantOrgID: []string{teamA}},
		{name: "metadata keys are case-insensitive", metadata: map[string][]string{"X-Scope-OrgID": {teamB}, "x-other": {"v"}}, wantOrgID: []string{teamB}},
		{name: "no metadata: refused, not sent to the static tenant", wantRefused: reasonMissing},
		{name: "other metadata only: refused", metadata: map[string][]string{"x-other": {teamA}}, wantRefused: reasonMissing},
		{name: "two tenants: refused", metadata: map[string][]string{"x-scope-orgid": {teamA, teamB}}, wantRefused: reasonAmbiguous},
		{name: "cross-tenant query syntax: refused", metadata: map[string][]string{"x-scope-orgid": {teamA + "|" + teamB}}, wantRefused: reasonInvalid},
		{name: "empty tenant: refused", metadata: map[string][]string{"x-scope-orgid": {""}}, wantRefused: reasonInvalid},
	}
	for _, kind := range exporterKinds {
		for _, tt := range tests {
			t.Run(kind.name+"/"+tt.name, func(t *testing.T) {
				tel := componenttest.NewTelemetry()
				defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
				st, endpoint := kind.start(t)
				exp := newExporter(t, kind, endpoint, tel, map[string]any{"enabled": false})
				err := exp.ConsumeTraces(withMetadata(tt.metadata), traces(1, "team-a"))
				if tt.wantRefused == "" {
					require.NoError(t, err)
					assert.Equal(t, []received{{orgID: tt.wantOrgID, namespaces: []string{"team-a"}}}, st.received())
					assert.Empty(t, refusedPoints(t, tel))
					return
				}
				require.Error(t, err)
				assert.True(t, consumererror.IsPermanent(err), "a refusal is permanent, not retried: %v", err)
				require.ErrorIs(t, err, ErrNoTenant)
				assert.ErrorContains(t, err, "the request is not sent")
				if kind.name == "otlp_grpc" {
					var st interface{ GRPCStatus() *status.Status }
					require.ErrorAs(t, err, &st)
					assert.Equal(t, codes.InvalidArgument, st.GRPCStatus().Code())
				}
				assert.Empty(t, st.received(), "nothing reaches the store")
				assert.Equal(t, map[string]int64{tt.wantRefused: 1}, refusedPoints(t, tel))
			})
		}
	}
}

// The exporter's batching must be partitioned by the tenant key: two tenants'
// requests then leave as two requests, each with its own tenant. Without the
// partition, exporterhelper merges them under an empty context, and the
// extension refuses the merged batch instead of sending it to any tenant.
func TestBatchesPartitionedByTenant(t *testing.T) {
	tests := []struct {
		name        string
		partition   bool
		spans       int // per request; min_size is 2 spans
		wantSent    []received
		wantRefused map[string]int64
	}{
		{
			name: "partitioned: one request per tenant", partition: true, spans: 2,
			wantSent: []received{
				{orgID: []string{teamA}, namespaces: []string{"team-a"}},
				{orgID: []string{teamB}, namespaces: []string{"team-b"}},
			},
			wantRefused: map[string]int64{},
		},
		{
			// Each request is under min_size, so both wait and are merged.
			name: "not partitioned: the merged batch has no tenant and is refused", spans: 1,
			wantRefused: map[string]int64{reasonMissing: 1},
		},
	}
	for _, kind := range exporterKinds {
		for _, tt := range tests {
			t.Run(kind.name+"/"+tt.name, func(t *testing.T) {
				tel := componenttest.NewTelemetry()
				defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
				st, endpoint := kind.start(t)
				batch := map[string]any{"flush_timeout": "1h", "min_size": 2, "sizer": "items"}
				if tt.partition {
					batch["partition"] = map[string]any{"metadata_keys": []any{"x-scope-orgid"}}
				}
				exp := newExporter(t, kind, endpoint, tel, map[string]any{
					"enabled": true, "wait_for_result": true, "num_consumers": 2, "batch": batch,
				})
				var wg sync.WaitGroup
				errs := make([]error, 2)
				for i, tn := range []struct{ tenant, ns string }{{teamA, "team-a"}, {teamB, "team-b"}} {
					wg.Go(func() {
						errs[i] = exp.ConsumeTraces(withMetadata(map[string][]string{"x-scope-orgid": {tn.tenant}}), traces(tt.spans, tn.ns))
					})
				}
				wg.Wait()
				for _, err := range errs {
					if tt.partition {
						require.NoError(t, err)
					} else {
						require.ErrorIs(t, err, ErrNoTenant)
					}
				}
				assert.Equal(t, tt.wantSent, st.received())
				assert.Equal(t, tt.wantRefused, refusedPoints(t, tel))
			})
		}
	}
}

func TestRefusalsCounted(t *testing.T) {
	tel := componenttest.NewTelemetry()
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	st, endpoint := startGRPCStore(t)
	exp := newExporter(t, exporterKinds[0], endpoint, tel, map[string]any{"enabled": false})
	for range 2 {
		require.Error(t, exp.ConsumeTraces(context.Background(), traces(1, "team-a")))
	}
	require.Error(t, exp.ConsumeTraces(withMetadata(map[string][]string{"x-scope-orgid": {"a/b"}}), traces(1, "team-a")))
	metadatatest.AssertEqualTenantheaderRequestsRefused(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: reasonAttrs(reasonMissing), Value: 2},
		{Attributes: reasonAttrs(reasonInvalid), Value: 1},
	}, metricdatatest.IgnoreTimestamp())
	assert.Empty(t, st.received())
}
