package alertmanagerreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver"

import (
	"context"
	"fmt"
	"sync"

	"go.opentelemetry.io/collector/client"
)

// decodeFactor is how many bytes of heap a notification holds, at most, per
// byte of its body while it is decoded, admitted and turned into spans: up to
// 24.7 measured (22.5 without -race) for the worst shapes, 1 MiB of alerts of
// 128 one- or two-character labels or annotations each, or of bare alerts of
// ~100 bytes each becoming a span of a dozen attributes (about 10.5 for
// realistic GPUInUse alerts). Rounded up with room for the audit record's copy
// of the body, made once the spans are handed on. TestMemoryBudget holds the
// largest bodies of those shapes and checks the heap against it.
const decodeFactor = 32

// Reasons of requests refused by the budget, as the telemetry spells them.
const (
	reasonTooManyRequests = "too_many_requests"
	reasonMemoryBudget    = "memory_budget"
	reasonCallerLimit     = "caller_limit"
)

// inFlight is the receiver's memory budget: what the notifications being
// handled may hold at once, taken before a body is read, so a notification
// over the budget costs nothing but its refusal. Each takes a request and
// the bytes its body declares (the largest allowed body when it declares
// none); an authenticated caller gets at most its own share of both, so one
// caller (or its slow bodies) cannot take every slot from the others.
type inFlight struct {
	maxRequests, maxRequestsPerCaller int
	maxBytes, maxBytesPerCaller       int64

	mu       sync.Mutex
	requests int
	bytes    int64
	callers  map[string]*callerLoad
}

type callerLoad struct {
	requests int
	bytes    int64
}

func newInFlight(cfg *Config) *inFlight {
	return &inFlight{
		maxRequests:          cfg.MaxConcurrentRequests,
		maxRequestsPerCaller: cfg.MaxConcurrentRequestsPerCaller,
		maxBytes:             cfg.MaxBodyBytesInFlight,
		maxBytesPerCaller:    cfg.MaxBodyBytesInFlightPerCaller,
		callers:              map[string]*callerLoad{},
	}
}

// enter takes a request and size bytes for caller ("" when unauthenticated:
// only the receiver's limits apply). It returns the release to call once the
// notification is done, or the reason and message of a refusal.
func (f *inFlight) enter(caller string, size int64) (release func(), reason, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	load := f.callers[caller]
	if caller != "" {
		var held callerLoad
		if load != nil {
			held = *load
		}
		switch {
		case held.requests >= f.maxRequestsPerCaller:
			return nil, reasonCallerLimit, fmt.Sprintf("more than %d notifications of this caller in progress, retry later", f.maxRequestsPerCaller)
		case held.bytes+size > f.maxBytesPerCaller:
			return nil, reasonCallerLimit, fmt.Sprintf("notifications of this caller in progress hold more than %d body bytes, retry later", f.maxBytesPerCaller)
		}
	}
	switch {
	case f.requests >= f.maxRequests:
		return nil, reasonTooManyRequests, fmt.Sprintf("more than %d notifications in progress, retry later", f.maxRequests)
	case f.bytes+size > f.maxBytes:
		return nil, reasonMemoryBudget, fmt.Sprintf("notifications in progress hold more than %d body bytes, retry later", f.maxBytes)
	}
	f.requests++
	f.bytes += size
	if caller != "" {
		if load == nil {
			load = &callerLoad{}
			f.callers[caller] = load
		}
		load.requests++
		load.bytes += size
	}
	return func() { f.leave(caller, size) }, "", ""
}

func (f *inFlight) leave(caller string, size int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests--
	f.bytes -= size
	if load := f.callers[caller]; load != nil {
		load.requests--
		load.bytes -= size
		if load.requests == 0 {
			delete(f.callers, caller)
		}
	}
}

// callerAttribute is the attribute of client.Info.Auth naming the caller:
// keycloakauth's AttrSubject (the token's sub), also what upstream's oidc
// authenticator calls it.
const callerAttribute = "subject"

// callerOf is the authenticated subject of the request in ctx, or "".
func callerOf(ctx context.Context) string {
	auth := client.FromContext(ctx).Auth
	if auth == nil {
		return ""
	}
	subject, _ := auth.GetAttribute(callerAttribute).(string)
	return subject
}

// held is the number of notifications in flight.
func (f *inFlight) held() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}
