-- A revision per tenant, bumped by every persist statement that adds events to a rollup hour
-- more than one hour before its own (late events: backfills, clients with slow clocks or queues).
-- Query processes cache the sums of rollup buckets that ended two hours ago or earlier
-- (query/stats-cache.ts) and use them only while this revision is unchanged. A tenant with no
-- row is at revision 0. Anything else that ever changes a rollup bucket older than the previous
-- hour (a retention job, a backfill) must bump the tenant's revision in the same transaction.
CREATE TABLE rollup_revisions (
  tenant_id text PRIMARY KEY,
  rev       bigint NOT NULL
);

GRANT SELECT ON rollup_revisions TO auditlog_reader;
ALTER TABLE rollup_revisions ENABLE ROW LEVEL SECURITY;
CREATE POLICY rollup_revisions_tenant_read ON rollup_revisions FOR SELECT TO auditlog_reader
  USING (tenant_id = current_setting('auditlog.tenant', true));
