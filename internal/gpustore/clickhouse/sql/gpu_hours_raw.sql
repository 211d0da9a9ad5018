-- GPU-hours from raw samples (gpu_samples), docs/dashboards.md: a sample
-- stands for the time to the next sample of its device (cluster, node, hw.id)
-- in the window, whichever pod holds it; the last for the time since the
-- previous one; a lone sample for {lone_s}; capped at {cap_s}. As the
-- dashboards' queries, with the scope and filters applied before the window
-- functions (rows outside the scope are never read). The aggregation keys
-- and the step are parameters: a key not asked for groups as ''.
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
  WHERE allocated
),
keyed AS (
  SELECT *,
    multiIf({step:String} = 'day', toDateTime64(toStartOfDay(TimeUnix, 'UTC'), 9, 'UTC'),
            {step:String} = 'week', toDateTime64(toMonday(TimeUnix, 'UTC'), 9, 'UTC'),
            {step:String} = 'month', toDateTime64(toStartOfMonth(TimeUnix, 'UTC'), 9, 'UTC'),
            {from:DateTime64(9, 'UTC')}) AS step_start,
    if(has({keys:Array(String)}, 'project') OR has({keys:Array(String)}, 'cluster')
       OR has({keys:Array(String)}, 'node'), hub, '') AS k_hub,
    if(has({keys:Array(String)}, 'project') OR has({keys:Array(String)}, 'cluster')
       OR has({keys:Array(String)}, 'node'), cluster, '') AS k_cluster,
    if(has({keys:Array(String)}, 'project'), namespace, '') AS k_project,
    if(has({keys:Array(String)}, 'pi'), project_pi, '') AS k_pi,
    if(has({keys:Array(String)}, 'node'), node, '') AS k_node,
    if(has({keys:Array(String)}, 'model'), hw_model, '') AS k_model,
    if(has({keys:Array(String)}, 'profile'), mig_profile, '') AS k_profile,
    if(has({keys:Array(String)}, 'device'), hw_id, '') AS k_device
  FROM iv
)
SELECT
  greatest(step_start, {from:DateTime64(9, 'UTC')}) AS start,
  least(multiIf({step:String} = 'day', step_start + INTERVAL 1 DAY,
                {step:String} = 'week', step_start + INTERVAL 1 WEEK,
                {step:String} = 'month', step_start + INTERVAL 1 MONTH,
                {to:DateTime64(9, 'UTC')}), {to:DateTime64(9, 'UTC')}) AS end,
  k_hub, k_cluster, k_project, k_pi, k_node, k_model, k_profile, k_device,
  sum(fraction * dt_s) / 3600 AS allocated,
  sum(fraction * busy * dt_s) / 3600 AS used,
  sum(if(busy < {idle_busy:Float64}, fraction * dt_s, 0)) / 3600 AS idle,
  toUInt64(uniqExact(cluster, node, hw_id)) AS devices
FROM keyed
GROUP BY step_start, k_hub, k_cluster, k_project, k_pi, k_node, k_model, k_profile, k_device
ORDER BY start, k_hub, k_cluster, k_project, k_pi, k_node, k_model, k_profile, k_device
LIMIT {limit:UInt32} OFFSET {offset:UInt32}
