package projectauthzprocessor // import "github.com/nerc-project/ai-telemetry-collector/processor/projectauthzprocessor"

import (
	"context"
	"strings"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The tenant forwarding sits between the processor's function and the next
// consumer (processorhelper calls it with what the function kept, so only
// allowed resources reach it). It groups the resources by their Keycloak
// resource, computed by entityOf exactly as authorization computed it, and
// passes each group on in its own call with the tenant in client metadata.
// It stops at the first error: the sender retries the whole request, so a
// group already passed on may arrive twice (at least once, as with any
// fan-out), but none is ever dropped under a retryable error or sent with
// another group's tenant.

// groupByTenant returns the indices of n resources grouped by tenant, in the
// order each tenant first appears.
func (p *projectAuthzProcessor) groupByTenant(n int, attrs func(int) pcommon.Map) (tenants []string, groups [][]int) {
	index := map[string]int{}
	for i := range n {
		t := p.entityOf(attrs(i)).Resource(p.cfg.Hub)
		g, ok := index[t]
		if !ok {
			g = len(tenants)
			index[t] = g
			tenants = append(tenants, t)
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	return tenants, groups
}

// withTenant is ctx with the caller's client.Info (authentication, address,
// metadata) except that key holds tenant alone, replacing any value the
// caller sent: a receiver with include_metadata copies request headers into
// the metadata, so a caller could otherwise choose its own X-Scope-OrgID.
func withTenant(ctx context.Context, key, tenant string) context.Context {
	info := client.FromContext(ctx)
	md := map[string][]string{key: {tenant}}
	for k := range info.Metadata.Keys() {
		if !strings.EqualFold(k, key) {
			md[k] = info.Metadata.Get(k)
		}
	}
	info.Metadata = client.NewMetadata(md)
	return client.NewContext(ctx, info)
}

// forward passes each group on; whole is called when one tenant holds every
// resource (the common case: the request is passed on as it is), part with
// the indices of one group otherwise.
func (p *projectAuthzProcessor) forward(ctx context.Context, n int, attrs func(int) pcommon.Map, whole func(context.Context) error, part func(context.Context, []int) error) error {
	tenants, groups := p.groupByTenant(n, attrs)
	key := p.cfg.Tenant.MetadataKey
	if len(tenants) == 1 {
		return whole(withTenant(ctx, key, tenants[0]))
	}
	for g, t := range tenants {
		if err := part(withTenant(ctx, key, t), groups[g]); err != nil {
			return err
		}
	}
	return nil
}

func (p *projectAuthzProcessor) tracesPerTenant(next consumer.Traces) (consumer.Traces, error) {
	return consumer.NewTraces(func(ctx context.Context, td ptrace.Traces) error {
		rs := td.ResourceSpans()
		return p.forward(ctx, rs.Len(),
			func(i int) pcommon.Map { return rs.At(i).Resource().Attributes() },
			func(ctx context.Context) error { return next.ConsumeTraces(ctx, td) },
			func(ctx context.Context, idx []int) error {
				out := ptrace.NewTraces()
				for _, i := range idx {
					rs.At(i).MoveTo(out.ResourceSpans().AppendEmpty())
				}
				return next.ConsumeTraces(ctx, out)
			})
	})
}

func (p *projectAuthzProcessor) metricsPerTenant(next consumer.Metrics) (consumer.Metrics, error) {
	return consumer.NewMetrics(func(ctx context.Context, md pmetric.Metrics) error {
		rm := md.ResourceMetrics()
		return p.forward(ctx, rm.Len(),
			func(i int) pcommon.Map { return rm.At(i).Resource().Attributes() },
			func(ctx context.Context) error { return next.ConsumeMetrics(ctx, md) },
			func(ctx context.Context, idx []int) error {
				out := pmetric.NewMetrics()
				for _, i := range idx {
					rm.At(i).MoveTo(out.ResourceMetrics().AppendEmpty())
				}
				return next.ConsumeMetrics(ctx, out)
			})
	})
}

func (p *projectAuthzProcessor) logsPerTenant(next consumer.Logs) (consumer.Logs, error) {
	return consumer.NewLogs(func(ctx context.Context, ld plog.Logs) error {
		rl := ld.ResourceLogs()
		return p.forward(ctx, rl.Len(),
			func(i int) pcommon.Map { return rl.At(i).Resource().Attributes() },
			func(ctx context.Context) error { return next.ConsumeLogs(ctx, ld) },
			func(ctx context.Context, idx []int) error {
				out := plog.NewLogs()
				for _, i := range idx {
					rl.At(i).MoveTo(out.ResourceLogs().AppendEmpty())
				}
				return next.ConsumeLogs(ctx, out)
			})
	})
}
