package alertmanagerreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/nerc-project/ai-telemetry-collector/internal/authz"
)

// maxReportedAlertErrors bounds the reasons listed in a 400 response.
const maxReportedAlertErrors = 5

// Attribute sets of the receiver's own counters, built once.
var (
	withStatusFiring   = metric.WithAttributeSet(attribute.NewSet(attribute.String("status", statusFiring)))
	withStatusResolved = metric.WithAttributeSet(attribute.NewSet(attribute.String("status", statusResolved)))
	withKindSession    = metric.WithAttributeSet(attribute.NewSet(attribute.String("kind", "session")))
	withKindStart      = metric.WithAttributeSet(attribute.NewSet(attribute.String("kind", "start")))
)

// handleNotification answers Alertmanager: 200 once the next consumer took
// the spans; 400 for a body that cannot be used (Alertmanager does not retry
// 4xx), listing invalid alerts while still accepting the valid ones; 413 over
// the size limit; 503 when the consumer asks for a retry, so nothing is lost;
// 422 when the consumer refuses the data for good; 500 when it panicked; 503
// with Retry-After beyond the memory budget (see inFlight), before the body
// is read, and 503 for a body not received within read_timeout. With an
// authorizer, alerts of projects the sender may not write are dropped
// (counted, reason unauthorized); 403 when that is every alert, 503 when no
// decision could be made.
func (r *alertmanagerReceiver) handleNotification(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.reject(req.Context(), w, http.StatusMethodNotAllowed, "method_not_allowed", "only POST is accepted")
		return
	}
	maxBody := r.cfg.maxBodySize()
	if req.ContentLength > maxBody {
		r.reject(req.Context(), w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body exceeds %d bytes", maxBody))
		return
	}
	// The budget is taken before the body is read: a body without a length
	// (chunked) may be as large as allowed.
	size := req.ContentLength
	if size < 0 {
		size = maxBody
	}
	release, why, msg := r.inflight.enter(callerOf(req.Context()), size)
	if release == nil {
		// Alertmanager retries 5xx (not 429); answering now costs less than
		// queueing work its sender may give up on.
		w.Header().Set("Retry-After", "1")
		r.reject(req.Context(), w, http.StatusServiceUnavailable, why, msg)
		return
	}
	defer release()
	r.telemetry.ReceiverAlertmanagerRequestsInFlight.Add(req.Context(), 1)
	r.telemetry.ReceiverAlertmanagerBodyBytesInFlight.Add(req.Context(), size)
	defer func() {
		r.telemetry.ReceiverAlertmanagerRequestsInFlight.Add(req.Context(), -1)
		r.telemetry.ReceiverAlertmanagerBodyBytesInFlight.Add(req.Context(), -size)
	}()
	body, err := readBody(req)
	if err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			r.reject(req.Context(), w, http.StatusRequestEntityTooLarge, "too_large",
				fmt.Sprintf("body exceeds %d bytes", tooLarge.Limit))
		case errors.Is(err, os.ErrDeadlineExceeded):
			// read_timeout: a sender that trickles or stalls gives its slot
			// back; 503, so a slow network's notification is retried.
			r.reject(req.Context(), w, http.StatusServiceUnavailable, "read_timeout", "body not received within read_timeout, retry later")
		default:
			r.reject(req.Context(), w, http.StatusBadRequest, "read_error", "cannot read body")
		}
		return
	}

	n, err := decodeNotification(body)
	if err != nil {
		r.reject(req.Context(), w, http.StatusBadRequest, reason(err), err.Error())
		return
	}

	result := r.process(req.Context(), n, body)
	switch {
	case result.authErr != nil:
		r.reject(req.Context(), w, http.StatusServiceUnavailable, "authorization_unavailable", authz.ErrUnavailable.Error())
	case result.forbidden:
		r.reject(req.Context(), w, http.StatusForbidden, "unauthorized", "not allowed to write data of these projects")
	case result.abandoned:
		// Nobody reads this answer; it is counted, and the sender's retry starts afresh.
		r.reject(req.Context(), w, http.StatusServiceUnavailable, "abandoned", "the request ended before it was processed")
	case result.recordErr != nil:
		r.reject(req.Context(), w, http.StatusServiceUnavailable, "session_record_unavailable", "cannot record the sessions, retry later")
	case errors.Is(result.consumeErr, errConsumerPanic):
		r.reject(req.Context(), w, http.StatusInternalServerError, "consumer_panic", "the pipeline failed, retry later")
	case result.consumeErr != nil && consumererror.IsPermanent(result.consumeErr):
		r.reject(req.Context(), w, http.StatusUnprocessableEntity, "consumer_permanent", "the pipeline refused the data")
	case result.consumeErr != nil:
		r.reject(req.Context(), w, http.StatusServiceUnavailable, "consumer_retryable", "the pipeline is not accepting data, retry later")
	case len(result.invalid) > 0:
		r.reject(req.Context(), w, http.StatusBadRequest, "invalid_alerts", result.describeInvalid())
	default:
		w.WriteHeader(http.StatusOK)
	}
}

// readBody reads the whole body into one buffer of the declared length, not
// the doublings of io.ReadAll, whose garbage would exceed the budget taken.
func readBody(req *http.Request) ([]byte, error) {
	if req.ContentLength < 0 {
		return io.ReadAll(req.Body)
	}
	// The server ends the body at its declared length.
	body := make([]byte, req.ContentLength)
	if _, err := io.ReadFull(req.Body, body); err != nil {
		return nil, err
	}
	return body, nil
}

func (r *alertmanagerReceiver) reject(ctx context.Context, w http.ResponseWriter, status int, why, msg string) {
	r.telemetry.ReceiverAlertmanagerRequestsRejected.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", why)))
	r.settings.Logger.Debug("Rejected Alertmanager notification",
		zap.Int("status", status), zap.String("reason", why), zap.String("detail", msg))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}

type invalidAlert struct {
	index int
	err   error
}

type processResult struct {
	invalid []invalidAlert
	// authErr: no authorization decision could be made; nothing was emitted.
	authErr error
	// forbidden: authorization refused every alert that was not invalid.
	forbidden  bool
	consumeErr error
	recordErr  error
	abandoned  bool
}

func (p processResult) describeInvalid() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d invalid alert(s) dropped, the others were accepted:", len(p.invalid))
	for i, inv := range p.invalid {
		if i == maxReportedAlertErrors {
			fmt.Fprintf(&b, " and %d more", len(p.invalid)-i)
			break
		}
		fmt.Fprintf(&b, " alerts[%d]: %v;", inv.index, inv.err)
	}
	return b.String()
}

// errAbandoned: the sender gave up (its request context ended) before the
// notification's spans were handed on; nothing was emitted or recorded.
var errAbandoned = errors.New("the sender gave up before the notification was processed")

// emission is one span a notification adds.
type emission struct {
	alert accepted
	ids   sessionIDs
	state sessionState
}

// process admits the alerts of a decoded notification (see admit), turns the
// accepted ones into spans, hands them to the next consumer and records what
// was emitted. The order never loses a session and never emits one twice from
// one delivery:
//
//  1. claim: under the record's lock, decide per alert from the record and
//     take the sessions to emit; a session another notification is emitting
//     right now is waited for (its outcome decides), not decided twice;
//  2. if the sender gave up by now, stop: the claim is dropped, nothing was
//     emitted or recorded, so a retry starts afresh;
//  3. hand the spans to the pipeline; on error, drop the claim (503/422, a
//     retry emits them); a panic there is such an error (500), and the
//     claim is dropped whatever panics before step 4;
//  4. once the pipeline accepted them, record the sessions durably even if the
//     sender has gone meanwhile (a retry is then deduplicated), in a group
//     commit shared with concurrent notifications;
//  5. acknowledge. A failed record write answers 503: the retry emits the
//     spans again with the same IDs rather than risk forgetting them.
func (r *alertmanagerReceiver) process(ctx context.Context, n *notification, body []byte) processResult {
	r.telemetry.ReceiverAlertmanagerNotifications.Add(ctx, 1, metric.WithAttributes(attribute.String("status", n.Status)))
	if n.TruncatedAlerts > 0 {
		r.telemetry.ReceiverAlertmanagerAlertsTruncated.Add(ctx, n.truncatedAlerts())
		r.settings.Logger.Warn("Alertmanager truncated a notification (max_alerts); the left-out alerts arrive in later notifications or not at all",
			zap.Uint64("truncated_alerts", n.TruncatedAlerts), zap.String("group_key", n.GroupKey))
	}

	var result processResult
	adm, err := r.admit(ctx, n)
	if err != nil {
		// Counted by the retry, which is decided in full.
		result.authErr = err
		return result
	}
	result.invalid = adm.invalid
	for _, inv := range adm.invalid {
		r.telemetry.ReceiverAlertmanagerAlertsRejected.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reason(inv.err))))
	}
	for why, count := range adm.refused {
		r.telemetry.ReceiverAlertmanagerAlertsRejected.Add(ctx, int64(count), metric.WithAttributes(attribute.String("reason", why)))
	}
	if len(adm.accepted) == 0 && len(adm.refused) > 0 {
		result.forbidden = true
		return result
	}
	var firing, resolved int
	for _, acc := range adm.accepted {
		if n.Alerts[acc.index].Status == statusFiring {
			firing++
		} else {
			resolved++
		}
	}
	r.telemetry.ReceiverAlertmanagerAlerts.Add(ctx, int64(firing), withStatusFiring)
	r.telemetry.ReceiverAlertmanagerAlerts.Add(ctx, int64(resolved), withStatusResolved)

	if r.traces != nil && len(adm.accepted) > 0 {
		if err := r.emitSpans(ctx, n, adm.accepted); err != nil {
			switch {
			case errors.Is(err, errAbandoned):
				result.abandoned = true
			case errors.Is(err, errRecordWrite):
				result.recordErr = err
			default:
				result.consumeErr = err
			}
			return result
		}
	}

	if r.logs != nil {
		ld := auditLog(n, auditBody(n, body, adm.dropped), len(result.invalid))
		obsCtx := r.obsrecv.StartLogsOp(ctx)
		err := r.consumeLogs(obsCtx, ld)
		r.obsrecv.EndLogsOp(obsCtx, "alertmanager", 1, err)
		if err != nil {
			result.consumeErr = err
		}
	}
	return result
}

// errRecordWrite marks a failure to record emitted sessions durably.
var errRecordWrite = errors.New("session record write failed")

// emitSpans runs steps 1 to 4 of process for the accepted alerts.
func (r *alertmanagerReceiver) emitSpans(ctx context.Context, n *notification, alerts []accepted) error {
	c, emissions, repeats, err := r.claimSessions(ctx, n, alerts)
	if err != nil {
		return err
	}
	// Until the committer has it, the claim is this request's to drop, also
	// when something below panics: a claim left held would make every later
	// delivery of its sessions wait until its sender gives up.
	handed := false
	defer func() {
		if !handed {
			r.dropClaim(c)
		}
	}()
	if len(emissions) == 0 {
		r.countRepeats(ctx, repeats)
		return nil
	}

	batch := r.builder.newBatch()
	var starts, sessions int
	for _, e := range emissions {
		if e.state == sessionEmitted {
			batch.addSession(n, &n.Alerts[e.alert.index], e.alert, e.ids)
			sessions++
		} else {
			batch.addStart(n, &n.Alerts[e.alert.index], e.alert, e.ids)
			starts++
		}
	}

	if ctx.Err() != nil {
		return errAbandoned
	}
	// Counted once the sender is known to be waiting, so an abandoned request
	// and its retry do not both count them.
	r.countRepeats(ctx, repeats)
	obsCtx := r.obsrecv.StartTracesOp(ctx)
	err = r.consumeTraces(obsCtx, batch.traces)
	r.obsrecv.EndTracesOp(obsCtx, "alertmanager", batch.count, err)
	if err != nil {
		return err
	}
	r.telemetry.ReceiverAlertmanagerSpansEmitted.Add(ctx, int64(sessions), withKindSession)
	r.telemetry.ReceiverAlertmanagerSpansEmitted.Add(ctx, int64(starts), withKindStart)

	// A failed batch is counted and logged once by the committer (onError),
	// not once per notification in it.
	handed = true
	if err := r.committer.commit(context.WithoutCancel(ctx), c); err != nil {
		return fmt.Errorf("%w: %w", errRecordWrite, err)
	}
	return nil
}

func (r *alertmanagerReceiver) countRepeats(ctx context.Context, repeats int) {
	if repeats > 0 {
		r.telemetry.ReceiverAlertmanagerRepeatsSuppressed.Add(ctx, int64(repeats))
	}
}

// errConsumerPanic: the next consumer panicked. The notification is refused
// (500, which Alertmanager retries) instead of the collector crashing.
var errConsumerPanic = errors.New("the next consumer panicked")

// consumeTraces hands td on, turning a panic of the next consumer into an error.
func (r *alertmanagerReceiver) consumeTraces(ctx context.Context, td ptrace.Traces) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = r.consumerPanicked(p)
		}
	}()
	return r.traces.ConsumeTraces(ctx, td)
}

// consumeLogs hands ld on, turning a panic of the next consumer into an error.
func (r *alertmanagerReceiver) consumeLogs(ctx context.Context, ld plog.Logs) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = r.consumerPanicked(p)
		}
	}()
	return r.logs.ConsumeLogs(ctx, ld)
}

func (r *alertmanagerReceiver) consumerPanicked(p any) error {
	err := fmt.Errorf("%w: %v", errConsumerPanic, p)
	r.settings.Logger.Error("The next consumer panicked; the notification is refused (500) and retried by Alertmanager",
		zap.Error(err), zap.Stack("stack"))
	return err
}

// claimSessions decides, per accepted alert, whether its span is new, and claims
// the new ones. When another notification holds a claim on one of them, it
// waits for that one to end and decides again, holding nothing meanwhile (so
// two notifications never wait on each other).
func (r *alertmanagerReceiver) claimSessions(ctx context.Context, n *notification, alerts []accepted) (*claim, []emission, int, error) {
	for {
		if ctx.Err() != nil {
			return nil, nil, 0, errAbandoned
		}
		c, emissions, repeats, busy := r.tryClaim(ctx, n, alerts)
		if busy == nil {
			return c, emissions, repeats, nil
		}
		if r.onClaimWait != nil {
			r.onClaimWait()
		}
		select {
		case <-busy.done:
		case <-ctx.Done():
			return nil, nil, 0, errAbandoned
		}
	}
}

// tryClaim is one attempt of claimSessions, under the record's lock: the
// claim, or the claim of another notification to wait for (busy).
func (r *alertmanagerReceiver) tryClaim(ctx context.Context, n *notification, alerts []accepted) (c *claim, emissions []emission, repeats int, busy *claim) {
	c = newClaim()
	emissions = make([]emission, 0, len(alerts))
	rec := r.record
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, acc := range alerts {
		a := &n.Alerts[acc.index]
		ids := deriveSessionIDs(a.Fingerprint, a.StartsAt.UnixNano(), acc.resource)
		key := ids.recordKey()
		if other := rec.holder(key); other != nil {
			return nil, nil, 0, other
		}
		state, err := rec.get(ctx, key)
		if err != nil {
			// Without the record, emitting again is safer than losing a span:
			// the IDs are deterministic, so a store sees the same span twice.
			r.telemetry.ReceiverAlertmanagerSessionRecordErrors.Add(ctx, 1)
			r.settings.Logger.Warn("Cannot read the session record", zap.Error(err))
		}
		state |= c.pending(key)
		switch {
		case a.Status == statusResolved && state&sessionEmitted == 0:
			c.add(key, sessionEmitted)
			emissions = append(emissions, emission{alert: acc, ids: ids, state: sessionEmitted})
		case a.Status == statusFiring && state&(startEmitted|sessionEmitted) == 0:
			c.add(key, startEmitted)
			emissions = append(emissions, emission{alert: acc, ids: ids, state: startEmitted})
		default:
			repeats++
		}
	}
	rec.hold(c)
	return c, emissions, repeats, nil
}

// dropClaim gives up a claim whose spans were not accepted: nothing recorded.
func (r *alertmanagerReceiver) dropClaim(c *claim) {
	r.record.releaseAll([]*claim{c}, errAbandoned)
}
