-- Allocated-but-idle now: GPUs and slices whose last visible sample (the one
-- at gpu_topology's last_seen) is held by a pod and below {idle_busy}. since
-- is the first sample of the idle run that sample ends (after the pod's last
-- busy sample on the device); idle_hours = fraction x (last_seen - since).
WITH scoped AS (
  SELECT * FROM gpu_samples
  WHERE ({all:Bool} OR hub IN {hubs:Array(String)} OR (hub, cluster) IN {clusters:Array(Tuple(String, String))}
         OR (hub, cluster, namespace) IN {projects:Array(Tuple(String, String, String))})
    AND ({f_hub:String} = '' OR hub = {f_hub:String})
    AND ({f_cluster:String} = '' OR cluster = {f_cluster:String})
    AND ({f_node:String} = '' OR node = {f_node:String})
    AND ({f_namespace:String} = '' OR namespace = {f_namespace:String})
    AND ({f_device:String} = '' OR hw_id = {f_device:String} OR startsWith(hw_id, concat({f_device:String}, '/')))
),
last AS (
  SELECT hub, cluster, node, hw_id, argMax(tuple(allocated, busy, namespace, pod, fraction), (TimeUnix, allocated, pod)) AS l,
    max(TimeUnix) AS ts
  FROM scoped
  WHERE (cluster, node, hw_id, TimeUnix) IN (
    SELECT cluster, node, hw_id, max(last_seen) FROM gpu_topology
    WHERE ({all:Bool} OR hub IN {hubs:Array(String)} OR (hub, cluster) IN {clusters:Array(Tuple(String, String))}
           OR (hub, cluster, namespace) IN {projects:Array(Tuple(String, String, String))})
    GROUP BY cluster, node, hw_id)
  GROUP BY hub, cluster, node, hw_id
  HAVING l.1 AND l.2 < {idle_busy:Float64}
),
runs AS (
  SELECT s.cluster AS cluster, s.node AS node, s.hw_id AS hw_id, s.pod AS pod,
    maxIf(s.TimeUnix, s.busy >= {idle_busy:Float64} OR NOT s.allocated) AS last_busy,
    groupArray((s.TimeUnix, s.allocated AND s.busy < {idle_busy:Float64})) AS ts
  FROM scoped AS s
  INNER JOIN last AS x ON s.cluster = x.cluster AND s.node = x.node AND s.hw_id = x.hw_id AND s.pod = x.l.4
  GROUP BY cluster, node, hw_id, pod
)
SELECT x.hub AS hub, x.cluster AS cluster, x.node AS node, x.hw_id AS device, x.l.3 AS namespace, x.l.4 AS pod,
  x.l.5 AS fraction,
  arrayMin(arrayMap(t -> t.1, arrayFilter(t -> t.1 > r.last_busy AND t.2, r.ts))) AS since,
  x.ts AS last_seen, fraction * dateDiff('nanosecond', since, last_seen) / 3.6e12 AS idle_hours
FROM last AS x
INNER JOIN runs AS r ON r.cluster = x.cluster AND r.node = x.node AND r.hw_id = x.hw_id AND r.pod = x.l.4
ORDER BY idle_hours DESC, hub, cluster, node, device, namespace, pod
LIMIT {limit:UInt32} OFFSET {offset:UInt32}
