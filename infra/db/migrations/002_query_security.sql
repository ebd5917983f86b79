-- Query service: indexes for the new search filters, and row-level security as defence in depth
-- for every read (query/scoped.ts).

-- metadata.<key>=<value> filters match blind-index tokens (`meta_idx @> ARRAY[token]`). Tokens are
-- HMACs under a per-tenant key, so a token only ever occurs in one tenant's rows: the GIN index
-- is tenant-selective without a tenant column in it.
CREATE INDEX events_meta_idx ON events USING gin (meta_idx);

-- ip_address filters (exact, or CIDR with `<<=`, which the planner turns into a btree range scan).
-- It ends in the keyset tiebreaker like every other page index.
CREATE INDEX events_tenant_ip ON events (tenant_id, ip_address, occurred_at DESC, seq DESC)
  WHERE ip_address IS NOT NULL;

-- The role every read runs as (`SET LOCAL ROLE auditlog_reader` inside a read-only transaction).
-- NOLOGIN: nobody connects as it; the service's own (owner) role switches to it per transaction.
-- Roles are cluster-wide, so another database of the same cluster may have created it already.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'auditlog_reader') THEN
    CREATE ROLE auditlog_reader NOLOGIN;
  END IF;
EXCEPTION WHEN duplicate_object THEN
  NULL; -- created concurrently by a migrator of another database
END $$;
-- Membership lets the owner `SET ROLE` to it. It needs CREATEROLE (or superuser) at migration
-- time, which RDS's master user has.
GRANT auditlog_reader TO CURRENT_USER;
DO $$ BEGIN EXECUTE format('GRANT USAGE ON SCHEMA %I TO auditlog_reader', current_schema()); END $$;
-- Read-only, and only what reads need. Partitions get no grant: the reader can only see rows
-- through the parent, where the policy applies.
GRANT SELECT ON events, event_ids TO auditlog_reader;

-- Row-level security. The policies compare each row with transaction-local settings that
-- query/scoped.ts sets next to `SET LOCAL ROLE`: `auditlog.tenant` (always) and `auditlog.user`
-- (the `user` role's sub; empty otherwise). An unset tenant matches nothing.
--
-- Why ENABLE and not FORCE: the persist stage, the embedded queue, partition upkeep and migrations
-- connect as the table owner and must keep writing every tenant's rows. Owners bypass RLS unless
-- it is FORCEd, so writers are unaffected, while every read switches to `auditlog_reader`, which
-- is not the owner and therefore always gets the policy. A policy that let everything through
-- when the setting is unset would turn any read that forgot to set it into a cross-tenant read;
-- these policies fail closed instead.
--
-- On TimescaleDB the events hypertable is compressed, and TimescaleDB refuses RLS on compressed
-- hypertables (timescale/timescaledb#6827), so there only event_ids gets a policy and tenant
-- scoping of events rests on query/where.ts alone.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
    ALTER TABLE events ENABLE ROW LEVEL SECURITY;
    CREATE POLICY events_tenant_read ON events FOR SELECT TO auditlog_reader
      USING (
        tenant_id = current_setting('auditlog.tenant', true)
        AND (coalesce(current_setting('auditlog.user', true), '') = ''
             OR user_id = current_setting('auditlog.user', true))
      );
  ELSE
    RAISE NOTICE 'TimescaleDB: row-level security on compressed hypertable events is not supported; skipped';
  END IF;
END $$;

ALTER TABLE event_ids ENABLE ROW LEVEL SECURITY;
CREATE POLICY event_ids_tenant_read ON event_ids FOR SELECT TO auditlog_reader
  USING (tenant_id = current_setting('auditlog.tenant', true));
