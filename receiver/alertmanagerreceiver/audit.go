package alertmanagerreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver"

import (
	"encoding/json"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/nerc-project/ai-telemetry-collector/internal/topology"
)

// auditBody is what the audit record keeps of a notification: the body as
// received, or, when some alerts were dropped (invalid, or refused by
// authorization), the notification re-encoded without them, so data that was
// not admitted never reaches the logs pipeline either.
func auditBody(n *notification, body []byte, dropped map[int]bool) []byte {
	if len(dropped) == 0 {
		return body
	}
	allowed := *n
	allowed.Alerts = make([]alert, 0, len(n.Alerts)-len(dropped))
	for i := range n.Alerts {
		if !dropped[i] {
			allowed.Alerts = append(allowed.Alerts, n.Alerts[i])
		}
	}
	out, err := json.Marshal(&allowed)
	if err != nil {
		return nil
	}
	return out
}

// auditLog is the optional log record of one notification: the body as
// received, with the fields an auditor filters on as attributes.
func auditLog(n *notification, body []byte, invalidAlerts int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "alertmanager")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(scopeName)
	lr := sl.LogRecords().AppendEmpty()
	now := pcommon.NewTimestampFromTime(time.Now())
	lr.SetObservedTimestamp(now)
	lr.SetTimestamp(now)
	lr.SetSeverityNumber(plog.SeverityNumberInfo)
	lr.SetSeverityText("INFO")
	lr.SetEventName("alertmanager.notification")
	lr.Body().SetStr(string(body))
	attrs := lr.Attributes()
	attrs.PutStr("alertmanager.notification.status", n.Status)
	topology.PutNonEmpty(attrs, topology.AttrReceiver, n.Receiver)
	topology.PutNonEmpty(attrs, topology.AttrGroupKey, n.GroupKey)
	topology.PutNonEmpty(attrs, topology.AttrExternalURL, n.ExternalURL)
	topology.PutNonEmpty(attrs, "alertmanager.notification.reason", n.NotificationReason)
	attrs.PutInt("alertmanager.notification.alerts", int64(len(n.Alerts)))
	attrs.PutInt("alertmanager.notification.truncated_alerts", n.truncatedAlerts())
	attrs.PutInt("alertmanager.notification.invalid_alerts", int64(invalidAlerts))
	return ld
}
