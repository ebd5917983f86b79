import { ORDER_BY } from './order.js';
import type { RowKey, TenantReads } from './scoped.js';
import type { ScopedWhere } from './where.js';

/** Rows a full-text search first reads in page order, before asking the full-text index. */
export const RECENT_ROWS = 1000;

/**
 * Whether a full-text query is one plain word (letters and digits only, so the parser makes one
 * lexeme of it), which skips the recent-first read. PostgreSQL estimates how often one word
 * matches from the column's statistics (its most common elements) and plans it well: a read in
 * time order for a common word, the full-text index for a rare one. What it misestimates, and what
 * `recentMatchKeys` is for, is everything else: phrases, exclusions, `or`, several words (their
 * frequencies multiplied as if independent). Idle, on a 300k-event tenant, two alternating
 * rounds: a rare word 19.8 / 21.3 → 16.0 / 15.5 ms, a common one 9.2 / 8.3 → 6.2 / 6.2 ms at p50
 * without the recent-first read, which a rare word paid for nothing and a common one did not need.
 */
export function plainWord(q: string): boolean {
  return /^[\p{L}\p{N}]+$/u.test(q.trim());
}

/**
 * The first `limit` keys of a full-text search in a time order, found among the first `rows` rows
 * of the rest of its clause (`where`: every filter but `q`, with its cursor and time slice) by
 * testing each row's `tsv` in turn; fewer than `limit` when those rows hold fewer matches, and
 * then the caller matches through the full-text index instead.
 *
 * Exact: the rows are read in the page's own order, so when `limit` of them match, they are the
 * first `limit` matches of the whole clause. The cut is at the instant of the `rows`-th row (every
 * row at that instant is read too), and with fewer rows than that nothing is cut.
 *
 * Why: PostgreSQL estimates how often a phrase or an exclusion matches from its words, and for a
 * phrase of common words (`"signed in" -Lyon`) the estimate is far too low. It then chose the
 * full-text index, read every match of the day's partitions and sorted them for a 50-row page:
 * 33 ms at p50 in the 5M-event search run, growing with the day's volume. Read in time order, one
 * match in ten fills the page within ~500 rows. A rare phrase pays for `rows` row tests (about
 * 1–2 ms) before the index finds it; one plain word does not come here (`plainWord`).
 * `ts_match_vq` is the function behind `@@`, and a function call cannot use an index, so the
 * plan is always the ordered read of the rest of the clause.
 */
export async function recentMatchKeys(
  tx: TenantReads,
  where: ScopedWhere,
  q: string,
  mode: 'time-desc' | 'time-asc',
  limit: number,
  rows = RECENT_ROWS,
): Promise<RowKey[]> {
  const params = [...where.params, q];
  const desc = mode === 'time-desc';
  const cut = `(SELECT occurred_at FROM events WHERE ${where.sql}
                ORDER BY ${ORDER_BY[mode]} OFFSET ${Math.max(0, Math.floor(rows) - 1)} LIMIT 1)`;
  const sql = `${where.sql}
    AND ts_match_vq(tsv, websearch_to_tsquery('simple', $${params.length}))
    AND occurred_at ${desc ? '>=' : '<='} coalesce(${cut}, '${desc ? '-infinity' : 'infinity'}'::timestamptz)`;
  // Its own statement, never split into a merge (see `ScopedWhere.merge`).
  return tx.keys(
    { ...where, sql, params, leakproof: false, planStable: false, merge: undefined },
    mode,
    limit,
  );
}
