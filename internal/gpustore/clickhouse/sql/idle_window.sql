-- Allocated-but-idle over a window: per GPU or slice and pod, the idle
-- GPU-hours (samples below {idle_busy}) accrued in the window, computed as in
-- gpu_hours_raw.sql; since and last_seen are its first and last idle sample.
WITH iv AS (
  SELECT *,
    least(if(next_s > 0, next_s - ts_s, if(prev_s > 0, ts_s - prev_s, {lone_s:UInt32})), {cap_s:UInt32}) AS dt_s
  FROM (
    SELECT *, toUnixTimestamp(TimeUnix) AS ts_s,
      min(ts_s) OVER (PARTITION BY hub, cluster, node, hw_id ORDER BY ts_s
                      RANGE BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS next_s,
      max(ts_s) OVER (PARTITION BY hub, cluster, node, hw_id ORDER BY ts_s
                      RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_s
    FROM gpu_samples
    WHERE TimeUnix >= {from:DateTime64(9, 'UTC')} AND TimeUnix < {to:DateTime64(9, 'UTC')}
      AND ({all:Bool} OR hub IN {hubs:Array(String)} OR (hub, cluster) IN {clusters:Array(Tuple(String, String))}
           OR (hub, cluster, namespace) IN {projects:Array(Tuple(String, String, String))})
      AND ({f_hub:String} = '' OR hub = {f_hub:String})
      AND ({f_cluster:String} = '' OR cluster = {f_cluster:String})
      AND ({f_node:String} = '' OR node = {f_node:String})
      AND ({f_namespace:String} = '' OR namespace = {f_namespace:String})
      AND ({f_device:String} = '' OR hw_id = {f_device:String} OR startsWith(hw_id, concat({f_device:String}, '/')))
  )
  WHERE allocated AND busy < {idle_busy:Float64}
)
SELECT hub, cluster, node, hw_id AS device, namespace, pod, max(fraction) AS max_fraction,
  sum(fraction * dt_s) / 3600 AS idle_hours, min(TimeUnix) AS since, max(TimeUnix) AS last_seen
FROM iv
GROUP BY hub, cluster, node, hw_id, namespace, pod
ORDER BY idle_hours DESC, hub, cluster, node, device, namespace, pod
LIMIT {limit:UInt32} OFFSET {offset:UInt32}
