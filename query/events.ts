import type { ReadScope } from '../infra/auth/access.js';
import type { Context } from '../infra/context.js';
import type { StoredEvent } from '../infra/schema/event.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import { decodeRow, EVENT_COLUMNS, type EventRow } from './decode.js';
import type { SearchQuery } from './filters.js';
import { buildWhere } from './where.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** One event by id, or undefined when it is not visible in `scope` (same answer as "no such id"). */
export async function getEvent(ctx: Context, scope: ReadScope, id: string): Promise<StoredEvent | undefined> {
  if (!UUID.test(id)) return undefined;
  const where = buildWhere(scope, {});
  // event_ids gives occurred_at, so the read touches one partition.
  const { rows } = await ctx.pool.query<EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM events
      WHERE ${where.sql}
        AND (occurred_at, id) = (SELECT occurred_at, id FROM event_ids WHERE tenant_id = $1 AND id = $${where.params.length + 1}::uuid)`,
    [...where.params, id.toLowerCase()],
  );
  return rows[0] ? decodeRow(ctx.keyring, rows[0]) : undefined;
}

export interface Page {
  data: StoredEvent[];
  next_cursor: string | null;
}

/** A keyset page, newest first; stable while new events arrive. */
export async function searchEvents(ctx: Context, scope: ReadScope, query: SearchQuery): Promise<Page> {
  const cursor = query.cursor ? decodeCursor(query.cursor) : undefined;
  const where = buildWhere(scope, query, cursor, 'desc');
  const { rows } = await ctx.pool.query<EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM events WHERE ${where.sql}
      ORDER BY occurred_at DESC, seq DESC LIMIT $${where.params.length + 1}`,
    [...where.params, query.limit + 1],
  );
  const more = rows.length > query.limit;
  const page = more ? rows.slice(0, query.limit) : rows;
  const last = page[page.length - 1];
  return {
    data: await Promise.all(page.map((r) => decodeRow(ctx.keyring, r))),
    next_cursor: more && last ? encodeCursor({ occurredAt: last.occurred_at, seq: last.sequence }) : null,
  };
}
