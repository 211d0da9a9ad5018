package projectauthzprocessor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
	"github.com/nerc-project/ai-telemetry-collector/processor/projectauthzprocessor/internal/metadatatest"
)

const tenantKey = "x-scope-orgid"

// call is one call the processor made to the next consumer: the client
// metadata and caller it carried, and the records (r{i}) it held.
type call struct {
	tenant []string
	other  []string // values of x-other
	auth   bool
	names  []string
}

func callOf(ctx context.Context, names []string) call {
	info := client.FromContext(ctx)
	return call{tenant: info.Metadata.Get(tenantKey), other: info.Metadata.Get("x-other"), auth: info.Auth != nil, names: names}
}

// recorder is the next consumer of every signal: it records each call, and
// fails the call numbered failAt (1-based) when set.
type recorder struct {
	calls  []call
	failAt int
}

var errNext = errors.New("next consumer: queue is full")

func (r *recorder) record(ctx context.Context, names []string) error {
	r.calls = append(r.calls, callOf(ctx, names))
	if len(r.calls) == r.failAt {
		return errNext
	}
	return nil
}

func (r *recorder) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (r *recorder) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	var names []string
	for _, rs := range td.ResourceSpans().All() {
		names = append(names, rs.ScopeSpans().At(0).Spans().At(0).Name())
	}
	return r.record(ctx, names)
}

func (r *recorder) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	var names []string
	for _, rm := range md.ResourceMetrics().All() {
		names = append(names, rm.ScopeMetrics().At(0).Metrics().At(0).Name())
	}
	return r.record(ctx, names)
}

func (r *recorder) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	var names []string
	for _, rl := range ld.ResourceLogs().All() {
		names = append(names, rl.ScopeLogs().At(0).LogRecords().At(0).Body().Str())
	}
	return r.record(ctx, names)
}

// tenantSignals build a request of one record per resource (r{i}) for each
// signal and pass it through the processor to the recorder.
var tenantSignals = []struct {
	name string
	run  func(t *testing.T, ctx context.Context, cfg *Config, host component.Host, tel *componenttest.Telemetry, next *recorder, resources []map[string]any) error
}{
	{"traces", func(t *testing.T, ctx context.Context, cfg *Config, host component.Host, tel *componenttest.Telemetry, next *recorder, resources []map[string]any) error {
		p, err := NewFactory().CreateTraces(context.Background(), metadatatest.NewSettings(tel), cfg, next)
		require.NoError(t, err)
		require.NoError(t, p.Start(context.Background(), host))
		defer func() { require.NoError(t, p.Shutdown(context.Background())) }()
		td := ptrace.NewTraces()
		for i, attrs := range resources {
			rs := td.ResourceSpans().AppendEmpty()
			fillResource(t, rs.Resource(), attrs)
			rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName(fmt.Sprintf("r%d", i))
		}
		return p.ConsumeTraces(ctx, td)
	}},
	{"metrics", func(t *testing.T, ctx context.Context, cfg *Config, host component.Host, tel *componenttest.Telemetry, next *recorder, resources []map[string]any) error {
		p, err := NewFactory().CreateMetrics(context.Background(), metadatatest.NewSettings(tel), cfg, next)
		require.NoError(t, err)
		require.NoError(t, p.Start(context.Background(), host))
		defer func() { require.NoError(t, p.Shutdown(context.Background())) }()
		md := pmetric.NewMetrics()
		for i, attrs := range resources {
			rm := md.ResourceMetrics().AppendEmpty()
			fillResource(t, rm.Resource(), attrs)
			m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
			m.SetName(fmt.Sprintf("r%d", i))
			m.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(1)
		}
		return p.ConsumeMetrics(ctx, md)
	}},
	{"logs", func(t *testing.T, ctx context.Context, cfg *Config, host component.Host, tel *componenttest.Telemetry, next *recorder, resources []map[string]any) error {
		p, err := NewFactory().CreateLogs(context.Background(), metadatatest.NewSettings(tel), cfg, next)
		require.NoError(t, err)
		require.NoError(t, p.Start(context.Background(), host))
		defer func() { require.NoError(t, p.Shutdown(context.Background())) }()
		ld := plog.NewLogs()
		for i, attrs := range resources {
			rl := ld.ResourceLogs().AppendEmpty()
			fillResource(t, rl.Resource(), attrs)
			rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr(fmt.Sprintf("r%d", i))
		}
		return p.ConsumeLogs(ctx, ld)
	}},
}

// callerWithMetadata is an authenticated caller whose request carried
// metadata (a receiver with include_metadata): its own choice of
// X-Scope-OrgID, and another header that must pass through untouched.
func callerWithMetadata(orgID string) context.Context {
	return client.NewContext(context.Background(), client.Info{
		Auth:     fakeAuthData{},
		Metadata: client.NewMetadata(map[string][]string{"X-Scope-OrgID": {orgID}, "x-other": {"kept"}}),
	})
}

func TestTenantPerAuthorizedResource(t *testing.T) {
	longCluster := strings.Repeat("c", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("c", 63)
	longRes := topology.ProjectResource(hub, longCluster, "team-a")
	tests := []struct {
		name        string
		tenantKey   string
		onDenied    string
		failAt      int
		answers     map[string]error
		resources   []map[string]any
		wantCalls   []call
		wantErr     error
		wantAsked   []string
		wantAllowed int64
		wantRefused map[string]int64
	}{
		{
			name:      "off: one call, the caller's metadata as sent",
			answers:   map[string]error{teamA: nil, teamB: nil},
			resources: []map[string]any{project(prod, "team-a"), project(prod, "team-b")},
			wantCalls: []call{{tenant: []string{teamA}, other: []string{"kept"}, auth: true, names: []string{"r0", "r1"}}},
			wantAsked: []string{teamA, teamB}, wantAllowed: 2, wantRefused: map[string]int64{},
		},
		{
			// The caller sent team-a's tenant with team-b's and the
			// cluster's data: each goes under its own resource's tenant.
			name:      "one call per authorized resource, in first-seen order, the caller's tenant replaced",
			tenantKey: tenantKey,
			answers:   map[string]error{teamA: nil, teamB: nil, prodRes: nil},
			resources: []map[string]any{
				project(prod, "team-b"), project(prod, "team-a"), project(prod, "team-b"), project(prod, ""),
			},
			wantCalls: []call{
				{tenant: []string{teamB}, other: []string{"kept"}, auth: true, names: []string{"r0", "r2"}},
				{tenant: []string{teamA}, other: []string{"kept"}, auth: true, names: []string{"r1"}},
				{tenant: []string{prodRes}, other: []string{"kept"}, auth: true, names: []string{"r3"}},
			},
			wantAsked: []string{teamB, teamA, prodRes}, wantAllowed: 4, wantRefused: map[string]int64{},
		},
		{
			name:      "one resource: one call under its tenant",
			tenantKey: "X-Scope-OrgID",
			answers:   map[string]error{teamB: nil},
			resources: []map[string]any{project(prod, "team-b"), project(prod, "team-b")},
			wantCalls: []call{{tenant: []string{teamB}, other: []string{"kept"}, auth: true, names: []string{"r0", "r1"}}},
			wantAsked: []string{teamB}, wantAllowed: 2, wantRefused: map[string]int64{},
		},
		{
			name:        "denied resources dropped before the grouping",
			tenantKey:   tenantKey,
			answers:     map[string]error{teamB: nil},
			resources:   []map[string]any{project(prod, "team-a"), project(prod, "team-b")},
			wantCalls:   []call{{tenant: []string{teamB}, other: []string{"kept"}, auth: true, names: []string{"r1"}}},
			wantAsked:   []string{teamA, teamB},
			wantAllowed: 1, wantRefused: map[string]int64{reasonDenied: 1},
		},
		{
			name:        "a resource too long to be a tenant: refused without asking, never sent elsewhere",
			tenantKey:   tenantKey,
			answers:     map[string]error{longRes: nil, teamA: nil},
			resources:   []map[string]any{project(longCluster, "team-a"), project(prod, "team-a")},
			wantCalls:   []call{{tenant: []string{teamA}, other: []string{"kept"}, auth: true, names: []string{"r1"}}},
			wantAsked:   []string{teamA},
			wantAllowed: 1, wantRefused: map[string]int64{reasonInvalidTenant: 1},
		},
		{
			name:        "the same resource without tenants: allowed",
			answers:     map[string]error{longRes: nil},
			resources:   []map[string]any{project(longCluster, "team-a")},
			wantCalls:   []call{{tenant: []string{teamA}, other: []string{"kept"}, auth: true, names: []string{"r0"}}},
			wantAsked:   []string{longRes},
			wantAllowed: 1, wantRefused: map[string]int64{},
		},
		{
			name:        "a failing group stops the rest and fails the request",
			tenantKey:   tenantKey,
			failAt:      1,
			answers:     map[string]error{teamA: nil, teamB: nil},
			resources:   []map[string]any{project(prod, "team-a"), project(prod, "team-b")},
			wantCalls:   []call{{tenant: []string{teamA}, other: []string{"kept"}, auth: true, names: []string{"r0"}}},
			wantErr:     errNext,
			wantAsked:   []string{teamA, teamB},
			wantAllowed: 2, wantRefused: map[string]int64{},
		},
	}
	for _, sig := range tenantSignals {
		for _, tt := range tests {
			t.Run(sig.name+"/"+tt.name, func(t *testing.T) {
				tel := componenttest.NewTelemetry()
				defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
				auth := &fakeAuthorizer{answers: tt.answers}
				host := fakeHost{extensions: map[component.ID]component.Component{authorizerID: auth}}
				cfg := createDefaultConfig().(*Config)
				cfg.Authorizer, cfg.Hub = authorizerID, hub
				cfg.Tenant.MetadataKey = tt.tenantKey
				require.NoError(t, cfg.Validate())
				next := &recorder{failAt: tt.failAt}
				// The caller chose team-a's tenant for everything it sent.
				err := sig.run(t, callerWithMetadata(teamA), cfg, host, tel, next, tt.resources)
				if tt.wantErr != nil {
					require.ErrorIs(t, err, tt.wantErr)
				} else {
					require.NoError(t, err)
				}
				assert.Equal(t, tt.wantCalls, next.calls)
				assert.Equal(t, tt.wantAsked, auth.askedResources())
				allowed, refused, _ := counters(t, tel)
				assert.Equal(t, tt.wantAllowed, allowed)
				assert.Equal(t, tt.wantRefused, refused)
			})
		}
	}
}

// Nothing allowed: nothing forwarded, under any tenant.
func TestTenantNothingAllowedNothingSent(t *testing.T) {
	for _, sig := range tenantSignals {
		t.Run(sig.name, func(t *testing.T) {
			tel := componenttest.NewTelemetry()
			defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
			auth := &fakeAuthorizer{answers: map[string]error{}}
			host := fakeHost{extensions: map[component.ID]component.Component{authorizerID: auth}}
			cfg := createDefaultConfig().(*Config)
			cfg.Authorizer, cfg.Hub, cfg.Tenant.MetadataKey = authorizerID, hub, tenantKey
			next := &recorder{}
			require.NoError(t, sig.run(t, callerWithMetadata(teamA), cfg, host, tel, next,
				[]map[string]any{project(prod, "team-b")}))
			assert.Empty(t, next.calls)
		})
	}
}

// BenchmarkTenant compares a request of 8 resources of 2 projects without
// and with per-tenant forwarding (decisions from the fake authorizer).
func BenchmarkTenant(b *testing.B) {
	for _, key := range []string{"", tenantKey} {
		name := "off"
		if key != "" {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			tel := componenttest.NewTelemetry()
			defer func() { _ = tel.Shutdown(context.Background()) }()
			auth := &fakeAuthorizer{answers: map[string]error{teamA: nil, teamB: nil}}
			cfg := createDefaultConfig().(*Config)
			cfg.Authorizer, cfg.Hub, cfg.Tenant.MetadataKey = authorizerID, hub, key
			p, err := NewFactory().CreateTraces(context.Background(), metadatatest.NewSettings(tel), cfg, consumertest.NewNop())
			require.NoError(b, err)
			require.NoError(b, p.Start(context.Background(), fakeHost{extensions: map[component.ID]component.Component{authorizerID: auth}}))
			defer func() { _ = p.Shutdown(context.Background()) }()
			ctx := callerWithMetadata(teamA)
			b.ReportAllocs()
			for b.Loop() {
				td := ptrace.NewTraces()
				for i := range 8 {
					rs := td.ResourceSpans().AppendEmpty()
					rs.Resource().Attributes().PutStr(topology.AttrK8sClusterName, prod)
					rs.Resource().Attributes().PutStr(topology.AttrK8sNamespaceName, []string{"team-a", "team-b"}[i%2])
					rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("gpu.usage")
				}
				if err := p.ConsumeTraces(ctx, td); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
