import type { Context } from '../context.js';
import { SearchIndex } from './opensearch.js';

/**
 * One OpenSearch adapter per context, created on first use when `OPENSEARCH_URL` is set. Keyed by
 * the context (not a module-level client): each daemon context, and each test service, has its
 * own. Daemons exit through `process.exit`, so the client's sockets need no explicit close there;
 * tests close it with `closeSearchIndex`.
 */
const adapters = new WeakMap<Context, SearchIndex>();

/** True when the OpenSearch path is configured. */
export function searchEnabled(ctx: Pick<Context, 'config'>): boolean {
  return Boolean(ctx.config.OPENSEARCH_URL);
}

/** The context's adapter; throws when `OPENSEARCH_URL` is unset. */
export function searchIndexFor(ctx: Context): SearchIndex {
  let index = adapters.get(ctx);
  if (!index) {
    index = SearchIndex.fromConfig(ctx.config, ctx.log);
    adapters.set(ctx, index);
  }
  return index;
}

/** Installs a prepared adapter (tests: one built on a recording Connection). */
export function setSearchIndex(ctx: Context, index: SearchIndex): void {
  adapters.set(ctx, index);
}

/** Closes and forgets the context's adapter, if any. */
export async function closeSearchIndex(ctx: Context): Promise<void> {
  const index = adapters.get(ctx);
  adapters.delete(ctx);
  await index?.close();
}
