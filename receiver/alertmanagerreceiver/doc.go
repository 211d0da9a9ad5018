// Package alertmanagerreceiver receives Prometheus Alertmanager webhook
// notifications and emits one trace span per alert instance (a GPU usage
// session): a short start marker when it fires, the whole session span when it
// resolves. IDs are derived from the alert's fingerprint and start time, so
// repeats, HA duplicates and several collector replicas agree without shared state.
package alertmanagerreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/alertmanagerreceiver"
