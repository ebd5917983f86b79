import type { ReadScope } from '../infra/auth/access.js';
import type { Context } from '../infra/context.js';
import { prepared } from '../infra/db/prepared.js';
import type { StoredEvent } from '../infra/schema/event.js';
import type { Correlation } from './correlation.js';
import { type Cursor, encodeCursor, type SortMode } from './cursor.js';
import { decodeRow, decodeRows, EVENT_COLUMNS, type EventRow } from './decode.js';
import { openSearchKeys, useOpenSearch } from './opensearch.js';
import { plainWord, recentMatchKeys } from './recent-matches.js';
import { type RowKey, type TenantReads, withTenantReads, withTenantScope } from './scoped.js';
import { boundsOf, narrowed, slicedKeys, type TimeWindow, timeWindows } from './time-windows.js';
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

/**
 * A full-text search's page from `recentMatchKeys`, in its first time slice (see `timeWindows`),
 * when the rows read there fill it; undefined otherwise, and the page is matched as usual. Only
 * for time orders and when every other filter keeps its index (text, time and sequence
 * comparisons: the rows are read through one of those indexes), and only within a time bound, so
 * the statement is planned over a few partitions. Not for one plain word, which PostgreSQL plans
 * well by itself (see `plainWord`).
 */
async function recentFirst(
  tx: TenantReads,
  scope: ReadScope,
  search: SearchRequest,
  bounds: TimeWindow,
  edges: number[],
): Promise<RowKey[] | undefined> {
  const { filters, mode, limit } = search;
  if (filters.q === undefined || (mode !== 'time-desc' && mode !== 'time-asc')) return undefined;
  if (plainWord(filters.q)) return undefined;
  const { q, ...rest } = filters;
  const where = buildWhere(scope, rest, search.cursor);
  if (!where.leakproof) return undefined;
  const edge = edges[0];
  // Without an edge, only a lower time bound keeps the statement off most partitions (both orders).
  if (edge === undefined && bounds.from === undefined) return undefined;
  const window = edge === undefined ? {} : mode === 'time-desc' ? { from: edge } : { to: edge };
  const keys = await recentMatchKeys(tx, narrowed(where, window), q, mode, limit + 1);
  return keys.length === limit + 1 ? keys : undefined;
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
 * 138 ms, combined filters 43 → 90 ms). No transaction block (`withTenantReads`).
 */
export async function searchEvents(ctx: Context, scope: ReadScope, search: SearchRequest): Promise<Page> {
  const { filters, mode, limit } = search;
  // With OpenSearch configured, it does the matching for `q` (before reading: no connection is
  // held during the HTTP call); the rows still come from PostgreSQL, under RLS.
  const found = useOpenSearch(ctx, filters) ? await openSearchKeys(ctx, scope, search, limit + 1) : undefined;
  const { rows, keys, correlation } = await withTenantReads(ctx, scope, async (tx) => {
    const bounds = boundsOf(filters, search.cursor);
    const edges = timeWindows(mode, bounds, Date.now());
    const keys =
      found ??
      (await recentFirst(tx, scope, search, bounds, edges)) ??
      (await slicedKeys(tx, buildWhere(scope, filters, search.cursor), mode, limit + 1, edges));
    return {
      keys,
      // The key past the page only says whether there is a next one; its row is not read.
      rows: await tx.rowsAt(keys.slice(0, limit)),
      correlation: filters.request_id === undefined ? undefined : await tx.correlate(filters.request_id),
    };
  });
  const last = keys[limit - 1];
  const result: Page = {
    data: await decodeRows(ctx.keyring, rows),
    // From the page's last key rather than its last row: a page continues after what it matched.
    next_cursor:
      keys.length > limit && last
        ? encodeCursor({ occurredAt: last.occurred_at, seq: last.seq, mode })
        : null,
  };
  if (correlation) result.correlation = correlation;
  return result;
}
