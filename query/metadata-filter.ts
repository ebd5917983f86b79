import type { Context } from '../infra/context.js';
import { metaToken } from '../infra/crypto/tenant-keys.js';
import { HttpError } from '../infra/http/errors.js';
import { MAX_METADATA_FILTERS } from './filters.js';

const PREFIX = 'metadata.';

/**
 * The `metadata.<key>=<value>` pairs of a validated query string (ajv has already checked the key
 * pattern and the value length), in query order.
 */
export function metadataFilterPairs(query: object): [string, string][] {
  const pairs: [string, string][] = [];
  for (const [name, value] of Object.entries(query)) {
    if (name.startsWith(PREFIX)) pairs.push([name.slice(PREFIX.length), String(value)]);
  }
  if (pairs.length > MAX_METADATA_FILTERS) {
    throw new HttpError(
      400,
      'too_many_metadata_filters',
      `at most ${MAX_METADATA_FILTERS} metadata.<key> filters are allowed`,
    );
  }
  return pairs;
}

/**
 * Blind-index tokens for metadata filters, computed exactly as the encrypt stage computed them
 * for stored events: HMAC under the tenant's index key, so a token from one tenant never matches
 * another tenant's rows. The values compared are the masked ones, so a redacted secret matches
 * only `[REDACTED]`, never its original value.
 */
export async function metadataTokens(
  ctx: Pick<Context, 'keyring'>,
  tenantId: string,
  pairs: [string, string][],
): Promise<string[] | undefined> {
  if (pairs.length === 0) return undefined;
  const indexKey = await ctx.keyring.indexKey(tenantId);
  return pairs.map(([key, value]) => metaToken(indexKey, key, value));
}
