import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Context } from '../../infra/context.js';
import { metaToken } from '../../infra/crypto/tenant-keys.js';
import type { Batch } from '../../infra/schema/batch.js';
import type { StagedEvent } from '../../infra/schema/event.js';
import { encryptStage } from './handler.js';

const keys = { acme: randomBytes(32), globex: randomBytes(32) };
const ctx = {
  keyring: {
    activeKey: async (tenant: keyof typeof keys) => ({ keyId: 1, key: keys[tenant] }),
    indexKey: async (tenant: keyof typeof keys) => keys[tenant],
  },
} as unknown as Context;

function batch(tenant: keyof typeof keys, plans: string[]): Batch<StagedEvent> {
  return {
    v: 1,
    tenant_id: tenant,
    events: plans.map(
      (plan, i) =>
        ({
          id: `0190b6c0-0000-7000-8000-00000000000${i}`,
          tenant_id: tenant,
          occurred_at: '2026-11-28T10:00:00.000Z',
          received_at: '2026-11-28T10:00:00.000Z',
          action: 'LOGIN',
          resource_type: 'session',
          severity: 'INFO',
          metadata: { plan, region: 'eu' },
        }) as StagedEvent,
    ),
  };
}

describe('encrypt stage blind-index tokens', () => {
  it('gives every event the HMAC of each metadata pair under its own tenant key, repeated pairs included', async () => {
    const [acme, globex] = await encryptStage.handle(
      [batch('acme', ['gold', 'free', 'gold']), batch('globex', ['gold', 'gold'])],
      ctx,
    );
    const expected = (tenant: keyof typeof keys, plan: string) => [
      metaToken(keys[tenant], 'plan', plan),
      metaToken(keys[tenant], 'region', 'eu'),
    ];
    expect(acme!.events.map((e) => e.meta_idx)).toEqual([
      expected('acme', 'gold'),
      expected('acme', 'free'),
      expected('acme', 'gold'),
    ]);
    // Same pairs in another tenant's batch of the same call: that tenant's tokens, never the
    // first tenant's remembered ones.
    expect(globex!.events.map((e) => e.meta_idx)).toEqual([
      expected('globex', 'gold'),
      expected('globex', 'gold'),
    ]);
    expect(globex!.events[0]!.meta_idx[0]).not.toBe(acme!.events[0]!.meta_idx[0]);
  });
});
