package alertmanagerreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// maxReportedAlertErrors bounds the reasons listed in a 400 response.
const maxReportedAlertErrors = 5

// Attribute sets of the receiver's own counters, built once.
var (
	withStatusFiring   = metric.WithAttributeSet(attribute.NewSet(attribute.String("status", statusFiring)))
	withStatusResolved = metric.WithAttributeSet(attribute.NewSet(attribute.String("status", statusResolved)))
	withKindSession    = metric.WithAttributeSet(attribute.NewSet(attribute.String("kind", "session")))
	withKindStart      = metric.WithAttributeSet(attribute.NewSet(attribute.String("kind", "start")))

	withReasonUnauthorized = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "unauthorized")))
)

// handleNotification answers Alertmanager: 200 once the next consumer took
// the spans; 400 for a body that cannot be used (Alertmanager does not retry
// 4xx), listing invalid alerts while still accepting the valid ones; 413 over
// the size limit; 503 when the consumer asks for a retry, so nothing is lost;
// 422 when the consumer refuses the data for good. With an authorizer, alerts
// of projects the sender may not write are dropped (counted, reason
// unauthorized); 403 when that is every alert, 503 when no decision could be made.
func (r *alertmanagerReceiver) handleNotification(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.reject(req.Context(), w, http.StatusMethodNotAllowed, "method_not_allowed", "only POST is accepted")
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			r.reject(req.Context(), w, http.StatusRequestEntityTooLarge, "too_large",
				fmt.Sprintf("body exceeds %d bytes", tooLarge.Limit))
			return
		}
		r.reject(req.Context(), w, http.StatusBadRequest, "read_error", "cannot read body")
		return
	}

	n, err := decodeNotification(body)
	if err != nil {
		r.reject(req.Context(), w, http.StatusBadRequest, reason(err), err.Error())
		return
	}

	refused, err := r.authorizeAlerts(req.Context(), n)
	switch {
	case err != nil:
		r.reject(req.Context(), w, http.StatusServiceUnavailable, "authorization_unavailable", err.Error())
		return
	case len(n.Alerts) > 0 && len(refused) == len(n.Alerts):
		r.telemetry.ReceiverAlertmanagerAlertsRejected.Add(req.Context(), int64(len(refused)), withReasonUnauthorized)
		r.reject(req.Context(), w, http.StatusForbidden, "unauthorized", "not allowed to write data of these projects")
		return
	}

	result := r.process(req.Context(), n, body, refused)
	switch {
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
	invalid    []invalidAlert
	consumeErr error
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

// process turns a decoded notification into spans, hands them to the next
// consumer and records what was emitted. The record only changes after the
// consumer accepted the spans, so a failed request retried by Alertmanager
// emits them again.
func (r *alertmanagerReceiver) process(ctx context.Context, n *notification, body []byte, refused map[int]bool) processResult {
	r.telemetry.ReceiverAlertmanagerNotifications.Add(ctx, 1, metric.WithAttributes(attribute.String("status", n.Status)))
	if n.TruncatedAlerts > 0 {
		r.telemetry.ReceiverAlertmanagerAlertsTruncated.Add(ctx, n.truncatedAlerts())
		r.settings.Logger.Warn("Alertmanager truncated a notification (max_alerts); the left-out alerts arrive in later notifications or not at all",
			zap.Uint64("truncated_alerts", n.TruncatedAlerts), zap.String("group_key", n.GroupKey))
	}

	r.mu.Lock()
	defer r.mu.Unlock()

	var result processResult
	var updates []recordUpdate
	var starts, sessions, repeats, firing, resolved int
	r.builder.reset()
	for i := range n.Alerts {
		a := &n.Alerts[i]
		if err := a.validate(); err != nil {
			result.invalid = append(result.invalid, invalidAlert{index: i, err: err})
			r.telemetry.ReceiverAlertmanagerAlertsRejected.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reason(err))))
			continue
		}
		if refused[i] {
			r.telemetry.ReceiverAlertmanagerAlertsRejected.Add(ctx, 1, withReasonUnauthorized)
			continue
		}
		if a.Status == statusFiring {
			firing++
		} else {
			resolved++
		}
		if r.traces == nil {
			continue
		}
		ids := deriveSessionIDs(a.Fingerprint, a.StartsAt.UnixNano())
		key := ids.recordKey()
		state, err := r.record.get(ctx, key)
		if err != nil {
			// Without the record, emitting again is safer than losing a span:
			// the IDs are deterministic, so a store sees the same span twice.
			r.telemetry.ReceiverAlertmanagerSessionRecordErrors.Add(ctx, 1)
			r.settings.Logger.Warn("Cannot read the session record", zap.Error(err))
		}
		switch {
		case a.Status == statusResolved && state&sessionEmitted == 0:
			r.builder.addSession(n, a, ids)
			updates = append(updates, recordUpdate{key: key, state: sessionEmitted})
			sessions++
		case a.Status == statusFiring && state&(startEmitted|sessionEmitted) == 0:
			r.builder.addStart(n, a, ids)
			updates = append(updates, recordUpdate{key: key, state: startEmitted})
			starts++
		default:
			repeats++
		}
	}
	r.telemetry.ReceiverAlertmanagerAlerts.Add(ctx, int64(firing), withStatusFiring)
	r.telemetry.ReceiverAlertmanagerAlerts.Add(ctx, int64(resolved), withStatusResolved)
	if repeats > 0 {
		r.telemetry.ReceiverAlertmanagerRepeatsSuppressed.Add(ctx, int64(repeats))
	}

	if spans := starts + sessions; spans > 0 {
		obsCtx := r.obsrecv.StartTracesOp(ctx)
		err := r.traces.ConsumeTraces(obsCtx, r.builder.traces)
		r.obsrecv.EndTracesOp(obsCtx, "alertmanager", spans, err)
		if err != nil {
			result.consumeErr = err
			return result
		}
		r.telemetry.ReceiverAlertmanagerSpansEmitted.Add(ctx, int64(sessions), withKindSession)
		r.telemetry.ReceiverAlertmanagerSpansEmitted.Add(ctx, int64(starts), withKindStart)
		if err := r.record.commit(ctx, updates); err != nil {
			r.telemetry.ReceiverAlertmanagerSessionRecordErrors.Add(ctx, 1)
			r.settings.Logger.Warn("Cannot persist the session record; a restart may emit these spans again", zap.Error(err))
		}
	}

	if r.logs != nil {
		ld := auditLog(n, auditBody(n, body, refused), len(result.invalid))
		obsCtx := r.obsrecv.StartLogsOp(ctx)
		err := r.logs.ConsumeLogs(obsCtx, ld)
		r.obsrecv.EndLogsOp(obsCtx, "alertmanager", 1, err)
		if err != nil {
			result.consumeErr = err
		}
	}
	return result
}
