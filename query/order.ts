import type { SortMode } from './cursor.js';

/**
 * The order of a search or export. A `request_id` search is a correlation: its rows come in
 * sequence order, which is the order the request's events were submitted (causal order), oldest
 * first unless `sort=desc`. Everything else orders by time, newest first unless `sort=asc`.
 */
export function sortModeOf(query: { sort?: 'asc' | 'desc'; request_id?: string }): SortMode {
  if (query.request_id !== undefined) return query.sort === 'desc' ? 'seq-desc' : 'seq-asc';
  return query.sort === 'asc' ? 'time-asc' : 'time-desc';
}

/**
 * ORDER BY for each mode, over `FROM events`. Every mode ends in seq, unique per tenant, so the
 * order is total. The columns are qualified: the key queries select `seq::text AS seq` and a
 * to_char `occurred_at`, and a bare name would sort those text outputs ("10" before "9") and
 * could not use the (tenant_id, occurred_at, seq) indexes.
 */
export const ORDER_BY: Record<SortMode, string> = {
  'time-desc': 'events.occurred_at DESC, events.seq DESC',
  'time-asc': 'events.occurred_at ASC, events.seq ASC',
  'seq-asc': 'events.seq ASC',
  'seq-desc': 'events.seq DESC',
};
