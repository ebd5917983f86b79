/**
 * Common table expressions that add a persist statement's new events to the stats rollups
 * (migrations 003 and 005). `insertFromStaging` (sql.ts) splices them into its own statement
 * after the `numbered` CTE (the events being inserted, one row per new event, duplicates and ids
 * already stored left out), so the counts commit or roll back with the events, and a redelivered
 * batch (which inserts nothing) adds nothing: the rollups are exactly-once too. Being part of that
 * one statement, they read the new rows where they already are instead of scanning staging again.
 *
 * Each upsert groups first, so no statement touches a rollup row twice, and feeds its rows in key
 * order. The tenants' rows are locked by `lockTenants`, so only one transaction at a time writes a
 * tenant's rollup rows; the ordering is a second guard against lock-order deadlocks.
 */
export const ROLLUP_CTES = `
  b AS (
    SELECT tenant_id, date_trunc('hour', occurred_at, 'UTC') AS hour, date_trunc('day', occurred_at, 'UTC') AS day,
           date_trunc('week', occurred_at, 'UTC') AS week, user_id, severity, action, resource_type
      FROM numbered
  ), totals AS (
    INSERT INTO rollup_totals_hourly AS r (tenant_id, bucket, count)
    SELECT tenant_id, hour, count(*) FROM b GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (tenant_id, bucket) DO UPDATE SET count = r.count + excluded.count
  ), dims_hourly AS (
    INSERT INTO rollup_dims_hourly AS r (tenant_id, bucket, severity, action, resource_type, count)
    SELECT tenant_id, hour, severity, action, resource_type, count(*) FROM b
     GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (tenant_id, bucket, severity, action, resource_type) DO UPDATE SET count = r.count + excluded.count
  ), dims_daily AS (
    INSERT INTO rollup_dims_daily AS r (tenant_id, bucket, severity, action, resource_type, count)
    SELECT tenant_id, day, severity, action, resource_type, count(*) FROM b
     GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (tenant_id, bucket, severity, action, resource_type) DO UPDATE SET count = r.count + excluded.count
  ), dims_weekly AS (
    INSERT INTO rollup_dims_weekly AS r (tenant_id, bucket, severity, action, resource_type, count)
    SELECT tenant_id, week, severity, action, resource_type, count(*) FROM b
     GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (tenant_id, bucket, severity, action, resource_type) DO UPDATE SET count = r.count + excluded.count
  ), users_hourly AS (
    INSERT INTO rollup_users_hourly AS r (tenant_id, bucket, user_id, count)
    SELECT tenant_id, hour, user_id, count(*) FROM b WHERE user_id IS NOT NULL
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (tenant_id, bucket, user_id) DO UPDATE SET count = r.count + excluded.count
  ), users_daily AS (
    INSERT INTO rollup_users_daily AS r (tenant_id, bucket, user_id, count)
    SELECT tenant_id, day, user_id, count(*) FROM b WHERE user_id IS NOT NULL
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (tenant_id, bucket, user_id) DO UPDATE SET count = r.count + excluded.count
  ), users_weekly AS (
    INSERT INTO rollup_users_weekly AS r (tenant_id, bucket, user_id, count)
    SELECT tenant_id, week, user_id, count(*) FROM b WHERE user_id IS NOT NULL
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (tenant_id, bucket, user_id) DO UPDATE SET count = r.count + excluded.count
  )`;
