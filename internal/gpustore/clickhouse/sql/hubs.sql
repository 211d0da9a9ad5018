-- Hubs: clusters and whole GPUs (GPU UUIDs) seen, from gpu_topology.
-- one row per (hub, cluster, node, hw.id, namespace, pod) of gpu_topology
-- (merged here: its merges are eventual), in the scope; with a window, the rows
-- seen in it.
WITH topo AS (
  SELECT * FROM (
    SELECT hub, cluster, node, hw_id, namespace, pod, any(gpu_uuid) AS gpu_uuid, any(mig_profile) AS mig_profile,
      any(hw_model) AS hw_model, min(first_seen) AS first_seen, max(last_seen) AS last_seen
    FROM gpu_topology
    WHERE ({all:Bool} OR hub IN {hubs:Array(String)} OR (hub, cluster) IN {clusters:Array(Tuple(String, String))}
           OR (hub, cluster, namespace) IN {projects:Array(Tuple(String, String, String))})
      AND ({f_hub:String} = '' OR hub = {f_hub:String})
      AND ({f_cluster:String} = '' OR cluster = {f_cluster:String})
      AND ({f_node:String} = '' OR node = {f_node:String})
      AND ({f_namespace:String} = '' OR namespace = {f_namespace:String})
      AND ({f_device:String} = '' OR hw_id = {f_device:String} OR gpu_topology.gpu_uuid = {f_device:String})
    GROUP BY hub, cluster, node, hw_id, namespace, pod
  )
  WHERE NOT {windowed:Bool} OR (last_seen >= {from:DateTime64(9, 'UTC')} AND first_seen < {to:DateTime64(9, 'UTC')})
)
SELECT hub, toUInt64(uniqExact(cluster)) AS clusters, toUInt64(uniqExact(cluster, node, gpu_uuid)) AS gpus,
  max(last_seen) AS last_seen
FROM topo
GROUP BY hub
ORDER BY hub
LIMIT {limit:UInt32} OFFSET {offset:UInt32}
