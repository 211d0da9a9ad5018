package authz // import "github.com/nerc-project/ai-telemetry-collector/internal/authz"

import (
	"context"
	"errors"
	"fmt"
)

// ErrTooManyResources is returned (wrapped) for a resource beyond a batch's
// bound on distinct resources: each costs a request to the authorization
// server, so one request cannot make it ask without limit.
var ErrTooManyResources = errors.New("too many distinct resources in one request")

// ErrUnavailable is returned (wrapped) when no decision could be made (the
// authorization server is down, or the request was cancelled). The caller
// must fail closed with a retryable answer, never let the data through.
var ErrUnavailable = errors.New("authorization decision unavailable, retry later")

// Decisions is the authorization loop of one request (one OTLP batch, one
// Alertmanager notification): each distinct resource is asked once, in the
// caller's context, and at most max distinct resources are asked at all.
// It is not safe for concurrent use; make one per request.
type Decisions struct {
	authorizer Authorizer
	max        int
	decided    map[string]error
}

// NewDecisions starts the decisions of one request.
func NewDecisions(a Authorizer, maxResources int) *Decisions {
	return &Decisions{authorizer: a, max: maxResources, decided: map[string]error{}}
}

// Decide says whether the caller in ctx may write data guarded by resource:
// nil when allowed, an error wrapping ErrDenied when refused (by the server,
// or ErrTooManyResources as well when the bound is reached), and one wrapping
// ErrUnavailable when no decision could be made.
func (d *Decisions) Decide(ctx context.Context, resource string) error {
	if err, ok := d.decided[resource]; ok {
		return err
	}
	if len(d.decided) >= d.max {
		return fmt.Errorf("%w: %w (%d)", ErrDenied, ErrTooManyResources, d.max)
	}
	var err error
	switch {
	case ctx.Err() != nil:
		err = fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	default:
		err = d.authorizer.Authorize(ctx, resource)
		if err != nil && !errors.Is(err, ErrDenied) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	d.decided[resource] = err
	return err
}
