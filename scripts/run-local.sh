#!/usr/bin/env bash
# make run: the site with hours of history and a live present, no GPU needed.
#   - dcgm-replay serves the live schedule testdata/dcgm/site-demo.yaml as a
#     DCGM exporter would (a training job, an idle notebook, a MIG slice);
#   - once the collector is up, otlp-replay posts six hours of recorded
#     pipeline output (tests/dashboards/testdata: the dashboards' schedule
#     through the real components) shifted to end now, as an agent would send
#     it, and the Alertmanager notifications of the live sessions are posted.
# The collector runs on configs/local.yaml in the foreground; Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."

export DCGM_EXPORTER_ENDPOINT="${DCGM_EXPORTER_ENDPOINT:-localhost:9400}"
export OUTPUT_DIR="${OUTPUT_DIR:-./data}"
export ALERTMANAGER_ENDPOINT="${ALERTMANAGER_ENDPOINT:-localhost:9097}"
export OTLP_HTTP_ENDPOINT="${OTLP_HTTP_ENDPOINT:-localhost:4318}"
SITE="http://${SITE_ENDPOINT:-localhost:8080}"
HEALTH="http://${HEALTH_CHECK_ENDPOINT:-localhost:13133}/"
SCHEDULE="${DCGM_SCHEDULE:-testdata/dcgm/site-demo.yaml}"
CLUSTER="${CLUSTER_NAME:-nerc-ocp-prod}"

mkdir -p "$OUTPUT_DIR"
start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
_build/dcgm-replay -listen "$DCGM_EXPORTER_ENDPOINT" -schedule "$SCHEDULE" -start "$start" &
replay=$!

# notification STATUS: the Alertmanager webhook for the live schedule's
# sessions (what the rules in configs/prometheus would fire on it).
notification() {
	local status=$1 ends="0001-01-01T00:00:00Z"
	[ "$status" = resolved ] && ends=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	cat <<JSON
{"receiver":"ai-telemetry","status":"$status","version":"4","groupKey":"{}:{cluster=\"$CLUSTER\"}",
 "groupLabels":{"cluster":"$CLUSTER"},"commonLabels":{"cluster":"$CLUSTER"},"commonAnnotations":{},
 "externalURL":"http://localhost:9093","truncatedAlerts":0,
 "alerts":[
  {"status":"$status","startsAt":"$start","endsAt":"$ends","fingerprint":"d1e5a0c9b7f2e401",
   "labels":{"alertname":"GPUInUse","severity":"info","cluster":"$CLUSTER","Hostname":"gpu-a100-node-1",
    "UUID":"GPU-3f1c9a2e-7b4d-4e1a-9c55-0d2b8e6f1a70","gpu":"0","modelName":"NVIDIA A100-SXM4-80GB",
    "namespace":"team-a","pod":"llm-finetune-1","container":"trainer"},"annotations":{}},
  {"status":"$status","startsAt":"$start","endsAt":"$ends","fingerprint":"d1e5a0c9b7f2e402",
   "labels":{"alertname":"GPUAllocatedIdle","severity":"warning","cluster":"$CLUSTER","Hostname":"gpu-a100-node-1",
    "UUID":"GPU-8d2e4f60-1a3b-4c5d-8e9f-0a1b2c3d4e5f","gpu":"1","modelName":"NVIDIA A100-SXM4-80GB",
    "namespace":"team-a","pod":"notebook-1","container":"notebook"},"annotations":{}},
  {"status":"$status","startsAt":"$start","endsAt":"$ends","fingerprint":"d1e5a0c9b7f2e403",
   "labels":{"alertname":"GPUInUse","severity":"info","cluster":"$CLUSTER","Hostname":"gpu-a100-node-2",
    "UUID":"GPU-6b0d4e93-2f8a-4c17-b3e5-91a7c2d8f604","gpu":"0","modelName":"NVIDIA A100-SXM4-80GB",
    "GPU_I_PROFILE":"3g.40gb","GPU_I_ID":"1","namespace":"team-b","pod":"jupyter-alice-1","container":"notebook"},
   "annotations":{}}]}
JSON
}

(
	for _ in $(seq 1 240); do curl -fsS -o /dev/null "$HEALTH" 2>/dev/null && break; sleep 0.5; done
	_build/otlp-replay -endpoint "http://$OTLP_HTTP_ENDPOINT" -end "$start" || echo "run-local: the history was not posted"
	code=$(notification firing | curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
		--data-binary @- "http://$ALERTMANAGER_ENDPOINT/alerts") || code=failed
	echo "run-local: posted the live sessions' Alertmanager notification: HTTP $code"
	echo "run-local: the site is ready: $SITE/"
) &
poster=$!
trap 'kill "$replay" "$poster" 2>/dev/null || true; wait "$replay" "$poster" 2>/dev/null || true' EXIT

cat <<MSG
------------------------------------------------------------------------------
AI Telemetry, local mode (no authentication; listeners on localhost)

  The site:                 $SITE/
  Site API:                 $SITE/api/v1/devices
                            $SITE/api/v1/reports/gpu-hours?window=24h&aggregate=project
                            $SITE/api/openapi.json

  DCGM exporter (replayed): http://${DCGM_EXPORTER_ENDPOINT}/metrics ($SCHEDULE)
  History:                  6 h of recorded pipeline output, posted once the collector is up
  OTLP in:                  localhost:4317 (gRPC), $OTLP_HTTP_ENDPOINT (HTTP)
  Alertmanager webhooks:    http://${ALERTMANAGER_ENDPOINT}/alerts
  Output (OTLP JSON lines): ${OUTPUT_DIR}/metrics.jsonl, traces.jsonl, logs.jsonl
  GPU store (embedded):     ${OUTPUT_DIR}/gpu.db
  Health:                   $HEALTH
Ctrl-C to stop.
------------------------------------------------------------------------------
MSG

_build/otelcol-ai-telemetry --config configs/local.yaml
