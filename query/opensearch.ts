import type { ReadScope } from '../infra/auth/access.js';
import type { Context } from '../infra/context.js';
import { searchEnabled, searchIndexFor } from '../infra/search/registry.js';
import type { Cursor, SortMode } from './cursor.js';
import type { RowKey } from './scoped.js';
import type { ResolvedFilters } from './where.js';

/** True when a search should run its matching in OpenSearch: `OPENSEARCH_URL` is set and `q` is present. */
export function useOpenSearch(ctx: Pick<Context, 'config'>, filters: { q?: string }): boolean {
  return searchEnabled(ctx) && filters.q !== undefined;
}

/**
 * The OpenSearch counterpart of `TenantTx.keys`: positions (occurred_at, seq) of the events
 * matching `search` in `scope`, in `mode` order, at most `limit`, continuing after `cursor`.
 * Feed them to `rowsAt` (`withTenantReads`): the rows are read from PostgreSQL under
 * row-level security, so even an index holding a foreign document could not leak its data.
 *
 * Scope comes only from `scope` (from `readScope`): the tenant picks the alias AND is a mandatory
 * `term` filter of the query; the user role adds its user id. Cursors are the PostgreSQL path's
 * (same (occurred_at, seq) keyset), so the two paths page identically. OpenSearch refreshes
 * about once a second, so an event becomes searchable here slightly after it is stored.
 */
export async function openSearchKeys(
  ctx: Context,
  scope: ReadScope,
  search: { filters: ResolvedFilters; mode: SortMode; cursor?: Cursor },
  limit: number,
): Promise<RowKey[]> {
  const hits = await searchIndexFor(ctx).search({
    tenantId: scope.tenantId,
    ...(scope.userId !== undefined ? { userId: scope.userId } : {}),
    filters: search.filters,
    order: search.mode,
    size: limit,
    ...(search.cursor ? { after: { occurredAt: search.cursor.occurredAt, seq: search.cursor.seq } } : {}),
  });
  return hits.map((h) => ({ occurred_at: h.occurred_at, seq: h.sequence }));
}
