import type { Context } from '../../infra/context.js';
import { type Batch, PersistedEvent } from '../../infra/schema/batch.js';
import { searchIndexFor } from '../../infra/search/registry.js';
import type { Stage } from '../stage.js';

/**
 * The index slot. With PostgreSQL full-text search (the default) persisted rows are already
 * searchable and persist sends nothing here; with OpenSearch configured, this stage bulk-indexes
 * what persist forwards into each tenant's alias. Documents are keyed by event id, so a
 * redelivered batch overwrites what it wrote before: indexing is idempotent. A failure throws, and
 * the runner retries the batch and finally dead-letters it; PostgreSQL stays the source of truth.
 */
export const indexStage: Stage<PersistedEvent, never> = {
  name: 'index',
  input: 'index',
  output: undefined,
  inputEvent: PersistedEvent,
  async handle(batches: Batch<PersistedEvent>[], ctx: Context) {
    const events = batches.flatMap((b) => {
      // A batch is one tenant's events; an event claiming another tenant is a bug upstream, and
      // indexing it would put it in the wrong tenant's alias.
      if (b.events.some((e) => e.tenant_id !== b.tenant_id)) throw new Error('batch mixes tenants');
      return b.events;
    });
    if (events.length > 0) await searchIndexFor(ctx).bulkIndex(events);
    return [];
  },
};
