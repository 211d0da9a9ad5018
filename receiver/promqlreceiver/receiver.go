package promqlreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/promqlreceiver"

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/nerc-project/ai-telemetry-collector/receiver/promqlreceiver/internal/metadata"
)

var errNotStorage = errors.New("is not a storage extension")

type promqlReceiver struct {
	cfg       *Config
	set       receiver.Settings
	next      consumer.Metrics
	telemetry *metadata.TelemetryBuilder
	obsrecv   *receiverhelper.ObsReport
	queries   []query
	now       func() time.Time

	api     *apiClient
	cursors *cursors
	client  storage.Client
	cancel  context.CancelFunc
	running sync.WaitGroup
}

var _ receiver.Metrics = (*promqlReceiver)(nil)

func newReceiver(set receiver.Settings, cfg *Config, next consumer.Metrics) (*promqlReceiver, error) {
	// The collector validates before creating; checked again because the
	// cluster scope of the queries is what keeps clusters apart.
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	queries, err := generateQueries(cfg)
	if err != nil {
		return nil, err
	}
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	obsrecv, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID: set.ID, Transport: "http", ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	return &promqlReceiver{
		cfg: cfg, set: set, next: next, telemetry: tb, obsrecv: obsrecv, queries: queries, now: time.Now,
	}, nil
}

// Start builds the HTTP client (TLS, auth), loads the cursors and starts one
// schedule per generated query. Queries run independently: one failing or
// slow query delays no other.
func (r *promqlReceiver) Start(ctx context.Context, host component.Host) error {
	if err := r.setup(ctx, host); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	for _, q := range r.queries {
		r.running.Add(1)
		go r.loop(runCtx, q)
	}
	r.set.Logger.Info("Running PromQL queries", zap.Int("queries", len(r.queries)), zap.String("endpoint", redacted(r.cfg.Endpoint)))
	return nil
}

// setup builds the HTTP client and opens the cursors.
func (r *promqlReceiver) setup(ctx context.Context, host component.Host) error {
	httpClient, err := r.cfg.ToClient(ctx, host.GetExtensions(), r.set.TelemetrySettings)
	if err != nil {
		return err
	}
	if r.cfg.plainHTTPCredentials() {
		r.set.Logger.Warn("insecure_http_auth: the client's credentials are sent over plain http to a host off loopback",
			zap.String("endpoint", redacted(r.cfg.Endpoint)))
	}
	// The authenticator adds the token in the transport, so every hop of a
	// redirect carries it: refuse a hop that leaves the host or https.
	httpClient.CheckRedirect = checkRedirect
	r.api = &apiClient{base: strings.TrimRight(r.cfg.Endpoint, "/"), client: httpClient, maxSize: r.cfg.MaxResponseSize}
	if r.cfg.Storage != nil {
		ext, ok := host.GetExtensions()[*r.cfg.Storage]
		if !ok {
			return fmt.Errorf("storage %s: extension not found", r.cfg.Storage)
		}
		se, ok := ext.(storage.Extension)
		if !ok {
			return fmt.Errorf("storage %s: %w", r.cfg.Storage, errNotStorage)
		}
		if r.client, err = se.GetClient(ctx, component.KindReceiver, r.set.ID, "cursors"); err != nil {
			return fmt.Errorf("storage %s: %w", r.cfg.Storage, err)
		}
	}
	r.cursors = newCursors(r.client)
	return nil
}

// Shutdown stops the schedules, waiting for runs in flight (their requests
// are cancelled) until ctx ends, and closes the storage client.
func (r *promqlReceiver) Shutdown(ctx context.Context) error {
	if r.cancel != nil {
		r.cancel()
	}
	stopped := make(chan struct{})
	go func() {
		r.running.Wait()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		// A run held by a next consumer that ignores cancellation: it may
		// still move its cursor, so the storage client stays open.
		return fmt.Errorf("promql runs still in flight: %w", ctx.Err())
	}
	var err error
	if r.client != nil {
		err = r.client.Close(ctx)
		r.client = nil
	}
	r.telemetry.Shutdown()
	return err
}

func (r *promqlReceiver) loop(ctx context.Context, q query) {
	defer r.running.Done()
	st := &queryState{}
	r.run(ctx, q, st)
	ticker := time.NewTicker(q.interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			r.run(ctx, q, st)
		}
	}
}

// queryState is what one query's schedule remembers between runs: its
// current failure, so each change is logged once, and, while the query has no
// cursor yet, where its failed runs started (lowWater), so the next run
// fetches that window again.
type queryState struct {
	failing  string
	lowWater model.Time
}

// holdFrom remembers, for a query without a cursor, what a failed run
// starting at from leaves to fetch again: samples from from on for a raw
// query; the evaluation at from (one step earlier is done) for an evaluated one.
func (st *queryState) holdFrom(q query, cursor, from model.Time) {
	if cursor != 0 || from <= 0 {
		return
	}
	if q.raw {
		st.lowWater = from - 1
		return
	}
	st.lowWater = from.Add(-q.step)
}

// redacted is an endpoint without the password of its user info, for logs.
func redacted(endpoint string) string {
	if u, err := url.Parse(endpoint); err == nil {
		return u.Redacted()
	}
	return endpoint
}

func (r *promqlReceiver) transition(q query, st *queryState, reason string, err error) {
	if reason == st.failing {
		return
	}
	if reason == "" {
		r.set.Logger.Info("PromQL query recovered", zap.String("query", q.id), zap.String("was", st.failing))
	} else {
		r.set.Logger.Warn("PromQL query failing", zap.String("query", q.id), zap.String("reason", reason), zap.Error(err))
	}
	st.failing = reason
}

// run fetches what the query has beyond its cursor and emits it, a catch-up
// longer than catch_up_chunk in chunks, oldest first. The cursor moves only
// once the next consumer accepted a chunk's points, so refused points are
// fetched again by the next run (as a catch-up, bounded by max_catch_up).
func (r *promqlReceiver) run(ctx context.Context, q query, st *queryState) {
	withQuery := attribute.String("query", q.id)
	now := r.now().Truncate(time.Millisecond).Add(-r.cfg.Delay) // the API as of delay ago
	cursor, err := r.cursors.get(ctx, q.id)
	switch {
	case errors.Is(err, errBadCursor):
		// Unreadable content: start over without one (one interval back).
		r.telemetry.ReceiverPromqlCursorErrors.Add(ctx, 1, metric.WithAttributes(withQuery))
		r.transition(q, st, "cursor_error", err)
		cursor = 0
	case err != nil:
		// The storage failed: running without the cursor would repeat or
		// skip samples and then overwrite it, so the next tick tries again.
		r.telemetry.ReceiverPromqlCursorErrors.Add(ctx, 1, metric.WithAttributes(withQuery))
		r.transition(q, st, "cursor_error", err)
		return
	}
	if cursor == 0 {
		// No stored cursor yet: a run that failed before the first success
		// left where it started in memory, so the next one reaches back to it.
		cursor = st.lowWater
	}
	for continuing := false; ; continuing = true {
		next, ok := r.emitChunk(ctx, q, st, now, cursor, continuing)
		if !ok {
			return
		}
		if next.last {
			break
		}
		cursor = next.cursor
	}
	r.transition(q, st, "", nil)
}

// progress is where a chunk left the query: its cursor, and whether the
// chunk reached the run's time.
type progress struct {
	cursor model.Time
	last   bool
}

// emitChunk fetches and emits the next chunk after cursor (continuing: after
// an earlier chunk of the same run) and stores the cursor it reached; ok is
// false when the run must stop (a failure, already counted and logged, or
// shutdown).
func (r *promqlReceiver) emitChunk(ctx context.Context, q query, st *queryState, now time.Time, cursor model.Time, continuing bool) (progress, bool) {
	withQuery := attribute.String("query", q.id)
	f, err := r.fetch(ctx, q, now, cursor, continuing)
	if err != nil {
		if ctx.Err() != nil { // shutting down
			return progress{}, false
		}
		reason := reasonOf(err)
		r.telemetry.ReceiverPromqlQueryFailures.Add(ctx, 1, metric.WithAttributes(withQuery, attribute.String("reason", reason)))
		r.transition(q, st, reason, err)
		st.holdFrom(q, cursor, f.from)
		return progress{}, false
	}
	res := f.res
	r.telemetry.ReceiverPromqlQueries.Add(ctx, 1, metric.WithAttributes(withQuery, attribute.String("api", f.api)))
	if len(res.warnings) > 0 {
		r.set.Logger.Debug("PromQL query warnings", zap.String("query", q.id), zap.Strings("warnings", res.warnings))
	}
	if res.unsupported > 0 {
		r.telemetry.ReceiverPromqlPointsSkipped.Add(ctx, int64(res.unsupported),
			metric.WithAttributes(withQuery, attribute.String("reason", "unsupported")))
	}
	r.dropOutOfScope(ctx, q, res)
	conv := convert(q, res, cursor, model.TimeFromUnixNano(now.UnixNano()), r.set.BuildInfo.Version)
	if conv.skipped > 0 {
		r.telemetry.ReceiverPromqlPointsSkipped.Add(ctx, int64(conv.skipped),
			metric.WithAttributes(withQuery, attribute.String("reason", "already_emitted")))
	}
	if conv.future > 0 {
		r.telemetry.ReceiverPromqlPointsSkipped.Add(ctx, int64(conv.future),
			metric.WithAttributes(withQuery, attribute.String("reason", "future")))
	}
	if conv.points > 0 {
		opCtx := r.obsrecv.StartMetricsOp(ctx)
		err := r.next.ConsumeMetrics(opCtx, conv.metrics)
		r.obsrecv.EndMetricsOp(opCtx, metadata.Type.String(), conv.points, err)
		switch {
		case err != nil && ctx.Err() != nil: // shutting down: the next start fetches them again
			return progress{}, false
		case consumererror.IsPermanent(err):
			// Fetching them again would be refused again until they aged
			// out of max_catch_up, stalling the query: count them and move on.
			r.telemetry.ReceiverPromqlConsumeErrors.Add(ctx, 1, metric.WithAttributes(withQuery))
			r.set.Logger.Error("Points refused permanently by the next consumer; not fetched again",
				zap.String("query", q.id), zap.Int("points", conv.points), zap.Error(err))
		case err != nil:
			r.telemetry.ReceiverPromqlConsumeErrors.Add(ctx, 1, metric.WithAttributes(withQuery))
			r.transition(q, st, "consume_error", err)
			st.holdFrom(q, cursor, f.from)
			return progress{}, false
		default:
			r.telemetry.ReceiverPromqlPoints.Add(ctx, int64(conv.points), metric.WithAttributes(withQuery))
		}
	}
	next := conv.newest
	switch {
	case !f.last:
		// A chunk before the run's time: everything up to its end is done.
		next = max(next, f.to)
	case q.raw:
		// Samples before the window are never fetched again: after a gap
		// longer than max_catch_up the cursor moves to the window's start
		// even when the window held nothing.
		next = max(next, f.from)
	default:
		// An evaluated query is done up to the evaluation time, results or not.
		next = max(next, model.TimeFromUnixNano(now.UnixNano()))
	}
	st.lowWater = 0
	if next > cursor {
		if err := r.cursors.set(ctx, q.id, next); err != nil {
			r.telemetry.ReceiverPromqlCursorErrors.Add(ctx, 1, metric.WithAttributes(withQuery))
			r.transition(q, st, "cursor_error", err)
			return progress{}, false
		}
	}
	// A chunk always ends after the cursor it started from, so the loop ends.
	return progress{cursor: next, last: f.last || next <= cursor}, true
}

// fetched is one answer and the span it covers.
type fetched struct {
	res  *result
	api  string
	from model.Time // how far back the answer reaches
	to   model.Time // the query's time: the window's end, or the last step
	last bool       // the answer reaches the run's time
}

// fetch asks for what the query has after cursor, at most max_catch_up back,
// at most catch_up_chunk at once. Raw-sample queries read Query[window], the
// window reaching back to the cursor (one interval without a cursor).
// Evaluated queries are evaluated at now; after a missed run, every step from
// the cursor up to now (query_range, steps aligned to end at now), also for
// the rest of a catch-up (continuing) however short.
func (r *promqlReceiver) fetch(ctx context.Context, q query, now time.Time, cursor model.Time, continuing bool) (fetched, error) {
	since := now.Sub(cursor.Time())
	if cursor > 0 && q.maxCatchUp > 0 && since > q.maxCatchUp+2*q.interval {
		r.set.Logger.Warn("Gap since the last emitted sample exceeds max_catch_up; older samples are not fetched",
			zap.String("query", q.id), zap.Time("last_emitted", cursor.Time()), zap.Duration("max_catch_up", q.maxCatchUp))
	}
	if q.raw {
		window := q.interval
		if cursor > 0 {
			window = since
			if q.maxCatchUp > 0 {
				window = min(window, max(q.maxCatchUp, q.interval))
			} else {
				window = min(window, q.interval)
			}
		}
		secs := max(int64((window+time.Second-1)/time.Second), 1)
		f := fetched{api: "query", from: model.TimeFromUnixNano(now.Add(-time.Duration(secs) * time.Second).UnixNano()), last: true}
		at := now
		if chunk := int64(q.chunk / time.Second); cursor > 0 && chunk > 0 && secs > chunk {
			secs, f.last = chunk, false
			at = f.from.Time().Add(time.Duration(chunk) * time.Second)
		}
		f.to = model.TimeFromUnixNano(at.UnixNano())
		var err error
		f.res, err = r.api.instant(ctx, fmt.Sprintf("%s[%ds]", q.promql, secs), at)
		return f, err
	}
	at := model.TimeFromUnixNano(now.UnixNano())
	if cursor == 0 || q.maxCatchUp == 0 || (!continuing && since <= q.interval*3/2) {
		res, err := r.api.instant(ctx, q.promql, now)
		return fetched{res: res, api: "query", from: at, to: at, last: true}, err
	}
	steps := (since + q.step - 1) / q.step // evaluations after the cursor, up to now
	steps = min(steps, q.maxCatchUp/q.step+1)
	start, end := now.Add(-(steps-1)*q.step), now
	f := fetched{api: "query_range", from: model.TimeFromUnixNano(start.UnixNano()), last: true}
	if perChunk := max(q.chunk/q.step, 1); q.chunk > 0 && steps > perChunk {
		end, f.last = start.Add((perChunk-1)*q.step), false
	}
	f.to = model.TimeFromUnixNano(end.UnixNano())
	var err error
	f.res, err = r.api.rangeQuery(ctx, q.promql, start, end, q.step)
	return f, err
}
