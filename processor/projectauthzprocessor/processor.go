package projectauthzprocessor // import "github.com/nerc-project/ai-telemetry-collector/processor/projectauthzprocessor"

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nerc-project/ai-telemetry-collector/internal/authz"
	"github.com/nerc-project/ai-telemetry-collector/internal/tenant"
	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
	"github.com/nerc-project/ai-telemetry-collector/processor/projectauthzprocessor/internal/metadata"
)

var (
	// errAuthorizationUnavailable: some decision could not be made (the
	// authorizer's backend is down). It is not permanent, so the receiver
	// answers 503 / UNAVAILABLE and the sender retries the whole batch.
	errAuthorizationUnavailable = errors.New("authorization decision unavailable, retry later")
	// errRefused is the error of on_denied: reject, returned permanent. It
	// carries the gRPC status PERMISSION_DENIED, which the OTLP receiver
	// answers as is (HTTP 403); a permanent error without a status would be
	// answered INTERNAL (HTTP 500).
	errRefused error = &permissionDeniedError{msg: "not authorized to write data of every resource in the request"}
)

type permissionDeniedError struct{ msg string }

func (e *permissionDeniedError) Error() string { return e.msg }

// GRPCStatus is found by status.FromError through the permanent error's wrapping.
func (e *permissionDeniedError) GRPCStatus() *status.Status {
	return status.New(codes.PermissionDenied, e.msg)
}

// Reasons a resource is refused (attribute reason of resources_refused).
const (
	reasonDenied             = "denied"
	reasonNoCaller           = "no_caller"
	reasonResourceMismatch   = "resource_mismatch"
	reasonInvalidName        = "invalid_name"
	reasonDuplicateAttribute = "duplicate_attribute"
	reasonTooManyResources   = "too_many_resources"
	reasonInvalidTenant      = "invalid_tenant"
)

var reasonOptions = func() map[string]metric.AddOption {
	m := map[string]metric.AddOption{}
	for _, r := range []string{reasonDenied, reasonNoCaller, reasonResourceMismatch, reasonInvalidName, reasonDuplicateAttribute, reasonTooManyResources, reasonInvalidTenant} {
		m[r] = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", r)))
	}
	return m
}()

type projectAuthzProcessor struct {
	cfg        *Config
	logger     *zap.Logger
	telemetry  *metadata.TelemetryBuilder
	authorizer authz.Authorizer

	noCallerOnce sync.Once
}

func newProcessor(set processor.Settings, cfg *Config) (*projectAuthzProcessor, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return &projectAuthzProcessor{cfg: cfg, logger: set.Logger, telemetry: tb}, nil
}

func (p *projectAuthzProcessor) start(_ context.Context, host component.Host) error {
	a, err := authz.Lookup(host, p.cfg.Authorizer)
	if err != nil {
		return fmt.Errorf("projectauthz: %w", err)
	}
	p.authorizer = a
	return nil
}

func (p *projectAuthzProcessor) shutdown(context.Context) error {
	p.telemetry.Shutdown()
	return nil
}

// resourceOf names the Keycloak resource guarding data with these resource
// attributes: always computed from k8s.cluster.name (else the configured
// cluster) and k8s.namespace.name, never taken from the data. It returns a
// refusal reason instead when the attributes cannot name a real resource (a
// name that is not a Kubernetes name, a topology attribute given twice), or
// when aitelemetry.keycloak.resource names another resource than the computed
// one or aitelemetry.hub.name another hub than the configured one (the caller
// must not pick the resource it is checked against), or, when data is
// forwarded per tenant, when the resource cannot be a tenant ID. e is the
// position the resource covers, against which the records inside are checked.
func (p *projectAuthzProcessor) resourceOf(attrs pcommon.Map) (e topology.Entity, resource, reason string) {
	if reason := invalidReason(attrs); reason != "" {
		return e, "", reason
	}
	e = p.entityOf(attrs)
	if reason := p.fitReason(attrs, e); reason != "" {
		return e, "", reason
	}
	resource = e.Resource(p.cfg.Hub)
	if p.cfg.Tenant.enabled() && tenant.Validate(resource) != nil {
		// Refused rather than sent under another tenant: only a cluster name
		// near the DNS limit makes a resource longer than a tenant may be.
		return e, "", reasonInvalidTenant
	}
	return e, resource, ""
}

// entityOf is the position whose resource guards data with these resource
// attributes: k8s.cluster.name (else the configured cluster) and
// k8s.namespace.name. Authorization asks about its resource, and the tenant
// forwarding groups by it, so both always agree.
func (p *projectAuthzProcessor) entityOf(attrs pcommon.Map) topology.Entity {
	cluster := stringAttr(attrs, topology.AttrK8sClusterName)
	if cluster == "" {
		cluster = p.cfg.Cluster
	}
	namespace := stringAttr(attrs, topology.AttrK8sNamespaceName)
	if cluster == "" {
		namespace = "" // guarded by the hub: any namespace
	}
	return topology.Entity{Cluster: cluster, Namespace: namespace}
}

// invalidReason checks one attribute map as the sender gave it: every
// topology name a valid Kubernetes name, no topology attribute twice (the
// check would read one value, the exporters write both).
func invalidReason(attrs pcommon.Map) string {
	switch err := topology.ValidateAttributes(attrs); {
	case err == nil:
		return ""
	case errors.Is(err, topology.ErrDuplicateKey):
		return reasonDuplicateAttribute
	default:
		return reasonInvalidName
	}
}

// fitReason checks a record's (or scope's) attributes inside a resource
// guarded by e's resource: valid, and labelling the data with a position that
// resource covers.
func (p *projectAuthzProcessor) fitReason(attrs pcommon.Map, e topology.Entity) string {
	if reason := invalidReason(attrs); reason != "" {
		return reason
	}
	if !p.labelsFit(attrs, e) {
		return reasonResourceMismatch
	}
	return ""
}

// labelsFit says whether a map of attributes (a resource's, or a record's
// inside a resource guarded by e's resource) labels its data with a position
// the guarding resource covers: the same cluster when e has one, the same
// namespace when e has one, the configured hub, and an
// aitelemetry.keycloak.resource equal to the one these labels compute to.
// The hub's resource covers every cluster and the cluster's every namespace.
// The attributes have passed invalidReason: names are strings, each once.
func (p *projectAuthzProcessor) labelsFit(attrs pcommon.Map, e topology.Entity) bool {
	labelled := e
	if v := stringAttr(attrs, topology.AttrK8sClusterName); v != "" {
		if e.Cluster != "" && v != e.Cluster {
			return false
		}
		labelled.Cluster = v
	}
	if v := stringAttr(attrs, topology.AttrK8sNamespaceName); v != "" {
		if e.Namespace != "" && v != e.Namespace {
			return false
		}
		labelled.Namespace = v
	}
	if v, ok := attrs.Get(topology.AttrHubName); ok && v.AsString() != p.cfg.Hub {
		return false
	}
	if v, ok := attrs.Get(topology.AttrKeycloakResource); ok && v.AsString() != labelled.Resource(p.cfg.Hub) {
		return false
	}
	return true
}

// stringAttr returns a string attribute's value, "" when absent.
func stringAttr(attrs pcommon.Map, key string) string {
	if v, ok := attrs.Get(key); ok {
		return v.Str()
	}
	return ""
}

// authorize decides each of n resources, whose attributes attrs returns, and
// returns which are refused. Each distinct Keycloak resource is asked once, in
// ctx (the caller's), by the shared loop of internal/authz. An error means the
// batch must not go on: retryable when a decision could not be made,
// permanent when something was refused and on_denied is reject.
//
// records calls check with the attribute maps of resource i's scopes and
// records and returns the first refusal reason check gives: a resource whose
// records are invalid or label their data with a position its guarding
// resource does not cover is refused.
func (p *projectAuthzProcessor) authorize(ctx context.Context, n int, attrs func(int) pcommon.Map, records func(i int, check func(pcommon.Map) string) string) ([]bool, error) {
	refused := make([]bool, n)
	reasons := make([]string, n)
	if client.FromContext(ctx).Auth == nil {
		p.noCallerOnce.Do(func() {
			p.logger.Error("No authenticated caller in the context: every resource is refused. " +
				"Configure an authenticator on the receiver, and put this processor before any batch processor (batching drops the caller).")
		})
		for i := range n {
			refused[i], reasons[i] = true, reasonNoCaller
		}
		return refused, p.finish(ctx, refused, reasons)
	}
	decisions := authz.NewDecisions(p.authorizer, p.cfg.MaxResourcesPerRequest)
	for i := range n {
		e, resource, reason := p.resourceOf(attrs(i))
		if reason == "" {
			reason = records(i, func(m pcommon.Map) string { return p.fitReason(m, e) })
		}
		if reason != "" {
			refused[i], reasons[i] = true, reason
			continue
		}
		switch err := decisions.Decide(ctx, resource); {
		case err == nil:
		case errors.Is(err, authz.ErrTooManyResources):
			refused[i], reasons[i] = true, reasonTooManyResources
		case errors.Is(err, authz.ErrDenied):
			refused[i], reasons[i] = true, reasonDenied
		default:
			p.logger.Warn("No authorization decision; the batch is refused with a retryable error",
				zap.String("resource", resource), zap.Error(err))
			p.telemetry.ProcessorProjectauthzBatchesUnavailable.Add(ctx, 1)
			return nil, errAuthorizationUnavailable
		}
	}
	return refused, p.finish(ctx, refused, reasons)
}

// finish counts the decisions and says whether the batch goes on.
func (p *projectAuthzProcessor) finish(ctx context.Context, refused []bool, reasons []string) error {
	allowed, anyRefused := 0, false
	for i, r := range refused {
		if r {
			anyRefused = true
			p.telemetry.ProcessorProjectauthzResourcesRefused.Add(ctx, 1, reasonOptions[reasons[i]])
		} else {
			allowed++
		}
	}
	if anyRefused && p.cfg.OnDenied == OnDeniedReject {
		return consumererror.NewPermanent(errRefused)
	}
	if allowed > 0 {
		p.telemetry.ProcessorProjectauthzResourcesAllowed.Add(ctx, int64(allowed))
	}
	if allowed == 0 && len(refused) > 0 {
		return processorhelper.ErrSkipProcessingData
	}
	return nil
}

func (p *projectAuthzProcessor) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	rs := td.ResourceSpans()
	refused, err := p.authorize(ctx, rs.Len(),
		func(i int) pcommon.Map { return rs.At(i).Resource().Attributes() },
		func(i int, check func(pcommon.Map) string) string { return spansReason(rs.At(i), check) })
	if err != nil {
		return td, err
	}
	i := 0
	rs.RemoveIf(func(ptrace.ResourceSpans) bool { i++; return refused[i-1] })
	return td, nil
}

func (p *projectAuthzProcessor) processMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	rm := md.ResourceMetrics()
	refused, err := p.authorize(ctx, rm.Len(),
		func(i int) pcommon.Map { return rm.At(i).Resource().Attributes() },
		func(i int, check func(pcommon.Map) string) string { return metricsReason(rm.At(i), check) })
	if err != nil {
		return md, err
	}
	i := 0
	rm.RemoveIf(func(pmetric.ResourceMetrics) bool { i++; return refused[i-1] })
	return md, nil
}

func (p *projectAuthzProcessor) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	rl := ld.ResourceLogs()
	refused, err := p.authorize(ctx, rl.Len(),
		func(i int) pcommon.Map { return rl.At(i).Resource().Attributes() },
		func(i int, check func(pcommon.Map) string) string { return logsReason(rl.At(i), check) })
	if err != nil {
		return ld, err
	}
	i := 0
	rl.RemoveIf(func(plog.ResourceLogs) bool { i++; return refused[i-1] })
	return ld, nil
}

// spansReason checks the attributes of scopes, spans and span events.
func spansReason(rs ptrace.ResourceSpans, check func(pcommon.Map) string) string {
	for _, ss := range rs.ScopeSpans().All() {
		if r := check(ss.Scope().Attributes()); r != "" {
			return r
		}
		for _, span := range ss.Spans().All() {
			if r := check(span.Attributes()); r != "" {
				return r
			}
			for _, ev := range span.Events().All() {
				if r := check(ev.Attributes()); r != "" {
					return r
				}
			}
		}
	}
	return ""
}

// metricsReason checks the attributes of scopes and data points.
func metricsReason(rm pmetric.ResourceMetrics, check func(pcommon.Map) string) string {
	for _, sm := range rm.ScopeMetrics().All() {
		if r := check(sm.Scope().Attributes()); r != "" {
			return r
		}
		for _, m := range sm.Metrics().All() {
			if r := dataPointsReason(m, check); r != "" {
				return r
			}
		}
	}
	return ""
}

func dataPointsReason(m pmetric.Metric, check func(pcommon.Map) string) string {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return pointsReason(m.Gauge().DataPoints().All(), check)
	case pmetric.MetricTypeSum:
		return pointsReason(m.Sum().DataPoints().All(), check)
	case pmetric.MetricTypeHistogram:
		return pointsReason(m.Histogram().DataPoints().All(), check)
	case pmetric.MetricTypeExponentialHistogram:
		return pointsReason(m.ExponentialHistogram().DataPoints().All(), check)
	case pmetric.MetricTypeSummary:
		return pointsReason(m.Summary().DataPoints().All(), check)
	}
	return ""
}

func pointsReason[P interface{ Attributes() pcommon.Map }](all func(func(int, P) bool), check func(pcommon.Map) string) string {
	for _, dp := range all {
		if r := check(dp.Attributes()); r != "" {
			return r
		}
	}
	return ""
}

// logsReason checks the attributes of scopes and log records.
func logsReason(rl plog.ResourceLogs, check func(pcommon.Map) string) string {
	for _, sl := range rl.ScopeLogs().All() {
		if r := check(sl.Scope().Attributes()); r != "" {
			return r
		}
		for _, lr := range sl.LogRecords().All() {
			if r := check(lr.Attributes()); r != "" {
				return r
			}
		}
	}
	return ""
}
