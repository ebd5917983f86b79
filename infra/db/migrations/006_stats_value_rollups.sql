-- Breakdown rollups by one dimension at a time, and daily totals.
--
-- rollup_dims_* held one row per (severity, action, resource_type) combination per bucket, but the
-- stats response only ever reports each dimension on its own. A busy tenant's combinations
-- multiply (measured on the bench data: ~320 rows per day, ~1,340 per week, ~200 per hour,
-- against ~35 distinct values of the three dimensions together), so a 30-day request summed ~5,700
-- rows where ~1,000 carry the same answer, and persist upserted one row per combination in every
-- batch (~90 per 100-event batch and grain) where one per value (~30) does.
--
-- rollup_values_* keep one row per (tenant, bucket, dimension, value). `dim` is 's' (severity),
-- 'a' (action) or 'r' (resource_type). No covering index: count is in no index, so persist's
-- upserts can be HOT (fillfactor leaves room for the new row versions on the same page), and the
-- few rows per bucket are cheap to fetch from the heap.
--
-- rollup_totals_daily: the series of an interval=day request read one rollup_totals_hourly row
-- per hour of the range (720 rows for 30 days, one heap page each, as every page holds all
-- tenants' rows of some hours); whole days now come from here, one row per day.
--
-- Maintained by persist in the same statement as the other rollups (stages/persist/rollups.ts),
-- so they are exactly-once with the events too.

CREATE TABLE rollup_values_hourly (
  tenant_id text NOT NULL,
  bucket    timestamptz NOT NULL,
  dim       "char" NOT NULL CHECK (dim IN ('s', 'a', 'r')),
  value     text NOT NULL,
  count     bigint NOT NULL,
  PRIMARY KEY (tenant_id, bucket, dim, value)
) WITH (fillfactor = 80);
CREATE TABLE rollup_values_daily (LIKE rollup_values_hourly INCLUDING ALL) WITH (fillfactor = 80);
CREATE TABLE rollup_values_weekly (LIKE rollup_values_hourly INCLUDING ALL) WITH (fillfactor = 80);

CREATE TABLE rollup_totals_daily (LIKE rollup_totals_hourly INCLUDING ALL);

-- Backfill from the combination rollups and the hourly totals, which cover every event stored so far.
INSERT INTO rollup_values_hourly (tenant_id, bucket, dim, value, count)
SELECT tenant_id, bucket, v.dim, v.value, sum(count)
  FROM rollup_dims_hourly,
       LATERAL (VALUES ('s'::"char", severity), ('a', action), ('r', resource_type)) v(dim, value)
 GROUP BY 1, 2, 3, 4;
INSERT INTO rollup_values_daily (tenant_id, bucket, dim, value, count)
SELECT tenant_id, bucket, v.dim, v.value, sum(count)
  FROM rollup_dims_daily,
       LATERAL (VALUES ('s'::"char", severity), ('a', action), ('r', resource_type)) v(dim, value)
 GROUP BY 1, 2, 3, 4;
INSERT INTO rollup_values_weekly (tenant_id, bucket, dim, value, count)
SELECT tenant_id, bucket, v.dim, v.value, sum(count)
  FROM rollup_dims_weekly,
       LATERAL (VALUES ('s'::"char", severity), ('a', action), ('r', resource_type)) v(dim, value)
 GROUP BY 1, 2, 3, 4;
INSERT INTO rollup_totals_daily (tenant_id, bucket, count)
SELECT tenant_id, date_trunc('day', bucket, 'UTC'), sum(count) FROM rollup_totals_hourly GROUP BY 1, 2;

-- Nothing reads or writes the combination rollups any more.
DROP TABLE rollup_dims_hourly, rollup_dims_daily, rollup_dims_weekly;

-- Read like the other rollups: as auditlog_reader, under the tenant policy.
GRANT SELECT ON rollup_values_hourly, rollup_values_daily, rollup_values_weekly, rollup_totals_daily
  TO auditlog_reader;
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['rollup_values_hourly', 'rollup_values_daily', 'rollup_values_weekly',
                           'rollup_totals_daily'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format(
      'CREATE POLICY %I ON %I FOR SELECT TO auditlog_reader USING (tenant_id = current_setting(''auditlog.tenant'', true))',
      t || '_tenant_read', t);
  END LOOP;
END $$;
