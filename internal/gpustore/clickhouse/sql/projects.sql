-- Projects: a namespace on a cluster, with the project metadata the gpumodel
-- processor put on its samples' resources (the last visible sample: in the
-- window, or, with no window, the one at the project's last_seen in
-- gpu_topology). Quota, allocation and requests are NULL when not set.
WITH rows AS (
  SELECT ResourceAttributes['aitelemetry.hub.name'] AS hub, ResourceAttributes['k8s.cluster.name'] AS cluster,
    ResourceAttributes['k8s.namespace.name'] AS namespace, ResourceAttributes AS ra, TimeUnix
  FROM otel_metrics_gauge
  WHERE MetricName = 'DCGM_FI_DEV_FB_USED' AND ResourceAttributes['k8s.namespace.name'] != ''
)
SELECT hub, cluster, namespace,
  argMax(ra, TimeUnix) AS m,
  m['aitelemetry.project.id'] AS id, m['aitelemetry.project.name'] AS name, m['aitelemetry.project.pi'] AS pi,
  m['aitelemetry.project.field_of_science'] AS field_of_science,
  if(mapContains(m, 'aitelemetry.project.gpu.quota'), toFloat64OrNull(m['aitelemetry.project.gpu.quota']), NULL) AS gpu_quota,
  if(mapContains(m, 'aitelemetry.project.gpu.allocation'), toFloat64OrNull(m['aitelemetry.project.gpu.allocation']), NULL) AS gpu_allocation,
  if(mapContains(m, 'aitelemetry.project.gpu.requests'), toFloat64OrNull(m['aitelemetry.project.gpu.requests']), NULL) AS gpu_requests,
  max(TimeUnix) AS last_seen
FROM rows
WHERE ({all:Bool} OR hub IN {hubs:Array(String)} OR (hub, cluster) IN {clusters:Array(Tuple(String, String))}
       OR (hub, cluster, namespace) IN {projects:Array(Tuple(String, String, String))})
  AND ({f_hub:String} = '' OR hub = {f_hub:String})
  AND ({f_cluster:String} = '' OR cluster = {f_cluster:String})
  AND ({f_namespace:String} = '' OR namespace = {f_namespace:String})
  AND (({windowed:Bool} AND TimeUnix >= {from:DateTime64(9, 'UTC')} AND TimeUnix < {to:DateTime64(9, 'UTC')})
       OR (NOT {windowed:Bool} AND (hub, cluster, namespace, TimeUnix) IN
             (SELECT hub, cluster, namespace, max(last_seen) FROM gpu_topology WHERE namespace != ''
              GROUP BY hub, cluster, namespace)))
GROUP BY hub, cluster, namespace
ORDER BY hub, cluster, namespace
LIMIT {limit:UInt32} OFFSET {offset:UInt32}
