package tenantheader // import "github.com/nerc-project/ai-telemetry-collector/extension/tenantheader"

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensionmiddleware"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcmetadata "google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/nerc-project/ai-telemetry-collector/extension/tenantheader/internal/metadata"
	"github.com/nerc-project/ai-telemetry-collector/internal/tenant"
)

var (
	_ extension.Extension            = (*tenantHeader)(nil)
	_ extensionmiddleware.GRPCClient = (*tenantHeader)(nil)
	_ extensionmiddleware.HTTPClient = (*tenantHeader)(nil)
	_ http.RoundTripper              = roundTripper{}
)

// Why a request is refused (attribute reason of requests_refused).
const (
	reasonMissing   = "missing"
	reasonAmbiguous = "ambiguous"
	reasonInvalid   = "invalid"
)

var (
	// ErrNoTenant is returned (wrapped) for a request whose client metadata
	// holds no usable tenant; the request is not sent.
	ErrNoTenant = errors.New("no tenant for the request")

	reasonOptions = func() map[string]metric.AddOption {
		m := map[string]metric.AddOption{}
		for _, r := range []string{reasonMissing, reasonAmbiguous, reasonInvalid} {
			m[r] = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", r)))
		}
		return m
	}()
)

type tenantHeader struct {
	component.StartFunc

	header      string // as configured, for HTTP (Header.Set canonicalizes it)
	grpcKey     string // lower case, as gRPC metadata keys are
	metadataKey string
	telemetry   *metadata.TelemetryBuilder
}

func newTenantHeader(cfg *Config, set extension.Settings) (*tenantHeader, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return &tenantHeader{
		header:      cfg.Header,
		grpcKey:     strings.ToLower(cfg.Header),
		metadataKey: cfg.MetadataKey,
		telemetry:   tb,
	}, nil
}

func (t *tenantHeader) Shutdown(context.Context) error {
	t.telemetry.Shutdown()
	return nil
}

// tenantOf reads the request's one tenant from its client metadata. Anything
// else (none, several, a value Tempo would not take) is counted and refused:
// there is no default to fall back on.
func (t *tenantHeader) tenantOf(ctx context.Context) (string, error) {
	values := client.FromContext(ctx).Metadata.Get(t.metadataKey)
	var reason string
	var err error
	switch len(values) {
	case 0:
		reason = reasonMissing
		err = fmt.Errorf("%w: client metadata %q is absent; the request is not sent (there is no default tenant). "+
			"Put the projectauthz processor with tenant.metadata_key %q in the pipeline, with no batch processor after it, "+
			"and partition this exporter's sending_queue batches by it (sending_queue.batch.partition.metadata_keys)",
			ErrNoTenant, t.metadataKey, t.metadataKey)
	case 1:
		if verr := tenant.Validate(values[0]); verr != nil {
			reason = reasonInvalid
			err = fmt.Errorf("%w: client metadata %q: %w; the request is not sent", ErrNoTenant, t.metadataKey, verr)
		}
	default:
		reason = reasonAmbiguous
		err = fmt.Errorf("%w: client metadata %q holds %d values, one tenant is required; the request is not sent",
			ErrNoTenant, t.metadataKey, len(values))
	}
	if err != nil {
		t.telemetry.TenantheaderRequestsRefused.Add(ctx, 1, reasonOptions[reason])
		return "", err
	}
	return values[0], nil
}

// GetGRPCClientOptions chains interceptors that set the header on every call.
// A refusal is answered INVALID_ARGUMENT, which the OTLP exporter treats as
// permanent: the data is dropped (and counted by the exporter) rather than
// retried forever or sent without a tenant.
func (t *tenantHeader) GetGRPCClientOptions(context.Context) ([]grpc.DialOption, error) {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			ctx, err := t.outgoing(ctx)
			if err != nil {
				return err
			}
			return invoker(ctx, method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			ctx, err := t.outgoing(ctx)
			if err != nil {
				return nil, err
			}
			return streamer(ctx, desc, cc, method, opts...)
		}),
	}, nil
}

// outgoing is ctx with the tenant as the header's only value, replacing one
// the exporter's static headers may have set.
func (t *tenantHeader) outgoing(ctx context.Context) (context.Context, error) {
	id, err := t.tenantOf(ctx)
	if err != nil {
		return nil, invalidArgumentError{err}
	}
	md, ok := grpcmetadata.FromOutgoingContext(ctx) // a copy
	if !ok {
		md = grpcmetadata.MD{}
	}
	md.Set(t.grpcKey, id)
	return grpcmetadata.NewOutgoingContext(ctx, md), nil
}

// invalidArgumentError carries the gRPC status INVALID_ARGUMENT and still
// wraps ErrNoTenant for errors.Is.
type invalidArgumentError struct{ err error }

func (e invalidArgumentError) Error() string { return e.err.Error() }
func (e invalidArgumentError) Unwrap() error { return e.err }

// GRPCStatus is what status.FromError and the OTLP exporter read.
func (e invalidArgumentError) GRPCStatus() *status.Status {
	return status.New(codes.InvalidArgument, e.err.Error())
}

// GetHTTPRoundTripper wraps the exporter's transport (inside its static
// headers, so the tenant wins over one of them).
func (t *tenantHeader) GetHTTPRoundTripper(context.Context) (extensionmiddleware.WrapHTTPRoundTripperFunc, error) {
	return func(_ context.Context, next http.RoundTripper) (http.RoundTripper, error) {
		return roundTripper{t: t, next: next}, nil
	}, nil
}

type roundTripper struct {
	t    *tenantHeader
	next http.RoundTripper
}

// RoundTrip sends req with the tenant header. A refusal is a permanent
// error (the exporters wrap the transport's error with %w, so exporterhelper
// sees it and does not retry); the body is closed, as RoundTrip must.
func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	id, err := rt.t.tenantOf(req.Context())
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, consumererror.NewPermanent(err)
	}
	out := req.Clone(req.Context()) // a RoundTripper must not change its request
	out.Header.Set(rt.t.header, id)
	return rt.next.RoundTrip(out)
}
