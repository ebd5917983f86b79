import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, http, startTestService, type TestService } from '../test/harness.js';
import type { StatsCacheUse } from './rollup-tally.js';
import { computeStats } from './stats.js';
import { StatsCache, settledBoundary, splitSettled } from './stats-cache.js';
import { type Ev, expected, SEVERITIES } from './stats-oracle.js';
import { floorTo, type Segment } from './stats-segments.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const at = (iso: string) => Date.parse(iso);

describe('splitSettled', () => {
  const B = at('2026-03-10T10:00:00Z');
  it('keeps segments ending by the boundary, splits hourly ones across it, leaves others fresh', () => {
    const parts: Segment[] = [
      { grain: 'weekly', from: at('2026-02-09T00:00:00Z'), to: at('2026-03-09T00:00:00Z'), sign: 1 },
      { grain: 'hourly', from: at('2026-03-09T00:00:00Z'), to: at('2026-03-09T03:00:00Z'), sign: -1 },
      { grain: 'hourly', from: at('2026-03-10T00:00:00Z'), to: at('2026-03-10T13:00:00Z'), sign: 1 },
      { grain: 'daily', from: at('2026-03-10T00:00:00Z'), to: at('2026-03-11T00:00:00Z'), sign: 1 },
    ];
    const { settled, fresh } = splitSettled(parts, B);
    expect(settled).toEqual([
      parts[0],
      parts[1],
      { grain: 'hourly', from: at('2026-03-10T00:00:00Z'), to: B, sign: 1 },
    ]);
    expect(fresh).toEqual([{ grain: 'hourly', from: B, to: at('2026-03-10T13:00:00Z'), sign: 1 }, parts[3]]);
  });

  it('puts the boundary two whole hours before the current hour', () => {
    expect(settledBoundary(at('2026-03-10T12:59:59Z'))).toBe(B);
    expect(settledBoundary(at('2026-03-10T12:00:00Z'))).toBe(B);
  });
});

describe('StatsCache', () => {
  const seg = (day: number): Segment => ({ grain: 'daily', from: day * DAY, to: (day + 1) * DAY, sign: 1 });
  const counts = (n: number) => new Map(Array.from({ length: n }, (_, i) => [`u-${i}`, i + 1]));

  it('keeps entries per tenant and segment, at one revision per tenant', () => {
    const cache = new StatsCache(1000);
    cache.put('acme', '3', 'users', seg(1), counts(2));
    cache.put('globex', '7', 'users', seg(1), counts(3));
    expect(cache.get('acme', 'users', seg(1))).toEqual(counts(2));
    expect(cache.get('globex', 'users', seg(1))).toEqual(counts(3));
    expect(cache.get('acme', 'users', seg(2))).toBeUndefined();
    expect(cache.get('acme', 'values', seg(1))).toBeUndefined(); // families are apart
    expect(cache.revision('acme')).toBe('3');
    expect(cache.size).toBe(5);
    // A put at another revision drops the tenant's older entries and nobody else's.
    cache.put('acme', '4', 'users', seg(2), counts(1));
    expect(cache.get('acme', 'users', seg(1))).toBeUndefined();
    expect(cache.revision('acme')).toBe('4');
    expect(cache.get('globex', 'users', seg(1))).toEqual(counts(3));
    expect(cache.size).toBe(4);
    cache.drop('globex');
    expect(cache.revision('globex')).toBeUndefined();
    expect(cache.size).toBe(1);
  });

  it('stays within its bound, least recently used out, and never caches an oversized segment', () => {
    const cache = new StatsCache(80);
    cache.put('a', '1', 'users', seg(1), counts(20));
    cache.put('b', '1', 'users', seg(1), counts(20));
    cache.put('c', '1', 'users', seg(1), counts(20));
    expect(cache.get('a', 'users', seg(1))).toBeDefined(); // now the most recently used
    cache.put('d', '1', 'users', seg(1), counts(20));
    expect(cache.size).toBe(80);
    cache.put('e', '1', 'users', seg(1), counts(20));
    expect(cache.size).toBe(80);
    expect(cache.get('b', 'users', seg(1))).toBeUndefined();
    expect(cache.revision('b')).toBeUndefined();
    for (const t of ['a', 'c', 'd', 'e']) expect(cache.get(t, 'users', seg(1))).toBeDefined();
    cache.put('f', '1', 'users', seg(1), counts(21)); // more than a quarter of the bound
    expect(cache.get('f', 'users', seg(1))).toBeUndefined();
    expect(cache.size).toBe(80);
  });
});

describe('tenant-wide stats with the cache (late events bump the rollup revision)', () => {
  let svc: TestService;
  const nowH = () => floorTo(Date.now(), HOUR);
  const sent: Record<string, Ev[]> = { cachet: [], cacheo: [] };
  const results: string[] = [];
  const cache = new StatsCache(100_000);
  const use: StatsCacheUse = { cache, count: (r) => results.push(r) };
  let fromMs = 0;
  let toMs = 0;

  const event = (user: string | undefined, t: number, i: number): Ev => ({
    ...(user === undefined ? {} : { user_id: user }),
    action: ['CREATE', 'UPDATE', 'DELETE'][i % 3]!,
    resource_type: ['order', 'invoice'][i % 2]!,
    severity: SEVERITIES[i % 4]!,
    occurred_at: new Date(t).toISOString(),
  });
  const post = async (tenant: string, events: Ev[]) => {
    const writer = await svc.token(tenant, 'admin', 'app');
    const posted = await http(svc.url, 'POST', '/api/v1/logs/bulk', { token: writer, body: { events } });
    expect(posted.status).toBe(202);
    sent[tenant]!.push(...events);
  };
  const stats = (tenant: string, withCache: boolean) =>
    computeStats(
      svc.ctx,
      { tenantId: tenant },
      { from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), interval: 'day' },
      withCache ? { cache: use } : {},
    );
  const oracle = (tenant: string) => expected(sent[tenant]!, tenant, fromMs, toMs, 'day', 10);
  const revision = async (tenant: string) =>
    (await svc.ctx.pool.query(`SELECT rev::int FROM rollup_revisions WHERE tenant_id = $1`, [tenant])).rows[0]
      ?.rev ?? 0;
  const settle = (tenant: string) =>
    eventually(async () => ((await stats(tenant, false)).total === sent[tenant]!.length ? true : undefined));

  beforeAll(async () => {
    // The cache's keys move with the hour: start well inside one, so `hit` is what the test sees.
    const toNextHour = nowH() + HOUR - Date.now();
    if (toNextHour < 90_000) await new Promise((r) => setTimeout(r, toNextHour + 1000));
    svc = await startTestService(['ingest', 'mask', 'encrypt', 'persist', 'query']);
    for (const id of ['cachet', 'cacheo']) await svc.createTenant(id);
    fromMs = nowH() - 30 * DAY;
    toMs = nowH() + HOUR;
    // 20 days of settled events (every 2 h, from 3 h ago back), skewed users, some without one;
    // and events of this minute, which are not settled.
    const old = Array.from({ length: 240 }, (_, i) =>
      event(i % 9 === 0 ? undefined : `c-${(i * i) % 7}`, nowH() - 3 * HOUR - i * 2 * HOUR - i * 1000, i),
    );
    const recent = Array.from({ length: 30 }, (_, i) => event(`c-${i % 3}`, Date.now() - 60_000 + i, i));
    await post('cachet', [...old, ...recent]);
    await post(
      'cacheo',
      Array.from({ length: 50 }, (_, i) => event(`o-${i % 4}`, nowH() - 30 * HOUR - i * HOUR, i)),
    );
    await settle('cachet');
    await settle('cacheo');
  }, 120_000);
  afterAll(async () => svc?.stop());

  it('caches settled sums and answers the same as without it', async () => {
    expect(await revision('cachet')).toBeGreaterThan(0); // its old events were late
    const first = await stats('cachet', true);
    expect(first).toEqual(oracle('cachet'));
    expect(results).toEqual(['miss']);
    expect(cache.size).toBeGreaterThan(0);
    const second = await stats('cachet', true);
    expect(second).toEqual(first);
    expect(results).toEqual(['miss', 'hit']);
    expect(await stats('cachet', false)).toEqual(first);
  });

  it('caches an hourly series the same way', async () => {
    const hourly = () =>
      computeStats(
        svc.ctx,
        { tenantId: 'cachet' },
        {
          from: new Date(toMs - 48 * HOUR).toISOString(),
          to: new Date(toMs).toISOString(),
          interval: 'hour',
        },
        { cache: use },
      );
    const want = expected(sent.cachet!, 'cachet', toMs - 48 * HOUR, toMs, 'hour', 10);
    expect(await hourly()).toEqual(want);
    expect(results.at(-1)).toBe('miss');
    expect(await hourly()).toEqual(want);
    expect(results.at(-1)).toBe('hit');
  });

  it('never serves one tenant’s cached sums to another', async () => {
    const theirs = await stats('cacheo', true);
    expect(theirs).toEqual(oracle('cacheo'));
    expect(theirs.top_users.every((u) => u.user_id.startsWith('o-'))).toBe(true);
    expect(results.at(-1)).toBe('miss');
    expect(await stats('cachet', true)).toEqual(oracle('cachet'));
    expect(results.at(-1)).toBe('hit');
  });

  it('counts new events of this hour without touching the revision or the cached sums', async () => {
    const before = await revision('cachet');
    await post(
      'cachet',
      Array.from({ length: 150 }, (_, i) => event('c-fresh', Date.now() - 30_000 + i, i)),
    );
    await settle('cachet');
    expect(await revision('cachet')).toBe(before);
    const now = await stats('cachet', true);
    expect(now).toEqual(oracle('cachet'));
    expect(now.top_users[0]).toEqual({ user_id: 'c-fresh', count: 150 });
    expect(results.at(-1)).toBe('hit');
  });

  it('reads everything again once a late event moves the revision', async () => {
    const before = await revision('cachet');
    await stats('cachet', true); // the cache holds sums of the current revision
    // 200 events five days ago: their day and week are cached, and they make a new top user.
    await post(
      'cachet',
      Array.from({ length: 200 }, (_, i) => event('c-late', nowH() - 5 * DAY + i * 1000, i)),
    );
    await settle('cachet');
    expect(await revision('cachet')).toBeGreaterThan(before);
    const now = await stats('cachet', true);
    expect(now).toEqual(oracle('cachet'));
    expect(now.top_users[0]).toEqual({ user_id: 'c-late', count: 200 });
    expect(results.at(-1)).toBe('stale');
    expect(await stats('cachet', true)).toEqual(now);
    expect(results.at(-1)).toBe('hit');
  });
});
