-- Stats over long ranges (GET /logs/stats, e.g. 30 days by day) read mostly the daily rollups:
-- tens of thousands of rollup_users_daily rows for a busy tenant (one per user and day), and
-- thousands of rollup_dims_daily rows. Through the primary keys those are bitmap heap scans over
-- pages spread (and bloated) by persist's constant upserts. These indexes carry every column the
-- stats query reads, so it becomes an index-only scan of one contiguous (tenant_id, bucket) range.
--
-- Only the daily tables: the hourly ones serve at most the two partial edge days of a range (few
-- rows), and an index holding `count` makes persist's upserts of that table non-HOT, so it is
-- paid only where it saves the most. Past days are no longer updated, so vacuum marks their pages
-- all-visible and the scans need no heap fetches.
CREATE INDEX rollup_users_daily_stats ON rollup_users_daily (tenant_id, bucket) INCLUDE (user_id, count);
CREATE INDEX rollup_dims_daily_stats ON rollup_dims_daily (tenant_id, bucket)
  INCLUDE (severity, action, resource_type, count);
