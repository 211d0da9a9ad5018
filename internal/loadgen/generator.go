package loadgen // import "github.com/nerc-project/ai-telemetry-collector/internal/loadgen"

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Outcome of a request that got no HTTP status.
const (
	// StatusSkipped: not sent because MaxInFlight requests were outstanding
	// (the generator, not the server, would have been the limit).
	StatusSkipped = -1
	// StatusError: no response (connection error, timeout); the server may or
	// may not have accepted the alerts.
	StatusError = 0
)

var errBadConfig = errors.New("invalid load configuration")

// Config is one run.
type Config struct {
	URL      string
	Rate     int           // requests per second
	Duration time.Duration // how long requests are scheduled
	Payload  Payload
	// Client sends the requests (TLS, authentication); its Timeout bounds each.
	Client *http.Client
	// MaxInFlight bounds outstanding requests; beyond it requests are skipped
	// and counted, so a stalled server cannot exhaust the generator.
	MaxInFlight int
}

// Request is what happened to one scheduled request.
type Request struct {
	Status int // HTTP status, StatusError or StatusSkipped
	// Latency from the scheduled send time to the end of the response (or the
	// error), so time spent waiting behind a slow server counts.
	Latency time.Duration
	// Lag is how late the generator sent the request after its scheduled time.
	Lag time.Duration
}

// Result of a run.
type Result struct {
	Config   Config
	Start    time.Time // scheduled time of request 0
	LastSent time.Time // actual send of the last request
	LastDone time.Time // end of the last response
	Requests []Request // by request index
}

// Run schedules Rate*Duration requests, request i at Start + i/Rate whatever
// happened to the earlier ones (open loop), and waits for all of them.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Rate <= 0 || cfg.Duration <= 0 || cfg.Payload.AlertsPerRequest <= 0 || cfg.Client == nil || cfg.MaxInFlight <= 0 {
		return nil, fmt.Errorf("%w: rate, duration, alerts per request and max in flight must be positive and a client set", errBadConfig)
	}
	n := int(int64(cfg.Rate) * int64(cfg.Duration) / int64(time.Second))
	res := &Result{Config: cfg, Requests: make([]Request, n)}
	var inFlight atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex // guards res.LastDone
	res.Start = time.Now().Add(50 * time.Millisecond)
	for i := range n {
		due := res.Start.Add(time.Duration(int64(i) * int64(time.Second) / int64(cfg.Rate)))
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				wg.Wait()
				return nil, ctx.Err()
			}
		}
		if inFlight.Load() >= int64(cfg.MaxInFlight) {
			res.Requests[i] = Request{Status: StatusSkipped}
			continue
		}
		inFlight.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer inFlight.Add(-1)
			r := send(ctx, cfg, uint64(i), due) //nolint:gosec // i is not negative
			res.Requests[i] = r
			mu.Lock()
			if end := due.Add(r.Latency); end.After(res.LastDone) {
				res.LastDone = end
			}
			mu.Unlock()
		}()
		res.LastSent = time.Now()
	}
	wg.Wait()
	return res, nil
}

func send(ctx context.Context, cfg Config, req uint64, due time.Time) Request {
	body, err := cfg.Payload.Body(req)
	if err != nil {
		return Request{Status: StatusError, Latency: time.Since(due)}
	}
	sent := time.Now()
	r := Request{Status: StatusError, Lag: sent.Sub(due)}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL, bytes.NewReader(body))
	if err == nil {
		hreq.Header.Set("Content-Type", "application/json")
		var resp *http.Response
		resp, err = cfg.Client.Do(hreq)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if err == nil {
				r.Status = resp.StatusCode
			}
		}
	}
	r.Latency = time.Since(due)
	return r
}
