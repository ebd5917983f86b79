import type { Context } from '../../infra/context.js';
import { withTransaction } from '../../infra/db/pool.js';
import { type Batch, type PersistedEvent, SealedEvent } from '../../infra/schema/batch.js';
import type { Stage } from '../stage.js';
import { copyStaging, insertFromStaging, lockTenants } from './sql.js';

/**
 * Writes batches with one COPY per call and assigns each tenant's gapless sequence, all in one
 * transaction: either every event of the received messages is stored (or was already) and the
 * sequence advanced, or nothing is. Redelivered events are skipped by id, so at-least-once
 * delivery becomes exactly-once storage.
 */
export function persistStage(forwardToIndex: boolean): Stage<SealedEvent, PersistedEvent> {
  return {
    name: 'persist',
    input: 'persist',
    output: forwardToIndex ? 'index' : undefined,
    inputEvent: SealedEvent,
    async handle(batches: Batch<SealedEvent>[], ctx: Context) {
      const rows = batches.flatMap((b) => b.events);
      if (rows.length === 0) return [];
      await ctx.partitions.ensure(rows.map((e) => Date.parse(e.occurred_at)));
      const tenants = [...new Set(batches.map((b) => b.tenant_id))].sort();
      const stored = await withTransaction(ctx.pool, async (client) => {
        // Staging is private to this connection, so the COPY runs before the tenant locks: a
        // second worker's COPY overlaps this one's INSERT instead of queueing behind it.
        await copyStaging(client, rows);
        await lockTenants(client, tenants);
        return insertFromStaging(client);
      });
      ctx.metrics.copyRows.inc(rows.length); // committed: a failed transaction copied nothing
      if (!forwardToIndex) return [];
      const byId = new Map(stored.map((s) => [`${s.tenant_id}/${s.id}`, s.seq]));
      return batches
        .map((b) => ({
          ...b,
          events: b.events.flatMap((e) => {
            const seq = byId.get(`${b.tenant_id}/${e.id}`);
            // Object.assign: `{ ...e, sequence }` takes a slow path in V8 (3 µs against 1 µs).
            return seq === undefined ? [] : [Object.assign({}, e, { sequence: seq })];
          }),
        }))
        .filter((b) => b.events.length > 0);
    },
  };
}
