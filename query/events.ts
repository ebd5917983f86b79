import type { ReadScope } from '../infra/auth/access.js';
import type { Context } from '../infra/context.js';
import { prepared } from '../infra/db/prepared.js';
import type { StoredEvent } from '../infra/schema/event.js';
import { type Correlation, correlate } from './correlation.js';
import { type Cursor, encodeCursor, type SortMode } from './cursor.js';
import { decodeRow, decodeRows, EVENT_COLUMNS, type EventRow } from './decode.js';
import { openSearchKeys, useOpenSearch } from './opensearch.js';
import { type RowKey, type TenantTx, withTenantScope } from './scoped.js';
import { boundsOf, slicedKeys, timeWindows } from './time-windows.js';
import { buildWhere, type ResolvedFilters } from './where.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** One event by id, or undefined when it is not visible in `scope` (same answer as "no such id"). */
export async function getEvent(ctx: Context, scope: ReadScope, id: string): Promise<StoredEvent | undefined> {
  if (!UUID.test(id)) return undefined;
  const row = await withTenantScope(ctx, scope, async (tx) => {
    const where = buildWhere(scope, {});
    // event_ids gives occurred_at, so the read touches one partition.
    const { rows } = await tx.query<EventRow>(
      prepared(
        `SELECT ${EVENT_COLUMNS} FROM events
        WHERE ${where.sql}
          AND (occurred_at, id) = (SELECT occurred_at, id FROM event_ids WHERE tenant_id = $1 AND id = $${where.params.length + 1}::uuid)`,
        [...where.params, id.toLowerCase()],
      ),
    );
    return rows[0];
  });
  return row ? decodeRow(ctx.keyring, row) : undefined;
}

/** Up to this many keys, `rowsAt` also prunes partitions by the keys' exact instants. */
const PRUNE_BY_INSTANT_MAX_KEYS = 100;

/**
 * The rows at `keys`, in the keys' order, read under row-level security (see `withTenantScope`).
 * A key outside the scope yields nothing.
 *
 * `events` is partitioned by day, and the join alone gives the planner no bound on occurred_at:
 * it would plan (and probe) every partition of the table for every call, which made a 500-key
 * read take hundreds of milliseconds. The keys' own time range (BETWEEN) is passed as parameters,
 * so the plan covers only the partitions inside it; a page of few keys spread over many days also
 * gets their exact instants (= ANY), which prunes the empty days in between (for a long list such
 * as an export chunk, estimating = ANY would cost more planning than it saves). Both are implied
 * by the join: they change which partitions are planned, never which rows are returned.
 */
export async function rowsAt(tx: TenantTx, keys: RowKey[]): Promise<EventRow[]> {
  if (keys.length === 0) return [];
  const where = buildWhere(tx.scope, {});
  const n = where.params.length;
  const ats = keys.map((k) => k.occurred_at);
  const span = timeSpan(ats);
  const { rows } = await tx.query<EventRow>(
    prepared(
      `SELECT ${EVENT_COLUMNS} FROM events
       JOIN unnest($${n + 1}::timestamptz[], $${n + 2}::bigint[]) WITH ORDINALITY AS k(at, sq, ord)
         ON occurred_at = k.at AND seq = k.sq
      WHERE ${where.sql}
        AND occurred_at BETWEEN $${n + 3}::timestamptz AND $${n + 4}::timestamptz
        ${keys.length <= PRUNE_BY_INSTANT_MAX_KEYS ? `AND occurred_at = ANY($${n + 1}::timestamptz[])` : ''}
      ORDER BY k.ord`,
      [...where.params, ats, keys.map((k) => k.seq), span.from, span.to],
    ),
  );
  return rows;
}

/**
 * The smallest millisecond range holding every instant of `ats` (microsecond timestamps: `from`
 * is rounded down, `to` up). Parsed rather than compared as text, so any ISO form of a key works;
 * an unparsable one widens the range to everything rather than dropping its row.
 */
function timeSpan(ats: string[]): { from: string; to: string } {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const at of ats) {
    const ms = Date.parse(at);
    if (Number.isNaN(ms)) return { from: '-infinity', to: 'infinity' };
    if (ms < min) min = ms;
    if (ms > max) max = ms;
  }
  return { from: new Date(min).toISOString(), to: new Date(max + 1).toISOString() };
}

/** A page of search results. `correlation` is present when the search named a request_id. */
export interface Page {
  data: StoredEvent[];
  next_cursor: string | null;
  correlation?: Correlation;
}

/** A parsed, resolved search: see `parseQuery` and `resolveFilters`. */
export interface SearchRequest {
  filters: ResolvedFilters;
  mode: SortMode;
  cursor?: Cursor;
  limit: number;
}

/**
 * A keyset page, stable while new events arrive: each page continues strictly after the last
 * row of the previous one in a total order, so no row is repeated or skipped. Newest first by
 * default; a request_id search is in sequence (causal) order and carries the request's summary.
 * Matching runs in PostgreSQL, newest time slice first (`slicedKeys`), or in OpenSearch for `q`
 * when it is configured (see `TenantTx.keys`).
 * Always two phases (keys as the owner, then `rowsAt` under row-level security): one statement as
 * the reader role was tried for filters that keep their indexes under RLS, and the planner, with
 * the policy's conditions in the statement, chose worse indexes (5M events: p50 `user_id` 21 →
 * 138 ms, combined filters 43 → 90 ms).
 */
export async function searchEvents(ctx: Context, scope: ReadScope, search: SearchRequest): Promise<Page> {
  const { filters, mode, limit } = search;
  // With OpenSearch configured, it does the matching for `q` (before the transaction: no
  // connection is held during the HTTP call); the rows still come from PostgreSQL, under RLS.
  const found = useOpenSearch(ctx, filters) ? await openSearchKeys(ctx, scope, search, limit + 1) : undefined;
  const { rows, correlation } = await withTenantScope(ctx, scope, async (tx) => {
    const keys =
      found ??
      (await slicedKeys(
        tx,
        buildWhere(scope, filters, search.cursor),
        mode,
        limit + 1,
        timeWindows(mode, boundsOf(filters, search.cursor), Date.now()),
      ));
    return {
      rows: await rowsAt(tx, keys),
      correlation: filters.request_id === undefined ? undefined : await correlate(tx, filters.request_id),
    };
  });
  const more = rows.length > limit;
  const page = more ? rows.slice(0, limit) : rows;
  const last = page[page.length - 1];
  const result: Page = {
    data: await decodeRows(ctx.keyring, page),
    next_cursor:
      more && last ? encodeCursor({ occurredAt: last.occurred_at, seq: last.sequence, mode }) : null,
  };
  if (correlation) result.correlation = correlation;
  return result;
}
