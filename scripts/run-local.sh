#!/usr/bin/env bash
# make run: serve a recorded DCGM exporter scrape (no GPU needed) and run the
# collector on configs/local.yaml in the foreground. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

export DCGM_EXPORTER_ENDPOINT="${DCGM_EXPORTER_ENDPOINT:-localhost:9400}"
export OUTPUT_DIR="${OUTPUT_DIR:-./data}"
export ALERTMANAGER_ENDPOINT="${ALERTMANAGER_ENDPOINT:-localhost:9097}"
HEALTH="http://${HEALTH_CHECK_ENDPOINT:-localhost:13133}/"
RECORDING="${DCGM_RECORDING:-testdata/dcgm/gpu-a100-node-1.prom}"

mkdir -p "$OUTPUT_DIR"
_build/dcgm-replay -listen "$DCGM_EXPORTER_ENDPOINT" -file "$RECORDING" &
replay=$!

# Once the collector is healthy, play Alertmanager: a firing notification for
# two GPU usage sessions (a whole A100 and a MIG slice), then their resolution.
(
	for _ in $(seq 1 240); do curl -fsS -o /dev/null "$HEALTH" 2>/dev/null && break; sleep 0.5; done
	for n in firing resolved; do
		sleep 2
		code=$(curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
			--data-binary "@testdata/alertmanager/gpu-usage-$n.json" "http://$ALERTMANAGER_ENDPOINT/alerts") || code=failed
		echo "run-local: posted a sample $n Alertmanager notification: HTTP $code"
	done
) &
poster=$!
trap 'kill "$replay" "$poster" 2>/dev/null || true; wait "$replay" "$poster" 2>/dev/null || true' EXIT

cat <<MSG
------------------------------------------------------------------------------
AI Telemetry collector, local mode (no authentication; listeners on localhost)
  DCGM exporter (recorded): http://${DCGM_EXPORTER_ENDPOINT}/metrics
  OTLP in:                  localhost:4317 (gRPC), localhost:4318 (HTTP)
  Alertmanager webhooks:    http://${ALERTMANAGER_ENDPOINT}/alerts (a sample is posted)
  Output (OTLP JSON lines): ${OUTPUT_DIR}/metrics.jsonl, traces.jsonl, logs.jsonl
  GPU store (embedded):     ${OUTPUT_DIR}/gpu.db
  Site API (local mode, no authentication):
                            http://${SITE_ENDPOINT:-localhost:8080}/api/v1/devices
                            http://${SITE_ENDPOINT:-localhost:8080}/api/v1/reports/gpu-hours?window=24h&aggregate=project
                            http://${SITE_ENDPOINT:-localhost:8080}/api/openapi.json
  Health:                   http://localhost:13133/
Each 'Metrics' line below is one scrape that reached the output files; the
'Traces' lines are GPU usage sessions (start markers, then whole sessions).
Ctrl-C to stop.
------------------------------------------------------------------------------
MSG

_build/otelcol-ai-telemetry --config configs/local.yaml
