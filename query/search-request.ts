import type { Context } from '../infra/context.js';
import { HttpError } from '../infra/http/errors.js';
import { utcTimestamp } from '../infra/schema/validate.js';
import { type Cursor, decodeCursorFor, type SortMode } from './cursor.js';
import type { Filters } from './filters.js';
import { parseIpFilter } from './ip.js';
import { metadataFilterPairs, metadataTokens } from './metadata-filter.js';
import { sortModeOf } from './order.js';
import type { ResolvedFilters } from './where.js';

/** A search or export query, checked beyond what the JSON schema can say. */
export interface ParsedQuery {
  filters: Filters;
  /** `metadata.<key>=<value>` filters, resolved to tokens by `resolveFilters`. */
  metadata: [string, string][];
  mode: SortMode;
  cursor?: Cursor;
}

const FILTER_KEYS = [
  'from',
  'to',
  'user_id',
  'action',
  'resource_type',
  'resource_id',
  'severity',
  'request_id',
  'q',
  'ip_address',
] as const satisfies readonly (keyof Filters)[];

const bad = (param: string, message: string) =>
  new HttpError(400, 'validation_failed', `invalid querystring`, [{ path: `querystring/${param}`, message }]);

/**
 * Everything that can make a search or export a 400 is checked here, before the read is audited
 * and before anything touches the database: NUL characters (PostgreSQL text cannot hold them),
 * timestamps PostgreSQL would reject (normalized to UTC), IP syntax, the number of metadata
 * filters, and a cursor that belongs to another sort order.
 */
export function parseQuery(query: Filters & { sort?: 'asc' | 'desc'; cursor?: string }): ParsedQuery {
  for (const [name, value] of Object.entries(query)) {
    if (typeof value === 'string' && value.includes('\u0000')) throw bad(name, 'must not contain NUL');
  }
  const filters: Filters = {};
  for (const key of FILTER_KEYS) {
    const value = query[key];
    if (value !== undefined) filters[key] = value;
  }
  for (const key of ['from', 'to'] as const) {
    const value = filters[key];
    if (value === undefined) continue;
    const utc = utcTimestamp(value);
    if (!utc) throw bad(key, 'must be a timestamp between years 0001 and 9999 with a valid offset');
    filters[key] = utc.iso;
  }
  if (filters.ip_address !== undefined) filters.ip_address = parseIpFilter(filters.ip_address);
  const mode = sortModeOf(query);
  const parsed: ParsedQuery = { filters, metadata: metadataFilterPairs(query), mode };
  if (query.cursor !== undefined) parsed.cursor = decodeCursorFor(query.cursor, mode);
  return parsed;
}

/** Adds the metadata filters' blind-index tokens for `tenantId`. */
export async function resolveFilters(
  ctx: Pick<Context, 'keyring'>,
  tenantId: string,
  parsed: ParsedQuery,
): Promise<ResolvedFilters> {
  const metaTokens = await metadataTokens(ctx, tenantId, parsed.metadata);
  return metaTokens ? { ...parsed.filters, metaTokens } : parsed.filters;
}
