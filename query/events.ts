import type { ReadScope } from '../infra/auth/access.js';
import type { Context } from '../infra/context.js';
import { prepared } from '../infra/db/prepared.js';
import type { StoredEvent } from '../infra/schema/event.js';
import { type Correlation, correlate } from './correlation.js';
import { type Cursor, encodeCursor, type SortMode } from './cursor.js';
import { decodeRow, decodeRows, EVENT_COLUMNS, type EventRow } from './decode.js';
import { openSearchKeys, useOpenSearch } from './opensearch.js';
import { recentMatchKeys } from './recent-matches.js';
import { type RowKey, type TenantTx, withTenantScope } from './scoped.js';
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

/** Up to this many keys (a search page), `rowsAt` probes an index once per key. */
const PROBE_MAX_KEYS = 100;

/**
 * The rows at `keys`, in the keys' order, read under row-level security (see `withTenantScope`).
 * A key outside the scope yields nothing.
 *
 * `events` is partitioned by day. The keys' time range (BETWEEN) bounds the plan to the partitions
 * inside it; without it every partition of the table would be planned and probed for every call
 * (a 500-key read took hundreds of milliseconds).
 *
 * A page of keys is read with one index probe per key: each key looks up its own row (`LATERAL
 * … LIMIT 1`; a tenant's sequence number is unique, so there is at most one), in the one partition
 * its instant leaves. The statement is prepared, so it soon runs a cached generic plan, which has to
 * be good for any keys, and written as a join of the keys with `events` its generic plans were not:
 * under ingest a page of 51 keys read the 4,700 rows at the keys' instants (events of one bulk
 * request often share an instant) and compared 240,000 pairs (32 ms), and a page of 20 rare
 * matches spread over a month scanned all of the tenant's index entries in each of 27 daily
 * partitions (50 ms). Probed per key, both take 0.3–0.6 ms.
 *
 * A longer list (an export chunk of 1,000 keys, usually a dense run of time) is still one join
 * over the range: per-key probes made such exports 10–25% slower.
 */
export async function rowsAt(tx: TenantTx, keys: RowKey[]): Promise<EventRow[]> {
  if (keys.length === 0) return [];
  const where = buildWhere(tx.scope, {});
  const n = where.params.length;
  const ats = keys.map((k) => k.occurred_at);
  const span = timeSpan(ats);
  const keysSql = `unnest($${n + 1}::timestamptz[], $${n + 2}::bigint[]) WITH ORDINALITY AS k(at, sq, ord)`;
  const inSpan = `occurred_at BETWEEN $${n + 3}::timestamptz AND $${n + 4}::timestamptz`;
  const text =
    keys.length <= PROBE_MAX_KEYS
      ? `SELECT e.* FROM ${keysSql}
         CROSS JOIN LATERAL (
           SELECT ${EVENT_COLUMNS} FROM events
            WHERE ${where.sql} AND ${inSpan} AND occurred_at = k.at AND seq = k.sq
            LIMIT 1
         ) e
         ORDER BY k.ord`
      : `SELECT ${EVENT_COLUMNS} FROM events JOIN ${keysSql} ON occurred_at = k.at AND seq = k.sq
          WHERE ${where.sql} AND ${inSpan}
          ORDER BY k.ord`;
  const { rows } = await tx.query<EventRow>(
    prepared(text, [...where.params, ats, keys.map((k) => k.seq), span.from, span.to]),
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

/**
 * A full-text search's page from `recentMatchKeys`, in its first time slice (see `timeWindows`),
 * when the rows read there fill it; undefined otherwise, and the page is matched as usual. Only
 * for time orders and when every other filter keeps its index (text, time and sequence
 * comparisons: the rows are read through one of those indexes), and only within a time bound, so
 * the statement is planned over a few partitions.
 */
async function recentFirst(
  tx: TenantTx,
  scope: ReadScope,
  search: SearchRequest,
  bounds: TimeWindow,
  edges: number[],
): Promise<RowKey[] | undefined> {
  const { filters, mode, limit } = search;
  if (filters.q === undefined || (mode !== 'time-desc' && mode !== 'time-asc')) return undefined;
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
 * 138 ms, combined filters 43 → 90 ms).
 */
export async function searchEvents(ctx: Context, scope: ReadScope, search: SearchRequest): Promise<Page> {
  const { filters, mode, limit } = search;
  // With OpenSearch configured, it does the matching for `q` (before the transaction: no
  // connection is held during the HTTP call); the rows still come from PostgreSQL, under RLS.
  const found = useOpenSearch(ctx, filters) ? await openSearchKeys(ctx, scope, search, limit + 1) : undefined;
  const { rows, correlation } = await withTenantScope(ctx, scope, async (tx) => {
    const bounds = boundsOf(filters, search.cursor);
    const edges = timeWindows(mode, bounds, Date.now());
    const keys =
      found ??
      (await recentFirst(tx, scope, search, bounds, edges)) ??
      (await slicedKeys(tx, buildWhere(scope, filters, search.cursor), mode, limit + 1, edges));
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
