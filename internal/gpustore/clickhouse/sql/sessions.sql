-- Sessions: the Alertmanager receiver's spans in otel_traces. gpu.usage and
-- gpu.idle are complete sessions; gpu.usage.start and gpu.idle.start mark
-- a session's start, and one whose final span (its parent: SpanId = the start
-- span's ParentSpanId) is absent is open, reported under the final span's ID
-- and running to {now}. One row per (TraceId, SpanId): several gateway
-- replicas may each have stored a span. Sessions overlapping the window (all
-- with no window: start < to and end > from, an open one's end being now).
-- Every attribute from the span, else its resource (as the embedded
-- backend). Fraction from gpu_topology (1 when unknown); busy is the mean
-- over the samples of its device and pod in [start, end), NULL without.
WITH spans AS (
  SELECT TraceId, SpanId, ParentSpanId, SpanName, Timestamp, Duration,
    if(SpanAttributes['aitelemetry.hub.name'] != '', SpanAttributes['aitelemetry.hub.name'],
       ResourceAttributes['aitelemetry.hub.name']) AS hub,
    if(SpanAttributes['k8s.cluster.name'] != '', SpanAttributes['k8s.cluster.name'],
       ResourceAttributes['k8s.cluster.name']) AS cluster,
    if(SpanAttributes['k8s.namespace.name'] != '', SpanAttributes['k8s.namespace.name'],
       ResourceAttributes['k8s.namespace.name']) AS namespace,
    if(SpanAttributes['k8s.pod.name'] != '', SpanAttributes['k8s.pod.name'],
       ResourceAttributes['k8s.pod.name']) AS pod,
    if(SpanAttributes['k8s.node.name'] != '', SpanAttributes['k8s.node.name'],
       ResourceAttributes['k8s.node.name']) AS node,
    if(SpanAttributes['hw.id'] != '', SpanAttributes['hw.id'], ResourceAttributes['hw.id']) AS device,
    if(SpanAttributes['nvidia.mig.profile'] != '', SpanAttributes['nvidia.mig.profile'],
       ResourceAttributes['nvidia.mig.profile']) AS profile
  FROM otel_traces
  WHERE SpanName IN ('gpu.usage', 'gpu.idle', 'gpu.usage.start', 'gpu.idle.start')
    AND (NOT {windowed:Bool} OR Timestamp < {to:DateTime64(9, 'UTC')})
  LIMIT 1 BY TraceId, SpanId
),
sessions AS (
  SELECT TraceId AS trace_id, SpanId AS span_id, SpanName AS kind, hub, cluster, node, namespace, pod, device,
    profile, Timestamp AS start, Timestamp + toIntervalNanosecond(Duration) AS end_time, 1 AS closed
  FROM spans WHERE SpanName IN ('gpu.usage', 'gpu.idle')
  UNION ALL
  SELECT TraceId, ParentSpanId, replaceRegexpOne(SpanName, '\\.start$', ''), hub, cluster, node, namespace, pod,
    device, profile, Timestamp, {now:DateTime64(9, 'UTC')}, 0
  FROM spans
  WHERE SpanName IN ('gpu.usage.start', 'gpu.idle.start')
    AND (TraceId, ParentSpanId) NOT IN (SELECT TraceId, SpanId FROM spans WHERE SpanName IN ('gpu.usage', 'gpu.idle'))
),
visible AS (
  SELECT * FROM sessions
  WHERE ({all:Bool} OR hub IN {hubs:Array(String)} OR (hub, cluster) IN {clusters:Array(Tuple(String, String))}
         OR (hub, cluster, namespace) IN {projects:Array(Tuple(String, String, String))})
    AND ({f_hub:String} = '' OR hub = {f_hub:String})
    AND ({f_cluster:String} = '' OR cluster = {f_cluster:String})
    AND ({f_node:String} = '' OR node = {f_node:String})
    AND ({f_namespace:String} = '' OR namespace = {f_namespace:String})
    AND ({f_device:String} = '' OR device = {f_device:String} OR startsWith(device, concat({f_device:String}, '/')))
    AND (NOT {windowed:Bool} OR (start < {to:DateTime64(9, 'UTC')} AND end_time > {from:DateTime64(9, 'UTC')}))
  ORDER BY start, trace_id, span_id
  LIMIT {limit:UInt32} OFFSET {offset:UInt32}
),
frac AS (
  SELECT cluster, node, hw_id, max(fraction) AS fraction FROM gpu_topology
  WHERE (cluster, node, hw_id) IN (SELECT cluster, node, device FROM visible)
  GROUP BY cluster, node, hw_id
),
busy AS (
  SELECT v.trace_id AS trace_id, v.span_id AS span_id,
    avgIf(g.busy, g.TimeUnix >= v.start AND g.TimeUnix < v.end_time) AS busy_mean,
    countIf(g.TimeUnix >= v.start AND g.TimeUnix < v.end_time) AS n
  FROM visible AS v
  INNER JOIN (
    SELECT cluster, node, hw_id, pod, TimeUnix, busy FROM gpu_samples
    WHERE (cluster, node, hw_id, pod) IN (SELECT cluster, node, device, pod FROM visible)
      AND TimeUnix >= (SELECT min(start) FROM visible) AND TimeUnix < (SELECT max(end_time) FROM visible)
  ) AS g ON g.cluster = v.cluster AND g.node = v.node AND g.hw_id = v.device AND g.pod = v.pod
  GROUP BY trace_id, span_id
)
SELECT v.trace_id AS trace_id, v.span_id AS span_id, v.kind AS kind, v.hub AS hub, v.cluster AS cluster,
  v.node AS node, v.namespace AS namespace, v.pod AS pod, v.device AS device, v.profile AS profile,
  if(f.hw_id = '', 1, f.fraction) AS fraction, v.start AS start, v.end_time AS end_time, v.closed AS closed,
  if(b.n > 0, toNullable(b.busy_mean), NULL) AS busy
FROM visible AS v
LEFT JOIN frac AS f ON f.cluster = v.cluster AND f.node = v.node AND f.hw_id = v.device
LEFT JOIN busy AS b ON b.trace_id = v.trace_id AND b.span_id = v.span_id
ORDER BY start, trace_id, span_id
