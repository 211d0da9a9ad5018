#!/usr/bin/env bash
# make run: serve a recorded DCGM exporter scrape (no GPU needed) and run the
# collector on configs/local.yaml in the foreground. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

export DCGM_EXPORTER_ENDPOINT="${DCGM_EXPORTER_ENDPOINT:-localhost:9400}"
export OUTPUT_DIR="${OUTPUT_DIR:-./data}"
RECORDING="${DCGM_RECORDING:-testdata/dcgm/gpu-a100-node-1.prom}"

mkdir -p "$OUTPUT_DIR"
_build/dcgm-replay -listen "$DCGM_EXPORTER_ENDPOINT" -file "$RECORDING" &
replay=$!
trap 'kill "$replay" 2>/dev/null || true; wait "$replay" 2>/dev/null || true' EXIT

cat <<MSG
------------------------------------------------------------------------------
AI Telemetry collector, local mode (no authentication; listeners on localhost)
  DCGM exporter (recorded): http://${DCGM_EXPORTER_ENDPOINT}/metrics
  OTLP in:                  localhost:4317 (gRPC), localhost:4318 (HTTP)
  Output (OTLP JSON lines): ${OUTPUT_DIR}/metrics.jsonl, traces.jsonl, logs.jsonl
  Health:                   http://localhost:13133/
Each 'Metrics' line below is one scrape that reached the output files.
Ctrl-C to stop.
------------------------------------------------------------------------------
MSG

_build/otelcol-ai-telemetry --config configs/local.yaml
