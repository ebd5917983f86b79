import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { KeyWrapper } from './key-wrapper.js';

export interface DataKey {
  keyId: number;
  key: Buffer;
}

/**
 * Per-tenant data keys (DEKs), stored wrapped in `tenant_keys` and cached unwrapped in memory.
 * The active key is the highest key_id; older ones stay readable after a rotation.
 */
export class TenantKeyring {
  private readonly cache = new Map<string, DataKey>();
  private readonly active = new Map<string, Promise<DataKey>>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly wrapper: KeyWrapper,
  ) {}

  /** The key new events are sealed with; created on the tenant's first event. */
  activeKey(tenantId: string): Promise<DataKey> {
    let pending = this.active.get(tenantId);
    if (!pending) {
      pending = this.loadOrCreateActive(tenantId);
      pending.catch(() => this.active.delete(tenantId));
      this.active.set(tenantId, pending);
    }
    return pending;
  }

  /** A specific key, for reading rows sealed before a rotation. */
  async key(tenantId: string, keyId: number): Promise<DataKey> {
    const cached = this.cache.get(`${tenantId}/${keyId}`);
    if (cached) return cached;
    const { rows } = await this.pool.query<{ wrapped: Buffer }>(
      'SELECT wrapped FROM tenant_keys WHERE tenant_id = $1 AND key_id = $2',
      [tenantId, keyId],
    );
    if (!rows[0]) throw new Error(`no data key ${keyId} for tenant`);
    return this.remember(
      tenantId,
      keyId,
      await this.wrapper.unwrap(rows[0].wrapped, context(tenantId, keyId)),
    );
  }

  /**
   * HMAC key for the metadata blind index. Derived from the tenant's first key so tokens stay
   * comparable across rotations: equal metadata values give equal tokens within one tenant only.
   */
  async indexKey(tenantId: string): Promise<Buffer> {
    await this.activeKey(tenantId);
    const first = await this.key(tenantId, 1);
    return Buffer.from(hkdfSync('sha256', first.key, Buffer.alloc(0), 'auditlog/meta-index', 32));
  }

  private remember(tenantId: string, keyId: number, key: Buffer): DataKey {
    const dk = { keyId, key };
    this.cache.set(`${tenantId}/${keyId}`, dk);
    return dk;
  }

  private async loadOrCreateActive(tenantId: string): Promise<DataKey> {
    for (let i = 0; i < 3; i++) {
      const { rows } = await this.pool.query<{ key_id: number; wrapped: Buffer }>(
        'SELECT key_id, wrapped FROM tenant_keys WHERE tenant_id = $1 ORDER BY key_id DESC LIMIT 1',
        [tenantId],
      );
      const row = rows[0];
      if (row) {
        const key = await this.wrapper.unwrap(row.wrapped, context(tenantId, row.key_id));
        return this.remember(tenantId, row.key_id, key);
      }
      const key = randomBytes(32);
      const wrapped = await this.wrapper.wrap(key, context(tenantId, 1));
      // Racing creators: one insert wins and every process reads the winner's key on the next pass.
      await this.pool.query(
        `INSERT INTO tenant_keys (tenant_id, key_id, wrapped, wrapped_by) VALUES ($1, 1, $2, $3)
         ON CONFLICT DO NOTHING`,
        [tenantId, wrapped, this.wrapper.id],
      );
    }
    throw new Error('could not create the tenant data key');
  }
}

function context(tenantId: string, keyId: number): Record<string, string> {
  return { purpose: 'tenant-data-key', tenant: tenantId, key_id: String(keyId) };
}

/** Blind-index token for one metadata `key=value` pair (issue: exact metadata filters on sealed data). */
export function metaToken(indexKey: Buffer, key: string, value: string): string {
  return createHmac('sha256', indexKey).update(`${key}\u0000${value}`).digest('base64url').slice(0, 22);
}
