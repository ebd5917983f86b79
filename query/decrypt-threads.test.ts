import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { seal, sealAad } from '../infra/crypto/aead.js';
import type { EventRow, SealedOpener } from './decode.js';
import { DecryptThreads } from './decrypt-threads.js';
import { DECRYPT_GROUP_ROWS, threadedFeed } from './keyed-feed.js';

/** Two tenants' data keys, by key id. */
const KEYS = new Map([
  [1, randomBytes(32)],
  [2, randomBytes(32)],
]);

/** A row of `tenant` whose sealed value (unless `plain`) is `{"n":i}` sealed under key `keyId`. */
function row(i: number, tenant: string, keyId: number, plain = false): EventRow {
  const id = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
  const sealed = plain
    ? null
    : seal(KEYS.get(keyId)!, Buffer.from(`{"n":${i},"é":"ü"}`), sealAad(tenant, id));
  return { tenant_id: tenant, id, key_id: keyId, sealed } as unknown as EventRow;
}

/** An opener that knows `KEYS` once `load` has been asked for them (and records the loads). */
function opener(): SealedOpener & { loads: number } {
  const loaded = new Set<number>();
  const result = {
    loads: 0,
    ready: (r: EventRow) => !r.sealed || loaded.has(r.key_id),
    async load(rows: EventRow[]) {
      result.loads++;
      for (const r of rows) loaded.add(r.key_id);
    },
    open: () => {
      throw new Error('a threaded feed never opens on the event loop');
    },
    key: (r: EventRow) => (loaded.has(r.key_id) ? KEYS.get(r.key_id) : undefined),
  };
  return result;
}

const threads = new DecryptThreads(2);
afterAll(() => threads.close());

describe('threadedFeed on DecryptThreads', () => {
  it('emits every row in push order with its plaintext, across groups, keys, tenants and threads', async () => {
    const rows = Array.from({ length: 1234 }, (_, i) =>
      i % 7 === 3 ? row(i, 'acme', 1, true) : i % 2 ? row(i, 'acme', 1) : row(i, 'globex', 2),
    );
    const emitted: [string, string | undefined][] = [];
    const feed = threadedFeed(threads, opener(), (r, sealed) => emitted.push([r.id, sealed]));
    for (const r of rows) feed.push(r);
    await feed.flush();
    expect(emitted).toEqual(rows.map((r, i) => [r.id, r.sealed ? `{"n":${i},"é":"ü"}` : undefined]));
  });

  it('fails the flush when a value does not authenticate, and emits nothing from that group on', async () => {
    const rows = Array.from({ length: 3 * DECRYPT_GROUP_ROWS }, (_, i) => row(i, 'acme', 1));
    // A row of the second group claims another tenant: its AAD no longer matches.
    const bad = DECRYPT_GROUP_ROWS + 10;
    rows[bad] = { ...rows[bad]!, tenant_id: 'globex' };
    const emitted: string[] = [];
    const feed = threadedFeed(threads, opener(), (r) => emitted.push(r.id));
    for (const r of rows) feed.push(r);
    await expect(feed.flush()).rejects.toThrow(/authenticate/);
    expect(emitted).toEqual(rows.slice(0, DECRYPT_GROUP_ROWS).map((r) => r.id));
  });

  it('fails a row whose key cannot be loaded instead of emitting it unopened', async () => {
    const keys = opener();
    keys.key = () => undefined;
    const feed = threadedFeed(threads, keys, () => {});
    feed.push(row(1, 'acme', 1));
    await expect(feed.flush()).rejects.toThrow('no data key for acme/1');
  });

  it('fails requests once closed, and pending ones when their thread ends', async () => {
    const pool = new DecryptThreads(1);
    const r = row(1, 'acme', 1);
    const item = { sealed: r.sealed!, key: KEYS.get(1)!, tenantId: 'acme', eventId: r.id };
    await expect(pool.open([item])).resolves.toEqual(['{"n":1,"é":"ü"}']);
    // Long enough (tens of ms) that the thread is still working when it is ended.
    const pending = pool.open(Array.from({ length: 20_000 }, () => item));
    await pool.close();
    await expect(pending).rejects.toThrow(/exited/);
    await expect(pool.open([item])).rejects.toThrow('decrypt threads closed');
  });
});
