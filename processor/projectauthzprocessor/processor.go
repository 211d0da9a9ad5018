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

// maxNameLength is a DNS subdomain's limit, the longest a Kubernetes name
// (namespace, cluster) can be; longer values are not real resources.
const maxNameLength = 253

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
// must not pick the resource it is checked against).
func (p *projectAuthzProcessor) resourceOf(attrs pcommon.Map) (resource, reason string) {
	cluster, ok := stringAttr(attrs, topology.AttrK8sClusterName)
	if !ok {
		return "", reasonImplausibleName
	}
	if cluster == "" {
		cluster = p.cfg.Cluster
	}
	namespace, ok := stringAttr(attrs, topology.AttrK8sNamespaceName)
	if !ok {
		return "", reasonImplausibleName
	}
	if hub, present := attrs.Get(topology.AttrHubName); present && hub.AsString() != p.cfg.Hub {
		return "", reasonResourceMismatch
	}
	resource = topology.Entity{Cluster: cluster, Namespace: namespace}.Resource(p.cfg.Hub)
	if claimed, present := attrs.Get(topology.AttrKeycloakResource); present && claimed.AsString() != resource {
		return "", reasonResourceMismatch
	}
	return resource, ""
}

// stringAttr returns a resource attribute's value, "" when absent; ok is false
// when it is not a plausible Kubernetes name (not a string, or too long).
func stringAttr(attrs pcommon.Map, key string) (string, bool) {
	v, present := attrs.Get(key)
	if !present {
		return "", true
	}
	if v.Type() != pcommon.ValueTypeStr || len(v.Str()) > maxNameLength {
		return "", false
	}
	return v.Str(), true
}

// authorize decides each of n resources, whose attributes attrs returns, and
// returns which are refused. Each distinct Keycloak resource is asked once, in
// ctx (the caller's). An error means the batch must not go on: retryable when
// a decision could not be made, permanent when something was refused and
// on_denied is reject.
func (p *projectAuthzProcessor) authorize(ctx context.Context, n int, attrs func(int) pcommon.Map) ([]bool, error) {
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
		resource, reason := p.resourceOf(attrs(i))
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
	refused, err := p.authorize(ctx, rs.Len(), func(i int) pcommon.Map { return rs.At(i).Resource().Attributes() })
	if err != nil {
		return td, err
	}
	i := 0
	rs.RemoveIf(func(ptrace.ResourceSpans) bool { i++; return refused[i-1] })
	return td, nil
}

func (p *projectAuthzProcessor) processMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	rm := md.ResourceMetrics()
	refused, err := p.authorize(ctx, rm.Len(), func(i int) pcommon.Map { return rm.At(i).Resource().Attributes() })
	if err != nil {
		return md, err
	}
	i := 0
	rm.RemoveIf(func(pmetric.ResourceMetrics) bool { i++; return refused[i-1] })
	return md, nil
}

func (p *projectAuthzProcessor) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	rl := ld.ResourceLogs()
	refused, err := p.authorize(ctx, rl.Len(), func(i int) pcommon.Map { return rl.At(i).Resource().Attributes() })
	if err != nil {
		return ld, err
	}
	i := 0
	rl.RemoveIf(func(plog.ResourceLogs) bool { i++; return refused[i-1] })
	return ld, nil
}
