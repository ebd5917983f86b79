import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../infra/db/pool.js';
import { startTestService, type TestService } from '../test/harness.js';
import { type RowKey, withTenantScope } from './scoped.js';
import { createTenants, ingest, QUERY_DAEMONS, waitStored } from './test-support.js';

const DAY_MS = 86_400_000;
/** Events per instant: a bulk request whose events all carry one `occurred_at`. */
const PER_INSTANT = 50;

/**
 * `rowsAt` reads a search page (up to 100 keys) with one probe per key and longer lists with one
 * join; both must return exactly the keyed rows of the scope, in key order, from custom and from
 * cached generic plans, also when many rows share each key's instant (the case whose generic join
 * plan compared every row at those instants with every key).
 */
describe('rowsAt', () => {
  let svc: TestService;
  let pool: pg.Pool;
  let acmeKeys: (RowKey & { resource_id: string })[];
  let globexKeys: RowKey[];

  beforeAll(async () => {
    svc = await startTestService([...QUERY_DAEMONS]);
    await createTenants(svc, ['acme', 'globex']);
    const now = Date.now();
    const instants = (shift: number) =>
      [now - 20 * DAY_MS, now - DAY_MS, now - 60_000].map((ms) => new Date(ms + shift).toISOString());
    // globex: the same sequence numbers, 1 ms later, so its keys name no row of acme.
    const batch = (prefix: string, shift: number) =>
      instants(shift).flatMap((occurred_at, d) =>
        Array.from({ length: PER_INSTANT }, (_, i) => ({
          occurred_at,
          action: 'UPDATE',
          resource_type: 'order',
          resource_id: `${prefix}-${d}-${i}`,
        })),
      );
    await ingest(svc, 'acme', batch('a', 0));
    await ingest(svc, 'globex', batch('g', 1));
    await waitStored(svc, 'acme', 3 * PER_INSTANT);
    await waitStored(svc, 'globex', 3 * PER_INSTANT);
    const keysOf = async (tenantId: string) =>
      (
        await svc.ctx.pool.query<RowKey & { resource_id: string }>(
          `SELECT to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred_at,
                  seq::text AS seq, resource_id
             FROM events WHERE tenant_id = $1 AND resource_type = 'order' ORDER BY seq`,
          [tenantId],
        )
      ).rows;
    acmeKeys = await keysOf('acme');
    globexKeys = await keysOf('globex');
    // One connection, so a forced plan mode applies to every read below.
    pool = createPool(svc.config.DATABASE_URL!, 1, 'rows-at-test');
  });
  afterAll(async () => {
    await pool?.end();
    await svc?.stop();
  });

  /** Every `step`-th key, wrapping around: `count` keys in a scrambled order across the instants. */
  const scrambled = (count: number, step: number) =>
    Array.from({ length: count }, (_, i) => acmeKeys[(i * step) % acmeKeys.length]!);

  const read = (keys: RowKey[]) =>
    withTenantScope({ pool }, { tenantId: 'acme' }, async (tx) =>
      (await tx.rowsAt(keys)).map((r) => `${r.tenant_id}/${r.resource_id}/${r.sequence}`),
    );
  const expected = (keys: (RowKey & { resource_id: string })[]) =>
    keys.map((k) => `acme/${k.resource_id}/${k.seq}`);

  it.each([
    ['custom', 'auto'],
    ['generic', 'force_generic_plan'],
  ])('returns the keyed rows in key order, and nothing for other keys (%s plans)', async (_, mode) => {
    await pool.query(`SET plan_cache_mode = ${mode}`);
    try {
      expect(acmeKeys).toHaveLength(3 * PER_INSTANT);
      // Keys of another tenant (its sequence numbers, next to acme's instants), and a sequence
      // number nobody has.
      const foreign = globexKeys.slice(0, 5);
      const missing = { occurred_at: acmeKeys[0]!.occurred_at, seq: '999999' };
      for (let run = 0; run < 6; run++) {
        const page = scrambled(41, 7); // a page: one probe per key
        expect(await read([...page.slice(0, 20), ...foreign, missing, ...page.slice(20)])).toEqual(
          expected(page),
        );
        const chunk = scrambled(acmeKeys.length, 11); // an export chunk: one join
        expect(await read([missing, ...chunk, ...foreign])).toEqual(expected(chunk));
      }
      expect(await read(foreign)).toEqual([]);
    } finally {
      await pool.query('RESET plan_cache_mode');
    }
  });
});
