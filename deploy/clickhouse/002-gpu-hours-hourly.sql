-- Hourly GPU-hours rollup and GPU topology, filled by materialized views from
-- the clickhouse exporter's gauge table as rows arrive. Apply after
-- 001-gpu-samples.sql, once the exporter created its tables:
--
--   clickhouse-client --database otel --multiquery < deploy/clickhouse/002-gpu-hours-hourly.sql
--
-- A materialized view sees only rows inserted after it exists. Backfill the
-- older rows once: for each view, run its SELECT into its table with the rows
-- bounded by the time T the view was created (docs/dashboards.md, "Backfill"):
--
--   INSERT INTO gpu_hours_hourly SELECT ... FROM otel_metrics_gauge
--   WHERE <the view's WHERE> AND TimeUnix < T GROUP BY ...
--
-- Idempotent (IF NOT EXISTS); a backfill run twice counts twice.

-- gpu_hours_hourly: per hour and series (cluster, node, hw.id, pod), the
-- samples of DCGM_FI_DEV_FB_USED (present on every GPU and MIG slice, so it
-- is the clock), the first and last of them, and the busy sums. The GPU-hours
-- of a series-hour are samples × its sample interval, the interval being
-- (last - first) / (samples - 1), capped at 900 s like the raw queries; a
-- lone sample takes its node's interval. Busy is the sample mean of
-- DCGM_FI_PROF_GR_ENGINE_ACTIVE, else DCGM_FI_DEV_GPU_UTIL / 100.
-- Everything merges as sums, min and max, so parts and late rows add up.
CREATE TABLE IF NOT EXISTS gpu_hours_hourly
(
    hour         DateTime CODEC(Delta, ZSTD(1)),
    hub          LowCardinality(String),
    cluster      LowCardinality(String),
    node         LowCardinality(String),
    namespace    LowCardinality(String),
    pod          String,
    hw_id        String,
    allocated    UInt8,
    project_name SimpleAggregateFunction(anyLast, String),
    project_pi   SimpleAggregateFunction(anyLast, String),
    hw_model     SimpleAggregateFunction(anyLast, String),
    mig_profile  SimpleAggregateFunction(anyLast, String),
    fraction     SimpleAggregateFunction(max, Float64),
    samples      SimpleAggregateFunction(sum, UInt64),
    first_seen   SimpleAggregateFunction(min, Nullable(DateTime64(9))),
    last_seen    SimpleAggregateFunction(max, Nullable(DateTime64(9))),
    prof_sum     SimpleAggregateFunction(sum, Float64),
    prof_n       SimpleAggregateFunction(sum, UInt64),
    util_sum     SimpleAggregateFunction(sum, Float64),
    util_n       SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hub, cluster, namespace, hour, node, hw_id, pod, allocated);

CREATE MATERIALIZED VIEW IF NOT EXISTS gpu_hours_hourly_mv TO gpu_hours_hourly AS
SELECT
    toStartOfHour(TimeUnix)                                  AS hour,
    ResourceAttributes['aitelemetry.hub.name']               AS hub,
    ResourceAttributes['k8s.cluster.name']                   AS cluster,
    ResourceAttributes['k8s.node.name']                      AS node,
    ResourceAttributes['k8s.namespace.name']                 AS namespace,
    ResourceAttributes['k8s.pod.name']                       AS pod,
    Attributes['hw.id']                                      AS hw_id,
    toUInt8(Attributes['aitelemetry.gpu.allocated'] = 'true') AS allocated,
    anyLast(ResourceAttributes['aitelemetry.project.name'])  AS project_name,
    anyLast(ResourceAttributes['aitelemetry.project.pi'])    AS project_pi,
    anyLast(Attributes['hw.model'])                          AS hw_model,
    anyLast(Attributes['nvidia.mig.profile'])                AS mig_profile,
    max(toFloat64OrDefault(Attributes['aitelemetry.gpu.slice.fraction'], toFloat64(1))) AS fraction,
    countIf(MetricName = 'DCGM_FI_DEV_FB_USED')              AS samples,
    minOrNullIf(TimeUnix, MetricName = 'DCGM_FI_DEV_FB_USED') AS first_seen,
    maxOrNullIf(TimeUnix, MetricName = 'DCGM_FI_DEV_FB_USED') AS last_seen,
    sumIf(Value, MetricName = 'DCGM_FI_PROF_GR_ENGINE_ACTIVE') AS prof_sum,
    countIf(MetricName = 'DCGM_FI_PROF_GR_ENGINE_ACTIVE')    AS prof_n,
    sumIf(Value, MetricName = 'DCGM_FI_DEV_GPU_UTIL') / 100  AS util_sum,
    countIf(MetricName = 'DCGM_FI_DEV_GPU_UTIL')             AS util_n
FROM otel_metrics_gauge
WHERE MetricName IN ('DCGM_FI_DEV_FB_USED', 'DCGM_FI_PROF_GR_ENGINE_ACTIVE', 'DCGM_FI_DEV_GPU_UTIL')
  AND Attributes['hw.id'] != ''
GROUP BY hour, hub, cluster, node, namespace, pod, hw_id, allocated;

-- gpu_topology: hub > cluster > node > GPU > MIG slice, and which project's
-- pod held each, with when it was first and last seen. One row per (hub,
-- cluster, node, hw.id, namespace, pod) after merges; read it with GROUP BY
-- (or FINAL) since merges are eventual.
CREATE TABLE IF NOT EXISTS gpu_topology
(
    hub          LowCardinality(String),
    cluster      LowCardinality(String),
    node         LowCardinality(String),
    hw_id        String,
    namespace    LowCardinality(String),
    pod          String,
    gpu_uuid     SimpleAggregateFunction(anyLast, String),
    gpu_index    SimpleAggregateFunction(anyLast, String),
    hw_model     SimpleAggregateFunction(anyLast, String),
    mig_profile  SimpleAggregateFunction(anyLast, String),
    fraction     SimpleAggregateFunction(max, Float64),
    project_name SimpleAggregateFunction(anyLast, String),
    project_pi   SimpleAggregateFunction(anyLast, String),
    first_seen   SimpleAggregateFunction(min, DateTime64(9)),
    last_seen    SimpleAggregateFunction(max, DateTime64(9))
)
ENGINE = AggregatingMergeTree
ORDER BY (hub, cluster, node, hw_id, namespace, pod);

CREATE MATERIALIZED VIEW IF NOT EXISTS gpu_topology_mv TO gpu_topology AS
SELECT
    ResourceAttributes['aitelemetry.hub.name']      AS hub,
    ResourceAttributes['k8s.cluster.name']          AS cluster,
    ResourceAttributes['k8s.node.name']             AS node,
    Attributes['hw.id']                             AS hw_id,
    ResourceAttributes['k8s.namespace.name']        AS namespace,
    ResourceAttributes['k8s.pod.name']              AS pod,
    anyLast(if(Attributes['hw.parent'] != '', Attributes['hw.parent'], Attributes['hw.id'])) AS gpu_uuid,
    anyLast(Attributes['nvidia.gpu.index'])         AS gpu_index,
    anyLast(Attributes['hw.model'])                 AS hw_model,
    anyLast(Attributes['nvidia.mig.profile'])       AS mig_profile,
    max(toFloat64OrDefault(Attributes['aitelemetry.gpu.slice.fraction'], toFloat64(1))) AS fraction,
    anyLast(ResourceAttributes['aitelemetry.project.name']) AS project_name,
    anyLast(ResourceAttributes['aitelemetry.project.pi'])   AS project_pi,
    min(TimeUnix)                                   AS first_seen,
    max(TimeUnix)                                   AS last_seen
FROM otel_metrics_gauge
WHERE MetricName = 'DCGM_FI_DEV_FB_USED' AND Attributes['hw.id'] != ''
GROUP BY hub, cluster, node, hw_id, namespace, pod;
