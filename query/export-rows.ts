import type { SortMode } from './cursor.js';
import { type EventRow, ISO_TIMESTAMP_EVENT_COLUMNS, utcTimestamp } from './decode.js';
import { rowsAt } from './events.js';
import type { TenantTx } from './scoped.js';
import type { ScopedWhere } from './where.js';

/**
 * Every row matching `where`, in `mode` order, read under row-level security either way (see
 * `withTenantScope`), as a function that fetches the next `n` rows, hands each to `each` in order,
 * and resolves with a count that is below `n` only at the end.
 *
 * When every condition keeps its index under RLS (`where.leakproof`), one reader cursor returns
 * the rows themselves, one FETCH per chunk, each row handed over as soon as it is parsed (so
 * rows die young instead of filling the heap a chunk at a time), with timestamps formatted here
 * rather than by `to_char` (see `ISO_TIMESTAMP_EVENT_COLUMNS`). Measured on a 1M-row tenant,
 * that costs PostgreSQL about half the two-phase read (a key FETCH plus a `rowsAt` join per
 * chunk). Full-text, metadata and ip filters keep the two phases, so they still use their
 * indexes rather than scanning the whole tenant.
 */
export async function exportRows(
  tx: TenantTx,
  where: ScopedWhere,
  mode: SortMode,
): Promise<(n: number, each: (row: EventRow) => void) => Promise<number>> {
  if (where.leakproof) {
    // Transaction-local, so the pooled connection keeps its own; the timestamps' text needs it.
    await tx.query(`SELECT set_config('datestyle', 'ISO', true)`);
    const fetch = await tx.rowCursor<EventRow>(where, mode, ISO_TIMESTAMP_EVENT_COLUMNS);
    return (n, each) =>
      fetch(n, (row) => {
        row.occurred_at = utcTimestamp(row.occurred_at);
        row.received_at = utcTimestamp(row.received_at);
        each(row);
      });
  }
  const next = await tx.keyCursor(where, mode);
  return async (n, each) => {
    const keys = await next(n);
    for (const row of await rowsAt(tx, keys)) each(row);
    // The keys' count: a key whose row RLS hides must not end the export early.
    return keys.length;
  };
}
