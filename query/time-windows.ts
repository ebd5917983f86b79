import type { Cursor, SortMode } from './cursor.js';
import type { RowKey, TenantReads } from './scoped.js';
import type { ScopedWhere } from './where.js';

const DAY_MS = 86_400_000;

/**
 * A time slice of a match: `occurred_at >= from` and `occurred_at < to`, either end open. The
 * slices of one walk are disjoint and cover all time, so walking them in the page's time order and
 * concatenating what each returns gives exactly the rows one statement would.
 */
export interface TimeWindow {
  from?: number;
  to?: number;
}

/** Edges of the first slices, in days from the anchor: a day, then a week more, then the rest. */
const EDGE_DAYS = [1, 8] as const;
/** Edges stay inside the years PostgreSQL and `toISOString` both write plainly (1–9999). */
const MIN_EDGE = Date.parse('0001-01-01T00:00:00Z');
const MAX_EDGE = Date.parse('9999-12-31T00:00:00Z');
const inRange = (e: number) => e >= MIN_EDGE && e <= MAX_EDGE;

/**
 * The edges (ms) at which a match in `mode` order is cut into time slices, nearest first; empty
 * for one unsliced statement.
 *
 * Why slices: a matching statement is planned for its values every time (see `TenantTx.keys`),
 * for every partition of `events` it may read. With no time bound that plan covers every
 * partition of the table: 12.6 ms with 38 daily partitions on this machine, idle, against 1.5 ms
 * for a statement bounded to the last day (partitions are a week wide since 2026-12-08, which cut
 * such plans 3–4×, but a long retention still means many of them). A newest-first page of a
 * common filter is almost always found in the last day, so the walk asks the newest slice first
 * and widens only when the page is not full.
 *
 * The edges are `EDGE_DAYS` from the anchor, the newest instant the clause can match (now, or `to`
 * / the cursor when earlier; oldest first, `from` or the cursor) and stop at the clause's own far
 * bound. A clause whose bounds already fit in the first slice is one statement, as before.
 */
export function timeWindows(mode: SortMode, bounds: TimeWindow, now: number): number[] {
  if (mode === 'time-desc') {
    const anchor = Math.min(now, bounds.to ?? now);
    const floor = bounds.from ?? Number.NEGATIVE_INFINITY;
    // An edge at or below the clause's own lower bound would only add an empty slice.
    return EDGE_DAYS.map((d) => anchor - d * DAY_MS).filter((e) => e > floor && inRange(e));
  }
  if (mode === 'time-asc' && bounds.from !== undefined) {
    const anchor = bounds.from;
    const ceiling = bounds.to ?? Number.POSITIVE_INFINITY;
    return EDGE_DAYS.map((d) => anchor + d * DAY_MS).filter((e) => e < ceiling && inRange(e));
  }
  // Oldest first with no lower bound: where the data starts is unknown, so no slicing; a
  // sequence (correlation) order is not a time order.
  return [];
}

/**
 * The time bounds `where` already has, in milliseconds: its filters' `from`/`to` and the cursor's
 * position (a strict bound in the page's direction). A bound that does not parse is left open:
 * slicing then only adds statements, it never drops a row.
 */
export function boundsOf(filters: { from?: string; to?: string }, cursor: Cursor | undefined): TimeWindow {
  const ms = (s: string | undefined) => {
    const v = s === undefined ? Number.NaN : Date.parse(s);
    return Number.isNaN(v) ? undefined : v;
  };
  let from = ms(filters.from);
  let to = ms(filters.to);
  if (cursor?.mode === 'time-desc') {
    // Rows strictly before the cursor's instant (ms rounded up keeps every µs after it out of doubt).
    const at = ms(cursor.occurredAt);
    if (at !== undefined) to = to === undefined ? at + 1 : Math.min(to, at + 1);
  } else if (cursor?.mode === 'time-asc') {
    const at = ms(cursor.occurredAt);
    if (at !== undefined) from = from === undefined ? at : Math.max(from, at);
  }
  const bounds: TimeWindow = {};
  if (from !== undefined) bounds.from = from;
  if (to !== undefined) bounds.to = to;
  return bounds;
}

/** `where` narrowed to `window` (timestamptz comparisons: leakproof, and they prune partitions). */
export function narrowed(where: ScopedWhere, window: TimeWindow): ScopedWhere {
  const params = [...where.params];
  const clauses = [where.sql];
  if (window.from !== undefined) {
    params.push(new Date(window.from).toISOString());
    clauses.push(`occurred_at >= $${params.length}::timestamptz`);
  }
  if (window.to !== undefined) {
    params.push(new Date(window.to).toISOString());
    clauses.push(`occurred_at < $${params.length}::timestamptz`);
  }
  return { ...where, sql: clauses.join(' AND '), params };
}

/**
 * Keys of the rows matching `where` in `mode` order, at most `limit`: `tx.keys` over the time
 * slices of `timeWindows`, nearest first, until the page is full. Exact: the slices are disjoint,
 * cover all time, and follow the page's own order, so the result equals one unsliced statement's.
 *
 * When the first slice (a day) returns less than a fifth of the page (9k < 2·limit: the next
 * week would not fill it twice over at that rate), the middle slice is skipped and the rest is
 * asked at once: a rare match pays one small extra statement, not two.
 */
export async function slicedKeys(
  tx: TenantReads,
  where: ScopedWhere,
  mode: SortMode,
  limit: number,
  edges: number[],
): Promise<RowKey[]> {
  if (edges.length === 0) return tx.keys(where, mode, limit);
  const desc = mode === 'time-desc';
  const keys: RowKey[] = [];
  let near: number | undefined; // the edge the next slice starts from (open at first)
  for (let i = 0; ; ) {
    const far = edges[i]; // undefined: the last slice, open at the far end
    const window: TimeWindow = desc ? { from: far, to: near } : { from: near, to: far };
    const got = await tx.keys(narrowed(where, window), mode, limit - keys.length);
    for (const k of got) keys.push(k);
    if (keys.length >= limit || far === undefined) break;
    // Rare in the first slice: everything past it in one statement.
    i = i === 0 && 9 * got.length < 2 * limit ? edges.length : i + 1;
    near = far;
  }
  return keys;
}
