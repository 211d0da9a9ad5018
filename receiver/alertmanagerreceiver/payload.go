package alertmanagerreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver"

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// supportedVersion is the only webhook payload version Alertmanager has
// shipped since 0.7 and still sends.
const supportedVersion = "4"

const (
	statusFiring   = "firing"
	statusResolved = "resolved"
)

var (
	errMalformedJSON      = errors.New("malformed JSON")
	errUnsupportedVersion = errors.New("unsupported webhook payload version")
	errNoAlerts           = errors.New("notification has no alerts")
	errBadStatus          = errors.New("status must be firing or resolved")
	errNoFingerprint      = errors.New("fingerprint is missing")
	errNoStartsAt         = errors.New("startsAt is missing")
	errNoEndsAt           = errors.New("resolved alert has no endsAt")
	errEndsBeforeStarts   = errors.New("endsAt is before startsAt")
	errTimeOutOfRange     = errors.New("time outside what OTLP can carry (1970 to 2262)")
	errTooManyLabels      = errors.New("too many labels or annotations")
)

// maxLabelsPerAlert bounds an alert's labels, and its annotations: each
// becomes a span attribute, and adding one costs a scan of those already
// there, so an alert of a few hundred thousand tiny labels (4 MiB of them)
// would take minutes of CPU. A DCGM series carries about 20 labels, a rule
// adds a few, and rules carry a handful of annotations.
const maxLabelsPerAlert = 128

// OTLP timestamps are unsigned nanoseconds since the Unix epoch in 64 bits.
var (
	minSpanTime = time.Unix(0, 0)
	maxSpanTime = time.Unix(0, math.MaxInt64)
)

func representable(t time.Time) bool {
	return !t.Before(minSpanTime) && !t.After(maxSpanTime)
}

// notification is Alertmanager's webhook body, version 4 (notify/webhook.Message).
// Unknown fields are ignored, so newer Alertmanagers keep working.
type notification struct {
	Version            string            `json:"version"`
	GroupKey           string            `json:"groupKey"`
	TruncatedAlerts    uint64            `json:"truncatedAlerts"`
	Status             string            `json:"status"`
	Receiver           string            `json:"receiver"`
	GroupLabels        map[string]string `json:"groupLabels"`
	CommonLabels       map[string]string `json:"commonLabels"`
	CommonAnnotations  map[string]string `json:"commonAnnotations"`
	ExternalURL        string            `json:"externalURL"`
	NotificationReason string            `json:"notification_reason"`
	RouteLabels        map[string]string `json:"routeLabels"`
	Alerts             []alert           `json:"alerts"`
}

type alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// decodeNotification parses and checks a webhook body. An error here rejects
// the whole notification; problems of single alerts are found by validate.
func decodeNotification(body []byte) (*notification, error) {
	var n notification
	if err := json.Unmarshal(body, &n); err != nil {
		return nil, fmt.Errorf("%w: %s", errMalformedJSON, describeJSONError(err))
	}
	if n.Version != supportedVersion {
		return nil, fmt.Errorf("%w %q: this receiver accepts version %q", errUnsupportedVersion, n.Version, supportedVersion)
	}
	if len(n.Alerts) == 0 {
		return nil, errNoAlerts
	}
	return &n, nil
}

// describeJSONError keeps the decoder's position and field but never echoes
// the body back.
func describeJSONError(err error) string {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("syntax error at byte %d", syntaxErr.Offset)
	case errors.As(err, &typeErr):
		return fmt.Sprintf("field %q must be %s, not %s", typeErr.Field, typeErr.Type, typeErr.Value)
	default:
		var parseErr *time.ParseError
		if errors.As(err, &parseErr) {
			return fmt.Sprintf("bad time %q", parseErr.Value)
		}
		return "cannot decode body"
	}
}

// truncatedAlerts is TruncatedAlerts clamped to int64, so a hostile value
// cannot turn a monotonic counter negative.
func (n *notification) truncatedAlerts() int64 {
	return int64(min(n.TruncatedAlerts, math.MaxInt64))
}

// validate reports why an alert cannot become a span, or nil.
func (a *alert) validate() error {
	switch {
	case a.Status != statusFiring && a.Status != statusResolved:
		return fmt.Errorf("%w, got %q", errBadStatus, a.Status)
	case a.Fingerprint == "":
		return errNoFingerprint
	case a.StartsAt.IsZero():
		return errNoStartsAt
	case !representable(a.StartsAt):
		return fmt.Errorf("startsAt %s: %w", a.StartsAt.Format(time.RFC3339), errTimeOutOfRange)
	case a.Status == statusResolved && a.EndsAt.IsZero():
		return errNoEndsAt
	case a.Status == statusResolved && !representable(a.EndsAt):
		return fmt.Errorf("endsAt %s: %w", a.EndsAt.Format(time.RFC3339), errTimeOutOfRange)
	case a.Status == statusResolved && a.EndsAt.Before(a.StartsAt):
		return errEndsBeforeStarts
	case len(a.Labels) > maxLabelsPerAlert || len(a.Annotations) > maxLabelsPerAlert:
		return fmt.Errorf("%w: %d labels and %d annotations, at most %d each", errTooManyLabels, len(a.Labels), len(a.Annotations), maxLabelsPerAlert)
	}
	return nil
}

// reason is the short label of a rejection in the receiver's telemetry.
func reason(err error) string {
	switch {
	case errors.Is(err, errMalformedJSON):
		return "malformed_json"
	case errors.Is(err, errUnsupportedVersion):
		return "unsupported_version"
	case errors.Is(err, errNoAlerts):
		return "no_alerts"
	case errors.Is(err, errBadStatus):
		return "bad_status"
	case errors.Is(err, errNoFingerprint):
		return "no_fingerprint"
	case errors.Is(err, errNoStartsAt):
		return "no_starts_at"
	case errors.Is(err, errNoEndsAt):
		return "no_ends_at"
	case errors.Is(err, errEndsBeforeStarts):
		return "ends_before_starts"
	case errors.Is(err, errTimeOutOfRange):
		return "time_out_of_range"
	case errors.Is(err, errTooManyLabels):
		return "too_many_labels"
	case errors.Is(err, topology.ErrInvalidName):
		return reasonInvalidName
	}
	return "other"
}
