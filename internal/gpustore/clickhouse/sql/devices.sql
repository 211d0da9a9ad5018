-- Devices: whole GPUs (by UUID) with their MIG slices counted; state, holder
-- and XID from the last visible sample (state_rank: 4 error, 3 in_use,
-- 2 idle, 1 free; a GPU in MIG mode takes its slices' highest, and has no
-- holder of its own).
WITH topo AS (
  SELECT * FROM (
    SELECT hub, cluster, node, hw_id, namespace, pod, any(gpu_uuid) AS gpu_uuid, any(gpu_index) AS gpu_index,
      any(hw_model) AS hw_model, any(mig_profile) AS mig_profile, max(fraction) AS fraction,
      min(first_seen) AS first_seen, max(last_seen) AS last_seen
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
),
-- each GPU's or slice's last visible sample: in the window, or (no window)
-- the one at its last_seen in gpu_topology, found without scanning samples
last AS (
  SELECT cluster, node, hw_id,
    argMax(tuple(allocated, busy, xid, namespace, pod), (TimeUnix, allocated, pod)) AS l,
    max(TimeUnix) AS ts
  FROM gpu_samples
  WHERE ({all:Bool} OR hub IN {hubs:Array(String)} OR (hub, cluster) IN {clusters:Array(Tuple(String, String))}
         OR (hub, cluster, namespace) IN {projects:Array(Tuple(String, String, String))})
    AND ({f_hub:String} = '' OR hub = {f_hub:String})
    AND ({f_cluster:String} = '' OR cluster = {f_cluster:String})
    AND ({f_node:String} = '' OR node = {f_node:String})
    AND ({f_namespace:String} = '' OR namespace = {f_namespace:String})
    AND ({f_device:String} = '' OR hw_id = {f_device:String} OR startsWith(hw_id, concat({f_device:String}, '/')))
    AND (({windowed:Bool} AND TimeUnix >= {from:DateTime64(9, 'UTC')} AND TimeUnix < {to:DateTime64(9, 'UTC')})
         OR (NOT {windowed:Bool} AND (cluster, node, hw_id, TimeUnix) IN
               (SELECT cluster, node, hw_id, max(last_seen) FROM topo GROUP BY cluster, node, hw_id)))
  GROUP BY cluster, node, hw_id
),
units AS (
  SELECT t.hub AS hub, t.cluster AS cluster, t.node AS node, t.hw_id AS hw_id, t.gpu_uuid AS gpu_uuid,
    t.gpu_index AS gpu_index, t.hw_model AS hw_model, t.mig_profile AS mig_profile, t.fraction AS fraction,
    last.l.1 AS allocated, last.l.2 AS busy, toInt64(last.l.3) AS xid, last.l.4 AS namespace, last.l.5 AS pod,
    last.ts AS ts,
    multiIf(xid != 0, 4, allocated AND busy >= {idle_busy:Float64}, 3, allocated, 2, 1) AS state_rank
  FROM (
    SELECT hub, cluster, node, hw_id, any(gpu_uuid) AS gpu_uuid, any(gpu_index) AS gpu_index,
      any(hw_model) AS hw_model, any(mig_profile) AS mig_profile, max(fraction) AS fraction
    FROM topo GROUP BY hub, cluster, node, hw_id
  ) AS t
  INNER JOIN last ON last.cluster = t.cluster AND last.node = t.node AND last.hw_id = t.hw_id
)
SELECT hub, cluster, node, gpu_uuid AS id, any(gpu_index) AS gpu_index, any(hw_model) AS model,
  countIf(mig_profile != '') > 0 AS mig, toUInt64(uniqExactIf(hw_id, mig_profile != '')) AS slices,
  toUInt8(max(state_rank)) AS state_rank,
  if(mig, '', anyIf(namespace, allocated)) AS holder_namespace, if(mig, '', anyIf(pod, allocated)) AS holder_pod,
  argMax(xid, ts) AS last_xid, max(ts) AS last_seen
FROM units
GROUP BY hub, cluster, node, gpu_uuid
ORDER BY hub, cluster, node, gpu_uuid
LIMIT {limit:UInt32} OFFSET {offset:UInt32}
