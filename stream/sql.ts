import type pg from 'pg';
import type { ReadScope } from '../infra/auth/access.js';
import { prepared } from '../infra/db/prepared.js';
import { EVENT_COLUMNS, type EventRow } from '../query/decode.js';
import { buildWhere } from '../query/where.js';
import type { StreamFilters } from './protocol.js';

/**
 * The tenant's events after `after`, in sequence order (index `events_tenant_seq`), as a named
 * statement: it runs on every notification, and planning it over every partition cost more
 * than running it (see `prepared`); its plan does not depend on the values. There is no
 * upper bound: sequence numbers are assigned under the tenant row's lock and become visible in
 * order, so whatever this sees is a gapless prefix, and reading past the notified range only
 * saves a round trip for the next notification.
 */
export async function readTenantAfter(
  pool: pg.Pool,
  tenantId: string,
  after: bigint,
  limit: number,
): Promise<EventRow[]> {
  const { rows } = await pool.query<EventRow>(
    prepared(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE tenant_id = $1 AND seq > $2::bigint ORDER BY seq LIMIT $3`,
      [tenantId, after.toString(), limit],
    ),
  );
  return rows;
}

/**
 * One subscriber's replay: events in `(after, upTo]` visible in its scope and matching its
 * filters, in sequence order. The WHERE clause comes from the search API's `buildWhere`, so the
 * scope rules are the very same code.
 */
export async function readReplay(
  pool: pg.Pool,
  scope: ReadScope,
  filters: StreamFilters,
  after: bigint,
  upTo: bigint,
  limit: number,
): Promise<EventRow[]> {
  const where = buildWhere(scope, filters);
  const n = where.params.length;
  // Unnamed, so planned for its values: with filters, a cached generic plan cannot tell a heavy
  // user from a light one (see `TenantTx.keys`). A replay runs once per (re)connect.
  const { rows } = await pool.query<EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM events
      WHERE ${where.sql} AND seq > $${n + 1}::bigint AND seq <= $${n + 2}::bigint
      ORDER BY seq LIMIT $${n + 3}`,
    [...where.params, after.toString(), upTo.toString(), limit],
  );
  return rows;
}

/** The last committed sequence of each named tenant (absent tenants are left out). */
export async function tenantPositions(pool: pg.Pool, tenantIds: string[]): Promise<Map<string, bigint>> {
  const { rows } = await pool.query<{ id: string; last_seq: string }>(
    'SELECT id, last_seq::text AS last_seq FROM tenants WHERE id = ANY($1)',
    [tenantIds],
  );
  return new Map(rows.map((r) => [r.id, BigInt(r.last_seq)]));
}
