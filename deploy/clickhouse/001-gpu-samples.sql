-- Objects the Grafana dashboards (deploy/grafana/dashboards/) read besides the
-- clickhouse exporter's own tables. The exporter (create_schema: true) keeps
-- owning otel_metrics_* and otel_traces; apply this file after it created them:
--
--   clickhouse-client --database otel --multiquery < deploy/clickhouse/001-gpu-samples.sql
--
-- Idempotent (CREATE ... IF NOT EXISTS / OR REPLACE). Written for the default
-- table names of clickhouseexporter v0.165.1; names are unqualified, so the
-- objects land in the database the client selects (--database): the
-- exporter's (CLICKHOUSE_DATABASE, otel in configs/gateway.yaml).

-- gpu_samples: one row per DCGM sample time, GPU or MIG slice (hw.id) and pod,
-- with the gpumodel processor's attributes extracted from the Map columns and
-- the DCGM fields the dashboards use pivoted into columns.
--   busy:        DCGM_FI_PROF_GR_ENGINE_ACTIVE (ratio) when present, else
--                DCGM_FI_DEV_GPU_UTIL / 100 (DCGM has no GPU_UTIL on MIG slices)
--   fraction:    aitelemetry.gpu.slice.fraction (1 for a whole GPU)
--   allocated:   aitelemetry.gpu.allocated = true (a pod holds the GPU/slice)
--   xid:         DCGM_FI_DEV_XID_ERRORS, the last XID error code (0: none)
-- Intervals between samples are not computed here: the dashboards compute them
-- inside their time range (window functions over a view would read all data).
CREATE OR REPLACE VIEW gpu_samples AS
SELECT
    TimeUnix,
    ResourceAttributes['aitelemetry.hub.name']      AS hub,
    ResourceAttributes['k8s.cluster.name']          AS cluster,
    ResourceAttributes['k8s.node.name']             AS node,
    ResourceAttributes['k8s.namespace.name']        AS namespace,
    ResourceAttributes['k8s.pod.name']              AS pod,
    ResourceAttributes['aitelemetry.project.name']  AS project_name,
    ResourceAttributes['aitelemetry.project.pi']    AS project_pi,
    Attributes['hw.id']                             AS hw_id,
    Attributes['hw.model']                          AS hw_model,
    Attributes['nvidia.mig.profile']                AS mig_profile,
    Attributes['aitelemetry.gpu.allocated'] = 'true' AS allocated,
    toFloat64OrDefault(Attributes['aitelemetry.gpu.slice.fraction'], toFloat64(1)) AS fraction,
    if(countIf(MetricName = 'DCGM_FI_PROF_GR_ENGINE_ACTIVE') > 0,
       maxIf(Value, MetricName = 'DCGM_FI_PROF_GR_ENGINE_ACTIVE'),
       maxIf(Value, MetricName = 'DCGM_FI_DEV_GPU_UTIL') / 100)  AS busy,
    maxIf(Value, MetricName = 'DCGM_FI_DEV_FB_USED')            AS fb_used_mib,
    maxIf(Value, MetricName = 'DCGM_FI_DEV_FB_FREE')            AS fb_free_mib,
    maxIf(Value, MetricName = 'DCGM_FI_DEV_POWER_USAGE')        AS power_w,
    maxIf(Value, MetricName = 'DCGM_FI_DEV_GPU_TEMP')           AS temp_c,
    maxIf(Value, MetricName = 'DCGM_FI_DEV_XID_ERRORS')         AS xid
FROM otel_metrics_gauge
WHERE MetricName IN ('DCGM_FI_PROF_GR_ENGINE_ACTIVE', 'DCGM_FI_DEV_GPU_UTIL', 'DCGM_FI_DEV_FB_USED',
                     'DCGM_FI_DEV_FB_FREE', 'DCGM_FI_DEV_POWER_USAGE', 'DCGM_FI_DEV_GPU_TEMP',
                     'DCGM_FI_DEV_XID_ERRORS')
  AND Attributes['hw.id'] != ''
GROUP BY TimeUnix, hub, cluster, node, namespace, pod, project_name, project_pi,
         hw_id, hw_model, mig_profile, allocated, fraction;
