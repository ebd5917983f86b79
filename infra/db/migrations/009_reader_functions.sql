-- Reads that enter the reader role themselves (query/scoped.ts `withTenantReads`): the rows at a
-- list of keys, and a request's summary, each read under row-level security in one statement.
--
-- A search page was BEGIN, the keys (as the owner), one statement setting the scope and entering
-- `auditlog_reader`, the rows, COMMIT (and a correlation's summary): five or six round trips, each
-- a wake-up of this backend and of the query daemon, which on a busy machine is where a read's
-- latency goes. These functions set the scope and enter the reader role themselves, then read, so a
-- page needs no transaction block: its keys statement and these, each in its own implicit
-- transaction.
--
-- Why this is as safe as `SET LOCAL ROLE` in a transaction block:
-- - `set_config(…, true)` lasts until the end of the calling transaction. Called on its own (an
--   implicit transaction) that is the end of the statement; inside a transaction block, the
--   block's statements after it run as the reader too, as before (query/scoped.ts tracks that).
-- - Each read below is planned when it first runs, after the switch, so the planner applies the
--   policies of migration 002 to it. PL/pgSQL caches its plans; PostgreSQL re-plans a cached plan
--   that depends on row-level security when the current role differs from the one it was planned
--   for, so a plan without the policy is never reused for the reader.
-- - Not SECURITY DEFINER (a definer function may not change `role`): they run with the caller's
--   rights. The owner calls them, and so does the reader when a transaction block reads again
--   after a first call (an export's chunks): it gains nothing by it, as it only ever switches to
--   itself. Nobody else may (EXECUTE is revoked from PUBLIC).
-- - The tenant (and the `user` role's user) are also conditions of each read itself, as every
--   read of query/where.ts is; on TimescaleDB, where `events` has no policy (see 002), they are
--   the only ones.

-- Sets the read scope the policies compare with, and enters the reader role, for the rest of the
-- calling transaction. The one place the functions below do it.
CREATE FUNCTION auditlog_enter_reader(p_tenant text, p_user text) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM set_config('auditlog.tenant', p_tenant, true),
          set_config('auditlog.user', coalesce(p_user, ''), true),
          set_config('role', 'auditlog_reader', true);
END
$$;

-- The rows at keys (occurred_at, seq), in the keys' order. Up to 100 keys (a search page) the
-- read probes an index once per key; a longer list (an export chunk, usually a dense run of time)
-- is one join. See query/rows-at.ts for why. The keys' time span (`p_from`, `p_to`) bounds both to
-- the partitions inside it.
CREATE FUNCTION auditlog_rows_at(
  p_tenant text,
  p_user text,
  p_ats timestamptz[],
  p_seqs bigint[],
  p_from timestamptz,
  p_to timestamptz
) RETURNS SETOF events
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM auditlog_enter_reader(p_tenant, p_user);
  IF coalesce(cardinality(p_ats), 0) <= 100 THEN
    RETURN QUERY
      SELECT e.*
        FROM unnest(p_ats, p_seqs) WITH ORDINALITY AS k(at, sq, ord)
       CROSS JOIN LATERAL (
         SELECT * FROM events
          WHERE tenant_id = p_tenant AND (p_user IS NULL OR user_id = p_user)
            AND occurred_at BETWEEN p_from AND p_to
            AND occurred_at = k.at AND seq = k.sq
          LIMIT 1
       ) e
       ORDER BY k.ord;
  ELSE
    RETURN QUERY
      SELECT e.*
        FROM events e
        JOIN unnest(p_ats, p_seqs) WITH ORDINALITY AS k(at, sq, ord)
          ON e.occurred_at = k.at AND e.seq = k.sq
       WHERE e.tenant_id = p_tenant AND (p_user IS NULL OR e.user_id = p_user)
         AND e.occurred_at BETWEEN p_from AND p_to
       ORDER BY k.ord;
  END IF;
END
$$;

-- How many events one request produced and when its first and last occurred (query/correlation.ts),
-- through the (tenant_id, request_id, seq) index.
CREATE FUNCTION auditlog_request_summary(p_tenant text, p_user text, p_request_id text)
RETURNS TABLE (event_count bigint, first_at timestamptz, last_at timestamptz)
LANGUAGE plpgsql
AS $$
BEGIN
  PERFORM auditlog_enter_reader(p_tenant, p_user);
  RETURN QUERY
    SELECT count(*), min(e.occurred_at), max(e.occurred_at)
      FROM events e
     WHERE e.tenant_id = p_tenant AND (p_user IS NULL OR e.user_id = p_user)
       AND e.request_id = p_request_id;
END
$$;

REVOKE ALL ON FUNCTION auditlog_enter_reader(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION auditlog_rows_at(text, text, timestamptz[], bigint[], timestamptz, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION auditlog_request_summary(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auditlog_enter_reader(text, text) TO auditlog_reader;
GRANT EXECUTE ON FUNCTION auditlog_rows_at(text, text, timestamptz[], bigint[], timestamptz, timestamptz) TO auditlog_reader;
GRANT EXECUTE ON FUNCTION auditlog_request_summary(text, text, text) TO auditlog_reader;
