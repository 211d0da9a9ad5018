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
	reasonDenied           = "denied"
	reasonNoCaller         = "no_caller"
	reasonResourceMismatch = "resource_mismatch"
	reasonImplausibleName  = "implausible_name"
	reasonTooManyResources = "too_many_resources"
)

var reasonOptions = func() map[string]metric.AddOption {
	m := map[string]metric.AddOption{}
	for _, r := range []string{reasonDenied, reasonNoCaller, reasonResourceMismatch, reasonImplausibleName, reasonTooManyResources} {
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
// refusal reason instead when the attributes cannot name a real resource, or
// when aitelemetry.keycloak.resource names another resource than the computed
// one or aitelemetry.hub.name another hub than the configured one (the caller
// must not pick the resource it is checked against). e is the position the
// resource covers, against which the records inside are checked.
func (p *projectAuthzProcessor) resourceOf(attrs pcommon.Map) (e topology.Entity, resource, reason string) {
	cluster, ok := stringAttr(attrs, topology.AttrK8sClusterName)
	if !ok {
		return e, "", reasonImplausibleName
	}
	if cluster == "" {
		cluster = p.cfg.Cluster
	}
	namespace, ok := stringAttr(attrs, topology.AttrK8sNamespaceName)
	if !ok {
		return e, "", reasonImplausibleName
	}
	if cluster == "" {
		namespace = "" // guarded by the hub: any namespace
	}
	e = topology.Entity{Cluster: cluster, Namespace: namespace}
	resource = e.Resource(p.cfg.Hub)
	if !p.labelsFit(attrs, e) {
		return e, "", reasonResourceMismatch
	}
	return e, resource, ""
}

// labelsFit says whether a map of attributes (a resource's, or a record's
// inside a resource guarded by e's resource) labels its data with a position
// the guarding resource covers: the same cluster when e has one, the same
// namespace when e has one, the configured hub, and an
// aitelemetry.keycloak.resource equal to the one these labels compute to.
// The hub's resource covers every cluster and the cluster's every namespace.
func (p *projectAuthzProcessor) labelsFit(attrs pcommon.Map, e topology.Entity) bool {
	labelled := e
	if v, ok := attrs.Get(topology.AttrK8sClusterName); ok && v.AsString() != "" {
		if e.Cluster != "" && v.AsString() != e.Cluster {
			return false
		}
		labelled.Cluster = v.AsString()
	}
	if v, ok := attrs.Get(topology.AttrK8sNamespaceName); ok && v.AsString() != "" {
		if e.Namespace != "" && v.AsString() != e.Namespace {
			return false
		}
		labelled.Namespace = v.AsString()
	}
	if v, ok := attrs.Get(topology.AttrHubName); ok && v.AsString() != p.cfg.Hub {
		return false
	}
	if v, ok := attrs.Get(topology.AttrKeycloakResource); ok && v.AsString() != labelled.Resource(p.cfg.Hub) {
		return false
	}
	return true
}

// stringAttr returns a resource attribute's value, "" when absent; ok is false
// when it is not a plausible Kubernetes name (not a string, or too long).
func stringAttr(attrs pcommon.Map, key string) (string, bool) {
	v, present := attrs.Get(key)
	if !present {
		return "", true
	}
	if v.Type() != pcommon.ValueTypeStr || len(v.Str()) > topology.MaxNameLength {
		return "", false
	}
	return v.Str(), true
}

// authorize decides each of n resources, whose attributes attrs returns, and
// returns which are refused. Each distinct Keycloak resource is asked once, in
// ctx (the caller's). An error means the batch must not go on: retryable when
// a decision could not be made, permanent when something was refused and
// on_denied is reject.
//
// records calls fit with the attribute maps of resource i's scopes and records
// and returns false as soon as fit does: a resource whose records label their
// data with a position its guarding resource does not cover is refused.
func (p *projectAuthzProcessor) authorize(ctx context.Context, n int, attrs func(int) pcommon.Map, records func(i int, fit func(pcommon.Map) bool) bool) ([]bool, error) {
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
	decided := map[string]error{}
	for i := range n {
		e, resource, reason := p.resourceOf(attrs(i))
		if reason == "" && !records(i, func(m pcommon.Map) bool { return p.labelsFit(m, e) }) {
			reason = reasonResourceMismatch
		}
		if reason != "" {
			refused[i], reasons[i] = true, reason
			continue
		}
		err, ok := decided[resource]
		if !ok {
			if len(decided) >= p.cfg.MaxResourcesPerRequest {
				refused[i], reasons[i] = true, reasonTooManyResources
				continue
			}
			if ctx.Err() != nil {
				err = ctx.Err()
			} else {
				err = p.authorizer.Authorize(ctx, resource)
			}
			decided[resource] = err
		}
		switch {
		case err == nil:
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
		func(i int, fit func(pcommon.Map) bool) bool { return spansFit(rs.At(i), fit) })
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
		func(i int, fit func(pcommon.Map) bool) bool { return metricsFit(rm.At(i), fit) })
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
		func(i int, fit func(pcommon.Map) bool) bool { return logsFit(rl.At(i), fit) })
	if err != nil {
		return ld, err
	}
	i := 0
	rl.RemoveIf(func(plog.ResourceLogs) bool { i++; return refused[i-1] })
	return ld, nil
}

// spansFit checks the attributes of scopes, spans and span events.
func spansFit(rs ptrace.ResourceSpans, fit func(pcommon.Map) bool) bool {
	for _, ss := range rs.ScopeSpans().All() {
		if !fit(ss.Scope().Attributes()) {
			return false
		}
		for _, span := range ss.Spans().All() {
			if !fit(span.Attributes()) {
				return false
			}
			for _, ev := range span.Events().All() {
				if !fit(ev.Attributes()) {
					return false
				}
			}
		}
	}
	return true
}

// metricsFit checks the attributes of scopes and data points.
func metricsFit(rm pmetric.ResourceMetrics, fit func(pcommon.Map) bool) bool {
	for _, sm := range rm.ScopeMetrics().All() {
		if !fit(sm.Scope().Attributes()) {
			return false
		}
		for _, m := range sm.Metrics().All() {
			if !dataPointsFit(m, fit) {
				return false
			}
		}
	}
	return true
}

func dataPointsFit(m pmetric.Metric, fit func(pcommon.Map) bool) bool {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return pointsFit(m.Gauge().DataPoints().All(), fit)
	case pmetric.MetricTypeSum:
		return pointsFit(m.Sum().DataPoints().All(), fit)
	case pmetric.MetricTypeHistogram:
		return pointsFit(m.Histogram().DataPoints().All(), fit)
	case pmetric.MetricTypeExponentialHistogram:
		return pointsFit(m.ExponentialHistogram().DataPoints().All(), fit)
	case pmetric.MetricTypeSummary:
		return pointsFit(m.Summary().DataPoints().All(), fit)
	}
	return true
}

func pointsFit[P interface{ Attributes() pcommon.Map }](all func(func(int, P) bool), fit func(pcommon.Map) bool) bool {
	for _, dp := range all {
		if !fit(dp.Attributes()) {
			return false
		}
	}
	return true
}

// logsFit checks the attributes of scopes and log records.
func logsFit(rl plog.ResourceLogs, fit func(pcommon.Map) bool) bool {
	for _, sl := range rl.ScopeLogs().All() {
		if !fit(sl.Scope().Attributes()) {
			return false
		}
		for _, lr := range sl.LogRecords().All() {
			if !fit(lr.Attributes()) {
				return false
			}
		}
	}
	return true
}
