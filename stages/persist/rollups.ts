import type pg from 'pg';
import type { StoredRef } from './sql.js';

/**
 * Adds the events this transaction just inserted to the stats rollups (migration 003). It runs
 * inside persist's transaction, after `insertFromStaging`: the counts commit or roll back with
 * the events, and a redelivered batch (which inserts nothing) adds nothing, so the rollups are
 * exactly-once too.
 *
 * The new rows are read back from `persist_staging`, restricted to the ids that were inserted and
 * de-duplicated the same way `insertFromStaging` does (the first occurrence of an id, by `ord`).
 * Each upsert groups first, so no statement touches a rollup row twice, and feeds its rows in key
 * order. The tenants' rows are locked by `lockTenants`, so only one transaction at a time writes a
 * tenant's rollup rows; the ordering is a second guard against lock-order deadlocks.
 *
 * Returns `stored` unchanged, so the handler can chain it: `updateRollups(client, await insert…)`.
 */
export async function updateRollups(client: pg.ClientBase, stored: StoredRef[]): Promise<StoredRef[]> {
  if (stored.length === 0) return stored;
  await client.query(ROLLUP_SQL, [stored.map((s) => s.tenant_id), stored.map((s) => s.id)]);
  return stored;
}

const ROLLUP_SQL = `
  WITH new AS (
    SELECT DISTINCT ON (s.tenant_id, s.id) s.tenant_id, s.occurred_at, s.user_id, s.severity, s.action,
           s.resource_type
      FROM persist_staging s
      JOIN unnest($1::text[], $2::uuid[]) AS n (tenant_id, id) ON n.tenant_id = s.tenant_id AND n.id = s.id
     ORDER BY s.tenant_id, s.id, s.ord
  ), b AS (
    SELECT tenant_id, date_trunc('hour', occurred_at, 'UTC') AS hour, date_trunc('day', occurred_at, 'UTC') AS day,
           user_id, severity, action, resource_type
      FROM new
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
  )
  SELECT 1`;
