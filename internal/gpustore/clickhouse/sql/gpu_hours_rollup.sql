-- GPU-hours from the hourly rollup (gpu_hours_hourly), docs/dashboards.md:
-- a series-hour (cluster, node, hw.id, pod) counts samples x its sample
-- interval x fraction, the interval (last - first) / (samples - 1) capped at
-- {cap_s}, a lone sample taking the largest interval of its node's
-- series-hours in the same hour, else {lone_s} (per hour, so an hour's value
-- does not depend on the window: gpustore.KeyProject's contract); busy is
-- the series-hour's sample mean, 0 without one. Whole hours the window touches, as the
-- dashboards' rollup panels. Keys and step as in gpu_hours_raw.sql.
WITH series AS (
  SELECT *,
    least(if(samples > 1, dateDiff('second', first_seen, last_seen) / (samples - 1),
             ifNull(maxIfOrNull(dateDiff('second', first_seen, last_seen) / (samples - 1), samples > 1)
                      OVER (PARTITION BY hour, hub, cluster, node),
                    {lone_s:UInt32})),
          {cap_s:UInt32}) AS iv_s
  FROM (
    SELECT hour, hub, cluster, node, namespace, pod, hw_id, allocated,
      any(project_pi) AS project_pi, any(hw_model) AS hw_model, any(mig_profile) AS mig_profile,
      max(fraction) AS fraction, sum(samples) AS samples,
      min(first_seen) AS first_seen, max(last_seen) AS last_seen,
      if(sum(prof_n) > 0, sum(prof_sum) / sum(prof_n), sum(util_sum) / nullIf(sum(util_n), 0)) AS busy
    FROM gpu_hours_hourly
    WHERE hour >= toStartOfHour({from:DateTime64(9, 'UTC')}) AND hour < {to:DateTime64(9, 'UTC')}
      AND ({all:Bool} OR hub IN {hubs:Array(String)} OR (hub, cluster) IN {clusters:Array(Tuple(String, String))}
           OR (hub, cluster, namespace) IN {projects:Array(Tuple(String, String, String))})
      AND ({f_hub:String} = '' OR hub = {f_hub:String})
      AND ({f_cluster:String} = '' OR cluster = {f_cluster:String})
      AND ({f_node:String} = '' OR node = {f_node:String})
      AND ({f_namespace:String} = '' OR namespace = {f_namespace:String})
      AND ({f_device:String} = '' OR hw_id = {f_device:String} OR startsWith(hw_id, concat({f_device:String}, '/')))
    GROUP BY hour, hub, cluster, node, namespace, pod, hw_id, allocated
  )
),
keyed AS (
  SELECT *,
    multiIf({step:String} = 'day', toDateTime64(toStartOfDay(hour, 'UTC'), 9, 'UTC'),
            {step:String} = 'week', toDateTime64(toMonday(hour, 'UTC'), 9, 'UTC'),
            {step:String} = 'month', toDateTime64(toStartOfMonth(hour, 'UTC'), 9, 'UTC'),
            {from:DateTime64(9, 'UTC')}) AS step_start,
    fraction * samples * iv_s AS alloc_s,
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
  FROM series
  WHERE allocated
)
SELECT
  greatest(step_start, {from:DateTime64(9, 'UTC')}) AS start,
  least(multiIf({step:String} = 'day', step_start + INTERVAL 1 DAY,
                {step:String} = 'week', step_start + INTERVAL 1 WEEK,
                {step:String} = 'month', step_start + INTERVAL 1 MONTH,
                {to:DateTime64(9, 'UTC')}), {to:DateTime64(9, 'UTC')}) AS end,
  k_hub, k_cluster, k_project, k_pi, k_node, k_model, k_profile, k_device,
  sum(alloc_s) / 3600 AS allocated,
  sum(alloc_s * ifNull(busy, 0)) / 3600 AS used,
  sum(if(ifNull(busy, 0) < {idle_busy:Float64}, alloc_s, 0)) / 3600 AS idle,
  toUInt64(uniqExact(cluster, node, hw_id)) AS devices
FROM keyed
GROUP BY step_start, k_hub, k_cluster, k_project, k_pi, k_node, k_model, k_profile, k_device
ORDER BY start, k_hub, k_cluster, k_project, k_pi, k_node, k_model, k_profile, k_device
LIMIT {limit:UInt32} OFFSET {offset:UInt32}
