/**
 * Common table expressions that add a persist statement's new events to the stats rollups
 * (migrations 003, 005 and 006). `insertFromStaging` (sql.ts) splices them into its own statement
 * after the `numbered` CTE (the events being inserted, one row per new event, duplicates and ids
 * already stored left out), so the counts commit or roll back with the events, and a redelivered
 * batch (which inserts nothing) adds nothing: the rollups are exactly-once too. Being part of that
 * one statement, they read the new rows where they already are instead of scanning staging again.
 *
 * Breakdowns are counted per dimension value (`vh`: one row per event and dimension before
 * grouping), not per combination of severity, action and resource type: fewer rows to upsert and
 * to read.
 *
 * Each upsert groups first, so no statement touches a rollup row twice, and feeds its rows in key
 * order. The tenants' rows are locked by `lockTenants`, so only one transaction at a time writes a
 * tenant's rollup rows; the ordering is a second guard against lock-order deadlocks.
 *
 * Each breakdown is counted once per hour (`th`, `vh`, `uh`: one sort of the batch's rows each);
 * the day and week rows are sums of those few hourly groups, a UTC hour lying in exactly one UTC
 * day and week. Grouping the batch's rows again per granularity sorted them three times:
 * measured on 1,000-event batches, the rollups took ~40 of the statement's ~175 ms.
 *
 * `late` bumps the revision (migration 008) of every tenant whose new events include one for an
 * hour more than an hour before the transaction's own: query processes cache sums of older
 * buckets (query/stats-cache.ts) for as long as it stays the same. Events for the current or the
 * previous hour, the usual case, write no row there.
 */
export const ROLLUP_CTES = `
  b AS (
    SELECT tenant_id, date_trunc('hour', occurred_at, 'UTC') AS hour, user_id, severity, action, resource_type
      FROM numbered
  ), th AS (
    SELECT tenant_id, hour, count(*) AS n FROM b GROUP BY 1, 2
  ), totals AS (
    INSERT INTO rollup_totals_hourly AS r (tenant_id, bucket, count)
    SELECT tenant_id, hour, n FROM th ORDER BY 1, 2
    ON CONFLICT (tenant_id, bucket) DO UPDATE SET count = r.count + excluded.count
  ), totals_daily AS (
    INSERT INTO rollup_totals_daily AS r (tenant_id, bucket, count)
    SELECT tenant_id, date_trunc('day', hour, 'UTC'), sum(n)::bigint FROM th GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (tenant_id, bucket) DO UPDATE SET count = r.count + excluded.count
  ), vh AS (
    SELECT tenant_id, hour, x.dim, x.value, count(*) AS n
      FROM b, LATERAL (VALUES ('s'::"char", severity), ('a', action), ('r', resource_type)) x(dim, value)
     GROUP BY 1, 2, 3, 4
  ), values_hourly AS (
    INSERT INTO rollup_values_hourly AS r (tenant_id, bucket, dim, value, count)
    SELECT tenant_id, hour, dim, value, n FROM vh ORDER BY 1, 2, 3, 4
    ON CONFLICT (tenant_id, bucket, dim, value) DO UPDATE SET count = r.count + excluded.count
  ), values_daily AS (
    INSERT INTO rollup_values_daily AS r (tenant_id, bucket, dim, value, count)
    SELECT tenant_id, date_trunc('day', hour, 'UTC'), dim, value, sum(n)::bigint FROM vh
     GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (tenant_id, bucket, dim, value) DO UPDATE SET count = r.count + excluded.count
  ), values_weekly AS (
    INSERT INTO rollup_values_weekly AS r (tenant_id, bucket, dim, value, count)
    SELECT tenant_id, date_trunc('week', hour, 'UTC'), dim, value, sum(n)::bigint FROM vh
     GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (tenant_id, bucket, dim, value) DO UPDATE SET count = r.count + excluded.count
  ), uh AS (
    SELECT tenant_id, hour, user_id, count(*) AS n FROM b WHERE user_id IS NOT NULL GROUP BY 1, 2, 3
  ), users_hourly AS (
    INSERT INTO rollup_users_hourly AS r (tenant_id, bucket, user_id, count)
    SELECT tenant_id, hour, user_id, n FROM uh ORDER BY 1, 2, 3
    ON CONFLICT (tenant_id, bucket, user_id) DO UPDATE SET count = r.count + excluded.count
  ), users_daily AS (
    INSERT INTO rollup_users_daily AS r (tenant_id, bucket, user_id, count)
    SELECT tenant_id, date_trunc('day', hour, 'UTC'), user_id, sum(n)::bigint FROM uh
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (tenant_id, bucket, user_id) DO UPDATE SET count = r.count + excluded.count
  ), users_weekly AS (
    INSERT INTO rollup_users_weekly AS r (tenant_id, bucket, user_id, count)
    SELECT tenant_id, date_trunc('week', hour, 'UTC'), user_id, sum(n)::bigint FROM uh
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (tenant_id, bucket, user_id) DO UPDATE SET count = r.count + excluded.count
  ), late AS (
    INSERT INTO rollup_revisions AS r (tenant_id, rev)
    SELECT tenant_id, 1 FROM th
     WHERE hour < date_trunc('hour', now(), 'UTC') - interval '1 hour'
     GROUP BY 1 ORDER BY 1
    ON CONFLICT (tenant_id) DO UPDATE SET rev = r.rev + 1
  )`;
