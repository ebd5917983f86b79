import type { SortMode } from './cursor.js';
import type { EventRow } from './decode.js';
import type { TenantTx } from './scoped.js';
import type { ScopedWhere } from './where.js';

/**
 * Every row matching `where`, in `mode` order, read in two phases (see "Why two phases" at
 * `withTenantScope`): a key cursor matches as the owner, so full-text and metadata filters
 * still use their indexes, and each chunk's rows are read by key under row-level security
 * (`TenantTx.rowsAt`). Returns a function that fetches the next `n` rows, hands each to `each` in
 * order, and resolves with a count that is below `n` only at the end. A clause whose conditions
 * all keep their indexes under RLS is exported in one phase instead (see `copyExport`).
 */
export async function exportRows(
  tx: TenantTx,
  where: ScopedWhere,
  mode: SortMode,
): Promise<(n: number, each: (row: EventRow) => void) => Promise<number>> {
  const next = await tx.keyCursor(where, mode);
  return async (n, each) => {
    const keys = await next(n);
    for (const row of await tx.rowsAt(keys)) each(row);
    // The keys' count: a key whose row RLS hides must not end the export early.
    return keys.length;
  };
}
