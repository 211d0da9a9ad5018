// Package promqlreceiver pulls metrics from a Prometheus-compatible HTTP API
// (Prometheus, Thanos Querier, Observatorium, prom-keycloak-proxy) by running
// configured PromQL queries on a schedule. Each result series becomes gauge
// data points with the series' labels as attributes and the samples' own
// timestamps; a cursor per query (kept in a storage extension when one is
// configured) makes every sample emitted once, across restarts and catch-ups.
package promqlreceiver // import "github.com/nerc-project/ai-telemetry-collector/receiver/promqlreceiver"
