-- Weekly rollups for long stats ranges. A 30-day request read about 30 daily buckets per
-- dimension: for a tenant with 1,000 active users that is ~30,000 rollup_users_daily rows summed
-- per request. Whole weeks inside a range now come from these tables (ISO weeks, starting Monday
-- 00:00 UTC, as date_trunc('week', ...) gives), days only for the part of a week at either end,
-- hours only at the edges: about a third of the rows for the same answer.
--
-- Maintained by persist in the same statement as the hourly and daily ones
-- (stages/persist/rollups.ts), so they are exactly-once with the events too.

CREATE TABLE rollup_dims_weekly (LIKE rollup_dims_daily INCLUDING ALL);
CREATE TABLE rollup_users_weekly (LIKE rollup_users_daily INCLUDING ALL);

-- Backfill from the daily rollups (which cover every event stored so far).
INSERT INTO rollup_dims_weekly (tenant_id, bucket, severity, action, resource_type, count)
SELECT tenant_id, date_trunc('week', bucket, 'UTC'), severity, action, resource_type, sum(count)
  FROM rollup_dims_daily GROUP BY 1, 2, 3, 4, 5;

INSERT INTO rollup_users_weekly (tenant_id, bucket, user_id, count)
SELECT tenant_id, date_trunc('week', bucket, 'UTC'), user_id, sum(count)
  FROM rollup_users_daily GROUP BY 1, 2, 3;

-- Read like the other rollups: as auditlog_reader, under the tenant policy.
GRANT SELECT ON rollup_dims_weekly, rollup_users_weekly TO auditlog_reader;
ALTER TABLE rollup_dims_weekly ENABLE ROW LEVEL SECURITY;
ALTER TABLE rollup_users_weekly ENABLE ROW LEVEL SECURITY;
CREATE POLICY rollup_dims_weekly_tenant_read ON rollup_dims_weekly FOR SELECT TO auditlog_reader
  USING (tenant_id = current_setting('auditlog.tenant', true));
CREATE POLICY rollup_users_weekly_tenant_read ON rollup_users_weekly FOR SELECT TO auditlog_reader
  USING (tenant_id = current_setting('auditlog.tenant', true));
