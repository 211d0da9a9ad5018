-- Utilization of a device or project over the window in buckets of
-- {bucket_s} seconds from {from} (the caller picks bucket_s so at most
-- MaxPoints buckets): busy is the fraction-weighted mean over the bucket's
-- samples, memory, power and temperature their maxima.
-- A sample's bucket is (its time - from) / bucket_s in nanoseconds: from
-- need not be a whole second.
SELECT {from:DateTime64(9, 'UTC')} + toIntervalNanosecond(
         intDiv(toUnixTimestamp64Nano(toDateTime64(TimeUnix, 9, 'UTC')) - toUnixTimestamp64Nano({from:DateTime64(9, 'UTC')}),
                {bucket_s:UInt32} * 1000000000) * {bucket_s:UInt32} * 1000000000) AS time,
  sum(fraction * busy) / nullIf(sum(fraction), 0) AS busy,
  max(fb_used_mib) AS fb_used_mib, max(power_w) AS power_w, max(temp_c) AS temp_c,
  toUInt64(count()) AS samples
FROM gpu_samples
WHERE TimeUnix >= {from:DateTime64(9, 'UTC')} AND TimeUnix < {to:DateTime64(9, 'UTC')}
  AND ({all:Bool} OR hub IN {hubs:Array(String)} OR (hub, cluster) IN {clusters:Array(Tuple(String, String))}
       OR (hub, cluster, namespace) IN {projects:Array(Tuple(String, String, String))})
  AND ({f_hub:String} = '' OR hub = {f_hub:String})
  AND ({f_cluster:String} = '' OR cluster = {f_cluster:String})
  AND ({f_node:String} = '' OR node = {f_node:String})
  AND ({f_namespace:String} = '' OR namespace = {f_namespace:String})
  AND ({f_device:String} = '' OR hw_id = {f_device:String} OR startsWith(hw_id, concat({f_device:String}, '/')))
GROUP BY time
ORDER BY time
