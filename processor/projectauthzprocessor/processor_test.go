package projectauthzprocessor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nerc-project/ai-telemetry-collector/internal/authz"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
	"github.com/nerc-project/ai-telemetry-collector/processor/projectauthzprocessor/internal/metadata"
	"github.com/nerc-project/ai-telemetry-collector/processor/projectauthzprocessor/internal/metadatatest"
)

// fakeAuthorizer answers from a map (a resource not in it is denied) and
// records what it was asked and whether a caller was in the context. Like
// Keycloak's token endpoint, it decides on the part of the permission before
// the first '#' (keycloakauth sends "{resource}#{scope}"), so a resource
// smuggling a separator is decided the way the real server would.
type fakeAuthorizer struct {
	component.StartFunc
	component.ShutdownFunc

	answers map[string]error

	mu       sync.Mutex
	asked    []string
	noCaller int
}

var (
	errKeycloakDown = errors.New("keycloak: connection refused")
	errDeniedTest   = fmt.Errorf("%w by test", authz.ErrDenied)
)

func (f *fakeAuthorizer) Authorize(ctx context.Context, resource string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, resource)
	if client.FromContext(ctx).Auth == nil {
		f.noCaller++
	}
	decidedOn, _, _ := strings.Cut(resource, "#")
	if err, ok := f.answers[decidedOn]; ok {
		return err
	}
	return errDeniedTest
}

func (f *fakeAuthorizer) askedResources() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.asked...)
}

type fakeHost struct {
	component.Host
	extensions map[component.ID]component.Component
}

func (h fakeHost) GetExtensions() map[component.ID]component.Component { return h.extensions }

var authorizerID = component.MustNewID("keycloakauth")

type fakeAuthData struct{}

func (fakeAuthData) GetAttribute(string) any     { return "caller" }
func (fakeAuthData) GetAttributeNames() []string { return []string{"subject"} }

func callerContext() context.Context {
	return client.NewContext(context.Background(), client.Info{Auth: fakeAuthData{}})
}

// Resources of the NERC hub moc used by the tests.
const (
	hub        = "moc"
	prod       = "nerc-ocp-prod"
	teamA      = "HUB-moc-CLUSTER-nerc-ocp-prod-PROJECT-team-a"
	teamB      = "HUB-moc-CLUSTER-nerc-ocp-prod-PROJECT-team-b"
	prodRes    = "HUB-moc-CLUSTER-nerc-ocp-prod"
	hubRes     = "HUB-moc"
	defaultRes = "HUB-moc-CLUSTER-nerc-ocp-test-PROJECT-team-a"
)

func project(cluster, namespace string) map[string]any {
	m := map[string]any{}
	if cluster != "" {
		m[topology.AttrK8sClusterName] = cluster
	}
	if namespace != "" {
		m[topology.AttrK8sNamespaceName] = namespace
	}
	return m
}

func with(m map[string]any, k string, v any) map[string]any {
	out := map[string]any{k: v}
	for kk, vv := range m {
		out[kk] = vv
	}
	return out
}

// signal runs a batch of resources (one record each, named r{i}) through the
// processor for one signal and returns the names of the records forwarded.
type signal struct {
	name string
	run  func(t *testing.T, ctx context.Context, cfg *Config, host component.Host, tel *componenttest.Telemetry, resources []map[string]any, records map[int]map[string]any) ([]string, error)
}

func fillResource(t *testing.T, res pcommon.Resource, attrs map[string]any) {
	require.NoError(t, res.Attributes().FromRaw(attrs))
}

var signals = []signal{
	{name: "traces", run: func(t *testing.T, ctx context.Context, cfg *Config, host component.Host, tel *componenttest.Telemetry, resources []map[string]any, records map[int]map[string]any) ([]string, error) {
		sink := &consumertest.TracesSink{}
		p, err := NewFactory().CreateTraces(context.Background(), metadatatest.NewSettings(tel), cfg, sink)
		require.NoError(t, err)
		require.NoError(t, p.Start(context.Background(), host))
		defer func() { require.NoError(t, p.Shutdown(context.Background())) }()
		td := ptrace.NewTraces()
		for i, attrs := range resources {
			rs := td.ResourceSpans().AppendEmpty()
			fillResource(t, rs.Resource(), attrs)
			span := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			span.SetName(fmt.Sprintf("r%d", i))
			require.NoError(t, span.Attributes().FromRaw(records[i]))
		}
		err = p.ConsumeTraces(ctx, td)
		var names []string
		for _, b := range sink.AllTraces() {
			if b.ResourceSpans().Len() == 0 {
				names = append(names, "<empty batch>")
			}
			for i := 0; i < b.ResourceSpans().Len(); i++ {
				rs := b.ResourceSpans().At(i)
				names = append(names, rs.ScopeSpans().At(0).Spans().At(0).Name())
			}
		}
		return names, err
	}},
	{name: "metrics", run: func(t *testing.T, ctx context.Context, cfg *Config, host component.Host, tel *componenttest.Telemetry, resources []map[string]any, records map[int]map[string]any) ([]string, error) {
		sink := &consumertest.MetricsSink{}
		p, err := NewFactory().CreateMetrics(context.Background(), metadatatest.NewSettings(tel), cfg, sink)
		require.NoError(t, err)
		require.NoError(t, p.Start(context.Background(), host))
		defer func() { require.NoError(t, p.Shutdown(context.Background())) }()
		md := pmetric.NewMetrics()
		for i, attrs := range resources {
			rm := md.ResourceMetrics().AppendEmpty()
			fillResource(t, rm.Resource(), attrs)
			m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
			m.SetName(fmt.Sprintf("r%d", i))
			dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetDoubleValue(1)
			require.NoError(t, dp.Attributes().FromRaw(records[i]))
		}
		err = p.ConsumeMetrics(ctx, md)
		var names []string
		for _, b := range sink.AllMetrics() {
			if b.ResourceMetrics().Len() == 0 {
				names = append(names, "<empty batch>")
			}
			for i := 0; i < b.ResourceMetrics().Len(); i++ {
				names = append(names, b.ResourceMetrics().At(i).ScopeMetrics().At(0).Metrics().At(0).Name())
			}
		}
		return names, err
	}},
	{name: "logs", run: func(t *testing.T, ctx context.Context, cfg *Config, host component.Host, tel *componenttest.Telemetry, resources []map[string]any, records map[int]map[string]any) ([]string, error) {
		sink := &consumertest.LogsSink{}
		p, err := NewFactory().CreateLogs(context.Background(), metadatatest.NewSettings(tel), cfg, sink)
		require.NoError(t, err)
		require.NoError(t, p.Start(context.Background(), host))
		defer func() { require.NoError(t, p.Shutdown(context.Background())) }()
		ld := plog.NewLogs()
		for i, attrs := range resources {
			rl := ld.ResourceLogs().AppendEmpty()
			fillResource(t, rl.Resource(), attrs)
			lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
			lr.Body().SetStr(fmt.Sprintf("r%d", i))
			require.NoError(t, lr.Attributes().FromRaw(records[i]))
		}
		err = p.ConsumeLogs(ctx, ld)
		var names []string
		for _, b := range sink.AllLogs() {
			if b.ResourceLogs().Len() == 0 {
				names = append(names, "<empty batch>")
			}
			for i := 0; i < b.ResourceLogs().Len(); i++ {
				names = append(names, b.ResourceLogs().At(i).ScopeLogs().At(0).LogRecords().At(0).Body().Str())
			}
		}
		return names, err
	}},
}

type errKind int

const (
	noError errKind = iota
	permanentError
	retryableError
)

// counters reads the processor's counters: allowed, refused by reason, and
// batches unavailable. A counter never added to reads as absent.
func counters(t *testing.T, tel *componenttest.Telemetry) (allowed int64, refused map[string]int64, unavailable int64) {
	t.Helper()
	sum := func(name string) []metricdata.DataPoint[int64] {
		m, err := tel.GetMetric(name)
		if err != nil {
			return nil
		}
		return m.Data.(metricdata.Sum[int64]).DataPoints
	}
	for _, dp := range sum("otelcol_processor_projectauthz_resources_allowed") {
		allowed += dp.Value
	}
	for _, dp := range sum("otelcol_processor_projectauthz_batches_unavailable") {
		unavailable += dp.Value
	}
	refused = map[string]int64{}
	for _, dp := range sum("otelcol_processor_projectauthz_resources_refused") {
		reason, ok := dp.Attributes.Value("reason")
		require.True(t, ok, "refusals carry a reason")
		refused[reason.AsString()] += dp.Value
	}
	return allowed, refused, unavailable
}

func TestAuthorize(t *testing.T) {
	long := strings.Repeat("n", 254)
	allowAB := map[string]error{teamA: nil, teamB: nil}
	tests := []struct {
		name      string
		cluster   string // default cluster
		onDenied  string
		max       int
		noCaller  bool
		answers   map[string]error
		resources []map[string]any
		records   map[int]map[string]any // attributes of resource i's record

		wantKept        []string
		wantErr         errKind
		wantAsked       []string
		wantAllowed     int64
		wantRefused     map[string]int64
		wantUnavailable int64
	}{
		{
			name:    "mixed batch: allowed kept, denied dropped",
			answers: map[string]error{teamA: nil},
			resources: []map[string]any{
				project(prod, "team-a"), project(prod, "team-b"), project(prod, "team-a"),
			},
			wantKept:    []string{"r0", "r2"},
			wantAsked:   []string{teamA, teamB},
			wantAllowed: 2,
			wantRefused: map[string]int64{reasonDenied: 1},
		},
		{
			name:        "all allowed, one ask per distinct resource",
			answers:     allowAB,
			resources:   []map[string]any{project(prod, "team-a"), project(prod, "team-b"), project(prod, "team-b"), project(prod, "team-a")},
			wantKept:    []string{"r0", "r1", "r2", "r3"},
			wantAsked:   []string{teamA, teamB},
			wantAllowed: 4,
			wantRefused: map[string]int64{},
		},
		{
			name:        "all denied with drop: nothing forwarded, no error",
			resources:   []map[string]any{project(prod, "team-a"), project(prod, "team-b")},
			wantAsked:   []string{teamA, teamB},
			wantRefused: map[string]int64{reasonDenied: 2},
		},
		{
			name:        "all denied with reject: permanent error",
			onDenied:    OnDeniedReject,
			resources:   []map[string]any{project(prod, "team-a"), project(prod, "team-b")},
			wantErr:     permanentError,
			wantAsked:   []string{teamA, teamB},
			wantRefused: map[string]int64{reasonDenied: 2},
		},
		{
			name:        "one denied with reject: whole batch refused",
			onDenied:    OnDeniedReject,
			answers:     map[string]error{teamA: nil},
			resources:   []map[string]any{project(prod, "team-a"), project(prod, "team-b")},
			wantErr:     permanentError,
			wantAsked:   []string{teamA, teamB},
			wantRefused: map[string]int64{reasonDenied: 1},
		},
		{
			name:        "all allowed with reject: forwarded",
			onDenied:    OnDeniedReject,
			answers:     allowAB,
			resources:   []map[string]any{project(prod, "team-a"), project(prod, "team-b")},
			wantKept:    []string{"r0", "r1"},
			wantAsked:   []string{teamA, teamB},
			wantAllowed: 2,
			wantRefused: map[string]int64{},
		},
		{
			name:            "authorizer failure: retryable error, nothing forwarded",
			answers:         map[string]error{teamA: nil, teamB: errKeycloakDown},
			resources:       []map[string]any{project(prod, "team-a"), project(prod, "team-b"), project(prod, "team-a")},
			wantErr:         retryableError,
			wantAsked:       []string{teamA, teamB},
			wantRefused:     map[string]int64{},
			wantUnavailable: 1,
		},
		{
			name:            "authorizer failure beats reject: retryable",
			onDenied:        OnDeniedReject,
			answers:         map[string]error{teamB: errKeycloakDown},
			resources:       []map[string]any{project(prod, "team-a"), project(prod, "team-b")},
			wantErr:         retryableError,
			wantAsked:       []string{teamA, teamB},
			wantRefused:     map[string]int64{},
			wantUnavailable: 1,
		},
		{
			name:    "spoofed keycloak resource naming an allowed project: refused without asking",
			answers: map[string]error{teamA: nil},
			resources: []map[string]any{
				with(project(prod, "team-b"), topology.AttrKeycloakResource, teamA),
				project(prod, "team-a"),
			},
			wantKept:    []string{"r1"},
			wantAsked:   []string{teamA},
			wantAllowed: 1,
			wantRefused: map[string]int64{reasonResourceMismatch: 1},
		},
		{
			name:    "spoofed weaker keycloak resource (the hub's) on project data: refused",
			answers: map[string]error{hubRes: nil},
			resources: []map[string]any{
				with(project(prod, "team-b"), topology.AttrKeycloakResource, hubRes),
			},
			wantRefused: map[string]int64{reasonResourceMismatch: 1},
		},
		{
			name:    "keycloak resource matching the computed one: asked and kept",
			answers: map[string]error{teamA: nil},
			resources: []map[string]any{
				with(with(project(prod, "team-a"), topology.AttrKeycloakResource, teamA), topology.AttrHubName, hub),
			},
			wantKept:    []string{"r0"},
			wantAsked:   []string{teamA},
			wantAllowed: 1,
			wantRefused: map[string]int64{},
		},
		{
			name:    "other hub named on the data: refused",
			answers: map[string]error{teamA: nil},
			resources: []map[string]any{
				with(project(prod, "team-a"), topology.AttrHubName, "other"),
			},
			wantRefused: map[string]int64{reasonResourceMismatch: 1},
		},
		{
			name:      "record naming another namespace than its project resource: refused without asking",
			answers:   allowAB,
			resources: []map[string]any{project(prod, "team-a"), project(prod, "team-a")},
			records: map[int]map[string]any{
				0: {topology.AttrK8sNamespaceName: "team-b"},
				1: {topology.AttrK8sNamespaceName: "team-a", topology.AttrKeycloakResource: teamA},
			},
			wantKept:    []string{"r1"},
			wantAsked:   []string{teamA},
			wantAllowed: 1,
			wantRefused: map[string]int64{reasonResourceMismatch: 1},
		},
		{
			name:      "record naming another project's keycloak resource, cluster or hub: refused",
			answers:   allowAB,
			resources: []map[string]any{project(prod, "team-a"), project(prod, "team-a"), project(prod, ""), project(prod, "team-a")},
			records: map[int]map[string]any{
				0: {topology.AttrKeycloakResource: teamB},
				1: {topology.AttrK8sClusterName: "nerc-ocp-test"},
				2: {topology.AttrK8sClusterName: "nerc-ocp-test", topology.AttrK8sNamespaceName: "team-a"},
				3: {topology.AttrHubName: "other"},
			},
			wantRefused: map[string]int64{reasonResourceMismatch: 4},
		},
		{
			name:      "records of any project under a cluster resource: the cluster decides",
			answers:   map[string]error{prodRes: nil},
			resources: []map[string]any{project(prod, "")},
			records: map[int]map[string]any{
				0: {topology.AttrK8sNamespaceName: "team-b", topology.AttrKeycloakResource: teamB, topology.AttrHubName: hub},
			},
			wantKept:    []string{"r0"},
			wantAsked:   []string{prodRes},
			wantAllowed: 1,
			wantRefused: map[string]int64{},
		},
		{
			name:      "records of any cluster under the hub resource: the hub decides",
			answers:   map[string]error{hubRes: nil},
			resources: []map[string]any{{}},
			records: map[int]map[string]any{
				0: {topology.AttrK8sClusterName: prod, topology.AttrK8sNamespaceName: "team-b", topology.AttrKeycloakResource: teamB},
			},
			wantKept:    []string{"r0"},
			wantAsked:   []string{hubRes},
			wantAllowed: 1,
			wantRefused: map[string]int64{},
		},
		{
			name:        "no namespace: cluster resource asked",
			answers:     map[string]error{prodRes: nil},
			resources:   []map[string]any{project(prod, "")},
			wantKept:    []string{"r0"},
			wantAsked:   []string{prodRes},
			wantAllowed: 1,
			wantRefused: map[string]int64{},
		},
		{
			name:        "no cluster and no default: hub resource asked",
			answers:     map[string]error{hubRes: nil},
			resources:   []map[string]any{project("", "team-a"), {}},
			wantKept:    []string{"r0", "r1"},
			wantAsked:   []string{hubRes},
			wantAllowed: 2,
			wantRefused: map[string]int64{},
		},
		{
			name:        "no cluster: the default cluster",
			cluster:     "nerc-ocp-test",
			answers:     map[string]error{defaultRes: nil},
			resources:   []map[string]any{project("", "team-a"), project(prod, "team-a")},
			wantKept:    []string{"r0"},
			wantAsked:   []string{defaultRes, teamA},
			wantAllowed: 1,
			wantRefused: map[string]int64{reasonDenied: 1},
		},
		{
			name:    "invalid names refused without asking",
			answers: map[string]error{teamA: nil},
			resources: []map[string]any{
				project(prod, long), project(long, "team-a"),
				with(project(prod, ""), topology.AttrK8sNamespaceName, int64(7)),
				project(prod, "team-a"),
			},
			wantKept:    []string{"r3"},
			wantAsked:   []string{teamA},
			wantAllowed: 1,
			wantRefused: map[string]int64{reasonInvalidName: 3},
		},
		{
			// Keycloak decides on what precedes '#': this resource would be
			// decided as team-a's while the data is team-b's.
			name:    "separator injected through the cluster name: refused without asking",
			answers: map[string]error{teamA: nil},
			resources: []map[string]any{
				project("nerc-ocp-prod-PROJECT-team-a#GET#", "team-b"),
				project("nerc-ocp-prod-PROJECT-team-a#GET", ""),
				project(prod, "team-a#GET#x"),
				project(prod+",GET", "team-b"),
			},
			wantRefused: map[string]int64{reasonInvalidName: 4},
		},
		{
			name:    "names Kubernetes does not allow: refused without asking",
			answers: map[string]error{teamA: nil, topology.ProjectResource(hub, prod, "TEAM-A"): nil},
			resources: []map[string]any{
				project(prod, "TEAM-A"),
				project("nerc-ocp-prod-PROJECT-team-a", "x"),
				project(prod, "team-a\n"),
				project(prod, "team a"),
				with(project(prod, "team-a"), topology.AttrK8sNodeName, "wrk 1"),
				with(project(prod, "team-a"), topology.AttrNvidiaGPUIndex, "0#GET"),
				with(project(prod, "team-a"), topology.AttrHubName, "MOC"),
			},
			wantRefused: map[string]int64{reasonInvalidName: 7},
		},
		{
			name:      "invalid name in a record: the resource refused",
			answers:   map[string]error{teamA: nil},
			resources: []map[string]any{project(prod, "team-a"), project(prod, "team-a")},
			records: map[int]map[string]any{
				0: {topology.AttrK8sNamespaceName: "team-a#GET"},
				1: {topology.AttrK8sNodeName: "wrk-1"},
			},
			wantKept:    []string{"r1"},
			wantAsked:   []string{teamA},
			wantAllowed: 1,
			wantRefused: map[string]int64{reasonInvalidName: 1},
		},
		{
			name:    "longest valid names are asked",
			answers: map[string]error{topology.ProjectResource(hub, strings.Repeat("c", 253), strings.Repeat("n", 63)): nil},
			resources: []map[string]any{
				project(strings.Repeat("c", 253), strings.Repeat("n", 63)),
			},
			wantKept:    []string{"r0"},
			wantAsked:   []string{topology.ProjectResource(hub, strings.Repeat("c", 253), strings.Repeat("n", 63))},
			wantAllowed: 1,
			wantRefused: map[string]int64{},
		},
		{
			name:    "too many resources: asks bounded, the rest refused",
			max:     2,
			answers: map[string]error{teamA: nil, teamB: nil, prodRes: nil},
			resources: []map[string]any{
				project(prod, "team-a"), project(prod, "team-b"), project(prod, ""), project(prod, "team-a"), project(prod, "team-c"),
			},
			wantKept:    []string{"r0", "r1", "r3"},
			wantAsked:   []string{teamA, teamB},
			wantAllowed: 3,
			wantRefused: map[string]int64{reasonTooManyResources: 2},
		},
		{
			name:        "no caller in the context: refused without asking",
			noCaller:    true,
			answers:     allowAB,
			resources:   []map[string]any{project(prod, "team-a"), project(prod, "team-b")},
			wantRefused: map[string]int64{reasonNoCaller: 2},
		},
		{
			name:        "no caller with reject: permanent error",
			noCaller:    true,
			onDenied:    OnDeniedReject,
			answers:     allowAB,
			resources:   []map[string]any{project(prod, "team-a")},
			wantErr:     permanentError,
			wantRefused: map[string]int64{reasonNoCaller: 1},
		},
	}
	for _, sig := range signals {
		for _, tt := range tests {
			t.Run(sig.name+"/"+tt.name, func(t *testing.T) {
				cfg := createDefaultConfig().(*Config)
				cfg.Authorizer, cfg.Hub, cfg.Cluster = authorizerID, hub, tt.cluster
				if tt.onDenied != "" {
					cfg.OnDenied = tt.onDenied
				}
				if tt.max != 0 {
					cfg.MaxResourcesPerRequest = tt.max
				}
				require.NoError(t, cfg.Validate())
				fa := &fakeAuthorizer{answers: tt.answers}
				host := fakeHost{Host: componenttest.NewNopHost(), extensions: map[component.ID]component.Component{authorizerID: fa}}
				tel := componenttest.NewTelemetry()
				t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
				ctx := callerContext()
				if tt.noCaller {
					ctx = context.Background()
				}

				kept, err := sig.run(t, ctx, cfg, host, tel, tt.resources, tt.records)

				switch tt.wantErr {
				case noError:
					require.NoError(t, err)
				case permanentError:
					require.ErrorIs(t, err, errRefused)
					assert.True(t, consumererror.IsPermanent(err), "reject is permanent: %v", err)
					// What the OTLP receiver answers: PERMISSION_DENIED (HTTP 403).
					st, ok := status.FromError(err)
					require.True(t, ok, "reject carries a gRPC status: %v", err)
					assert.Equal(t, codes.PermissionDenied, st.Code())
				case retryableError:
					require.ErrorIs(t, err, errAuthorizationUnavailable)
					assert.False(t, consumererror.IsPermanent(err), "no decision is retryable: %v", err)
					// The OTLP receiver answers an error without status UNAVAILABLE (HTTP 503).
					_, ok := status.FromError(err)
					assert.False(t, ok, "no decision carries no status: %v", err)
				}
				assert.Equal(t, tt.wantKept, kept)
				assert.Equal(t, tt.wantAsked, fa.askedResources())
				assert.Zero(t, fa.noCaller, "asked without a caller in the context")
				allowed, refused, unavailable := counters(t, tel)
				assert.Equal(t, tt.wantAllowed, allowed, "allowed")
				assert.Equal(t, tt.wantRefused, refused, "refused")
				assert.Equal(t, tt.wantUnavailable, unavailable, "unavailable")
			})
		}
	}
}

// The forwarded data is the input minus the refused resources, each kept one
// intact (attributes and records).
func TestAllowedResourcesKeptIntact(t *testing.T) {
	cfg := &Config{Authorizer: authorizerID, Hub: hub, OnDenied: OnDeniedDrop, MaxResourcesPerRequest: 64}
	fa := &fakeAuthorizer{answers: map[string]error{teamA: nil}}
	host := fakeHost{Host: componenttest.NewNopHost(), extensions: map[component.ID]component.Component{authorizerID: fa}}
	tel := componenttest.NewTelemetry()
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	sink := &consumertest.MetricsSink{}
	p, err := NewFactory().CreateMetrics(context.Background(), metadatatest.NewSettings(tel), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), host))
	defer func() { require.NoError(t, p.Shutdown(context.Background())) }()

	build := func(namespaces ...string) pmetric.Metrics {
		md := pmetric.NewMetrics()
		for _, ns := range namespaces {
			rm := md.ResourceMetrics().AppendEmpty()
			rm.Resource().Attributes().PutStr(topology.AttrK8sClusterName, prod)
			rm.Resource().Attributes().PutStr(topology.AttrK8sNamespaceName, ns)
			rm.Resource().Attributes().PutStr(topology.AttrKeycloakResource, topology.ProjectResource(hub, prod, ns))
			sm := rm.ScopeMetrics().AppendEmpty()
			sm.Scope().SetName("dcgm")
			for _, name := range []string{"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED"} {
				m := sm.Metrics().AppendEmpty()
				m.SetName(name)
				dps := m.SetEmptyGauge().DataPoints()
				for g := range 3 {
					dp := dps.AppendEmpty()
					dp.SetIntValue(int64(g))
					dp.Attributes().PutStr(topology.AttrHwID, fmt.Sprintf("GPU-%d", g))
				}
			}
		}
		return md
	}
	require.NoError(t, p.ConsumeMetrics(callerContext(), build("team-b", "team-a", "team-b")))
	require.Len(t, sink.AllMetrics(), 1)
	assert.Equal(t, build("team-a"), sink.AllMetrics()[0])
	assert.Equal(t, 6, sink.DataPointCount())
}

func TestStartFailsWithoutAuthorizer(t *testing.T) {
	notAuthorizer := struct {
		component.StartFunc
		component.ShutdownFunc
	}{}
	tests := []struct {
		name       string
		extensions map[component.ID]component.Component
	}{
		{name: "missing", extensions: map[component.ID]component.Component{}},
		{name: "not an authorizer", extensions: map[component.ID]component.Component{authorizerID: notAuthorizer}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &Config{Authorizer: authorizerID, Hub: hub, OnDenied: OnDeniedDrop, MaxResourcesPerRequest: 64}
			p, err := NewFactory().CreateTraces(context.Background(), metadatatest.NewSettings(componenttest.NewTelemetry()), cfg, consumertest.NewNop())
			require.NoError(t, err)
			err = p.Start(context.Background(), fakeHost{Host: componenttest.NewNopHost(), extensions: tt.extensions})
			require.Error(t, err)
			assert.Contains(t, err.Error(), `"keycloakauth"`)
			require.NoError(t, p.Shutdown(context.Background()))
		})
	}
}

// TestLifecycle replaces mdatagen's lifecycle test (skipped: its nop host has
// no authorizer): create, start with an authorizer, consume, shut down.
func TestLifecycle(t *testing.T) {
	fa := &fakeAuthorizer{answers: map[string]error{hubRes: nil}}
	host := fakeHost{Host: componenttest.NewNopHost(), extensions: map[component.ID]component.Component{authorizerID: fa}}
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Authorizer, cfg.Hub = authorizerID, hub
	set := metadatatest.NewSettings(componenttest.NewTelemetry())
	set.ID = component.NewID(metadata.Type)
	f := NewFactory()
	tp, err := f.CreateTraces(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	mp, err := f.CreateMetrics(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	lp, err := f.CreateLogs(context.Background(), set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	for _, c := range []component.Component{tp, mp, lp} {
		require.NoError(t, c.Start(context.Background(), host))
	}
	require.NoError(t, tp.ConsumeTraces(callerContext(), generateLifecycleTestTraces()))
	require.NoError(t, mp.ConsumeMetrics(callerContext(), generateLifecycleTestMetrics()))
	require.NoError(t, lp.ConsumeLogs(callerContext(), generateLifecycleTestLogs()))
	for _, c := range []component.Component{tp, mp, lp} {
		require.NoError(t, c.Shutdown(context.Background()))
	}
	assert.Equal(t, []string{hubRes, hubRes, hubRes}, fa.askedResources())
}

// Scope attributes, span events and every metric type are checked too.
func TestNestedLabelsChecked(t *testing.T) {
	p := &projectAuthzProcessor{cfg: &Config{Hub: hub}}
	e := topology.Entity{Cluster: prod, Namespace: "team-a"}
	check := func(m pcommon.Map) string { return p.fitReason(m, e) }
	other := func(m pcommon.Map) { m.PutStr(topology.AttrK8sNamespaceName, "team-b") }

	td := ptrace.NewTraces()
	span := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	ev := span.Events().AppendEmpty()
	assert.Empty(t, spansReason(td.ResourceSpans().At(0), check))
	other(ev.Attributes())
	assert.Equal(t, reasonResourceMismatch, spansReason(td.ResourceSpans().At(0), check), "span event")

	ld := plog.NewLogs()
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	sl.LogRecords().AppendEmpty()
	assert.Empty(t, logsReason(ld.ResourceLogs().At(0), check))
	other(sl.Scope().Attributes())
	assert.Equal(t, reasonResourceMismatch, logsReason(ld.ResourceLogs().At(0), check), "scope")

	for _, typ := range []pmetric.MetricType{pmetric.MetricTypeGauge, pmetric.MetricTypeSum, pmetric.MetricTypeHistogram, pmetric.MetricTypeExponentialHistogram, pmetric.MetricTypeSummary} {
		md := pmetric.NewMetrics()
		m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		var attrs pcommon.Map
		switch typ {
		case pmetric.MetricTypeGauge:
			attrs = m.SetEmptyGauge().DataPoints().AppendEmpty().Attributes()
		case pmetric.MetricTypeSum:
			attrs = m.SetEmptySum().DataPoints().AppendEmpty().Attributes()
		case pmetric.MetricTypeHistogram:
			attrs = m.SetEmptyHistogram().DataPoints().AppendEmpty().Attributes()
		case pmetric.MetricTypeExponentialHistogram:
			attrs = m.SetEmptyExponentialHistogram().DataPoints().AppendEmpty().Attributes()
		case pmetric.MetricTypeSummary:
			attrs = m.SetEmptySummary().DataPoints().AppendEmpty().Attributes()
		}
		attrs.PutStr(topology.AttrK8sNamespaceName, "team-a")
		assert.Empty(t, metricsReason(md.ResourceMetrics().At(0), check), typ.String())
		other(attrs)
		assert.Equal(t, reasonResourceMismatch, metricsReason(md.ResourceMetrics().At(0), check), typ.String())
	}
}

// OTLP (protobuf and JSON) can carry an attribute twice in one list; the
// check would read the first value while the exporters write both. Such a
// resource or record is refused whatever the values, decoded the way the OTLP
// receiver decodes it.
func TestDuplicateTopologyAttributesRefused(t *testing.T) {
	attr := func(k, v string) string { return fmt.Sprintf(`{"key":%q,"value":{"stringValue":%q}}`, k, v) }
	body := func(resource, point []string) []byte {
		return []byte(`{"resourceMetrics":[{"resource":{"attributes":[` + strings.Join(resource, ",") +
			`]},"scopeMetrics":[{"metrics":[{"name":"m","gauge":{"dataPoints":[{"asDouble":1,"attributes":[` +
			strings.Join(point, ",") + `]}]}}]}]}]}`)
	}
	ns := topology.AttrK8sNamespaceName
	cl := topology.AttrK8sClusterName
	tests := []struct {
		name            string
		resource, point []string
	}{
		{"namespace twice on the resource", []string{attr(cl, prod), attr(ns, "team-a"), attr(ns, "team-b")}, nil},
		{"same namespace twice", []string{attr(cl, prod), attr(ns, "team-a"), attr(ns, "team-a")}, nil},
		{"cluster twice", []string{attr(cl, prod), attr(ns, "team-a"), attr(cl, "nerc-ocp-test")}, nil},
		{"keycloak resource twice", []string{
			attr(cl, prod), attr(ns, "team-a"),
			attr(topology.AttrKeycloakResource, teamA), attr(topology.AttrKeycloakResource, teamB),
		}, nil},
		{"namespace twice on a data point", []string{attr(cl, prod), attr(ns, "team-a")}, []string{attr(ns, "team-a"), attr(ns, "team-b")}},
		{"hw.id twice on a data point", []string{attr(cl, prod), attr(ns, "team-a")}, []string{attr(topology.AttrHwID, "GPU-1"), attr(topology.AttrHwID, "GPU-2")}},
	}
	for _, tt := range tests {
		for _, wire := range []string{"json", "protobuf"} {
			t.Run(tt.name+"/"+wire, func(t *testing.T) {
				md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(body(tt.resource, tt.point))
				require.NoError(t, err)
				if wire == "protobuf" {
					raw, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
					require.NoError(t, err)
					md, err = (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(raw)
					require.NoError(t, err)
				}
				fa := &fakeAuthorizer{answers: map[string]error{teamA: nil, teamB: nil}}
				host := fakeHost{Host: componenttest.NewNopHost(), extensions: map[component.ID]component.Component{authorizerID: fa}}
				tel := componenttest.NewTelemetry()
				t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
				sink := &consumertest.MetricsSink{}
				cfg := &Config{Authorizer: authorizerID, Hub: hub, OnDenied: OnDeniedDrop, MaxResourcesPerRequest: 64}
				p, err := NewFactory().CreateMetrics(context.Background(), metadatatest.NewSettings(tel), cfg, sink)
				require.NoError(t, err)
				require.NoError(t, p.Start(context.Background(), host))
				defer func() { require.NoError(t, p.Shutdown(context.Background())) }()

				require.NoError(t, p.ConsumeMetrics(callerContext(), md))
				assert.Zero(t, sink.DataPointCount(), "nothing forwarded")
				assert.Empty(t, fa.askedResources(), "refused without asking")
				_, refused, _ := counters(t, tel)
				assert.Equal(t, map[string]int64{reasonDuplicateAttribute: 1}, refused)
			})
		}
	}
}
