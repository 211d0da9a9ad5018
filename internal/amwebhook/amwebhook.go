// Package amwebhook is the body Alertmanager posts to a webhook receiver
// (version 4), for the programs that act as Alertmanager: the load generator
// and the dashboard test data recorder. It is Alertmanager's own
// template.Data with the fields notify/webhook.Message adds; that package is
// not imported because it brings Alertmanager's whole notifier with it.
// The receiver decodes with its own, narrower types.
package amwebhook // import "github.com/nerc-project/ai-telemetry-collector/internal/amwebhook"

import "github.com/prometheus/alertmanager/template"

// Version is the webhook protocol version Alertmanager sends.
const Version = "4"

// Message is one notification: notify/webhook.Message of Alertmanager v0.34.
type Message struct {
	*template.Data

	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
}
