-- Rollups behind GET /api/v1/logs/stats. The persist stage maintains them in the same
-- transaction that inserts the events (stages/persist/rollups.ts), so they are exactly-once like
-- the events themselves: a redelivered batch inserts no event and therefore adds no count.
--
-- Buckets are whole UTC hours or days. Stats over [from, to) read the daily tables for the whole
-- days inside the range and the hourly tables for the hours at its edges, so a 30-day query reads
-- about 30 + 46 buckets per dimension instead of millions of events.
--
-- These are plain tables on purpose, also on TimescaleDB: continuous aggregates would refresh
-- asynchronously (stats lagging the events) and do not exist on RDS; one design serves both.
-- Rows of one tenant are only written while persist holds that tenant's row lock
-- (lockTenants), so concurrent persist workers never contend on, or deadlock over, a rollup row.

-- Events per tenant and hour: the time series and the total.
CREATE TABLE rollup_totals_hourly (
  tenant_id text NOT NULL,
  bucket    timestamptz NOT NULL,
  count     bigint NOT NULL,
  PRIMARY KEY (tenant_id, bucket)
);

-- Events per tenant, bucket, severity, action and resource type: the "by ..." breakdowns.
CREATE TABLE rollup_dims_hourly (
  tenant_id     text NOT NULL,
  bucket        timestamptz NOT NULL,
  severity      text NOT NULL,
  action        text NOT NULL,
  resource_type text NOT NULL,
  count         bigint NOT NULL,
  PRIMARY KEY (tenant_id, bucket, severity, action, resource_type)
);
CREATE TABLE rollup_dims_daily (LIKE rollup_dims_hourly INCLUDING ALL);

-- Events per tenant, bucket and user (events without a user_id are not counted here): top users.
CREATE TABLE rollup_users_hourly (
  tenant_id text NOT NULL,
  bucket    timestamptz NOT NULL,
  user_id   text NOT NULL,
  count     bigint NOT NULL,
  PRIMARY KEY (tenant_id, bucket, user_id)
);
CREATE TABLE rollup_users_daily (LIKE rollup_users_hourly INCLUDING ALL);

-- Backfill from events stored before this migration, so stats cover them too. One full scan, once.
INSERT INTO rollup_totals_hourly (tenant_id, bucket, count)
SELECT tenant_id, date_trunc('hour', occurred_at, 'UTC'), count(*) FROM events GROUP BY 1, 2;

INSERT INTO rollup_dims_hourly (tenant_id, bucket, severity, action, resource_type, count)
SELECT tenant_id, date_trunc('hour', occurred_at, 'UTC'), severity, action, resource_type, count(*)
  FROM events GROUP BY 1, 2, 3, 4, 5;

INSERT INTO rollup_dims_daily (tenant_id, bucket, severity, action, resource_type, count)
SELECT tenant_id, date_trunc('day', bucket, 'UTC'), severity, action, resource_type, sum(count)
  FROM rollup_dims_hourly GROUP BY 1, 2, 3, 4, 5;

INSERT INTO rollup_users_hourly (tenant_id, bucket, user_id, count)
SELECT tenant_id, date_trunc('hour', occurred_at, 'UTC'), user_id, count(*)
  FROM events WHERE user_id IS NOT NULL GROUP BY 1, 2, 3;

INSERT INTO rollup_users_daily (tenant_id, bucket, user_id, count)
SELECT tenant_id, date_trunc('day', bucket, 'UTC'), user_id, sum(count)
  FROM rollup_users_hourly GROUP BY 1, 2, 3;

-- Stats read these through query/scoped.ts like every other read: as auditlog_reader (migration
-- 002), in a read-only transaction, under the same fail-closed tenant policy as events. The user
-- role never reads rollups (its stats come from its own events, where the user policy applies).
GRANT SELECT ON rollup_totals_hourly, rollup_dims_hourly, rollup_dims_daily, rollup_users_hourly,
  rollup_users_daily TO auditlog_reader;
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['rollup_totals_hourly', 'rollup_dims_hourly', 'rollup_dims_daily',
                           'rollup_users_hourly', 'rollup_users_daily'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format(
      'CREATE POLICY %I ON %I FOR SELECT TO auditlog_reader USING (tenant_id = current_setting(''auditlog.tenant'', true))',
      t || '_tenant_read', t);
  END LOOP;
END $$;
