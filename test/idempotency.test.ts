import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, http, startTestService, type TestService } from './harness.js';

/**
 * Re-posting an event with the same client `id` stores it once, whether the copies arrive in
 * separate requests, concurrently, inside one bulk, or long after the first was stored; and the
 * tenant's sequence stays gapless (1..n with no number skipped or reused).
 */

let svc: TestService;
let db: pg.Client;
let token: string;

const ev = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  action: 'CREATE',
  resource_type: 'order',
  ...extra,
});

async function post(path: string, body: unknown) {
  const res = await http(svc.url, 'POST', path, { token, body });
  expect(res.status, res.text).toBe(202);
  return res.body as { ids: string[]; accepted: number };
}

/** Rows per id in both tables, straight from the database. */
async function copies(ids: string[]): Promise<Record<string, [number, number]>> {
  const { rows } = await db.query(
    `SELECT i.id::text AS id,
            (SELECT count(*)::int FROM events e WHERE e.tenant_id = 'acme' AND e.id = i.id) AS events,
            (SELECT count(*)::int FROM event_ids x WHERE x.tenant_id = 'acme' AND x.id = i.id) AS event_ids
       FROM unnest($1::uuid[]) AS i(id)`,
    [ids],
  );
  return Object.fromEntries(rows.map((r) => [r.id, [r.events, r.event_ids]]));
}

/** Waits until the queue is empty, so everything posted so far has been persisted or dead-lettered. */
async function drained(): Promise<void> {
  await eventually(async () => {
    const { rows } = await db.query('SELECT count(*)::int AS n FROM queue_messages');
    return rows[0].n === 0 ? true : undefined;
  });
}

async function expectGapless(): Promise<void> {
  const { rows } = await db.query(`SELECT seq::int AS seq FROM events WHERE tenant_id = 'acme' ORDER BY seq`);
  expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: rows.length }, (_, i) => i + 1));
  const { rows: t } = await db.query(`SELECT last_seq::int AS n FROM tenants WHERE id = 'acme'`);
  expect(t[0].n).toBe(rows.length);
  const { rows: d } = await db.query('SELECT count(*)::int AS n FROM queue_dead_letters');
  expect(d[0].n).toBe(0);
}

beforeAll(async () => {
  svc = await startTestService(['ingest', 'mask', 'encrypt', 'persist', 'index']);
  db = new pg.Client({ connectionString: svc.config.DATABASE_URL });
  await db.connect();
  await svc.createTenant('acme', 'Acme');
  token = await svc.token('acme', 'admin', 'writer');
});
afterAll(async () => {
  await db?.end();
  await svc?.stop();
});

describe('idempotent resubmission', () => {
  it('stores the same request posted twice once; the first copy wins', async () => {
    const id = randomUUID();
    expect(await post('/api/v1/logs', ev(id, { message: 'first' }))).toEqual({ ids: [id], accepted: 1 });
    expect(await post('/api/v1/logs', ev(id, { message: 'second' }))).toEqual({ ids: [id], accepted: 1 });
    await drained();
    expect(await copies([id])).toEqual({ [id]: [1, 1] });
    const { rows } = await db.query('SELECT message FROM events WHERE id = $1', [id]);
    expect(rows).toEqual([{ message: 'first' }]);
    await expectGapless();
  });

  it('stores an id repeated within one bulk once', async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    const res = await post('/api/v1/logs/bulk', {
      events: [
        ev(a, { message: 'a1' }),
        ev(b),
        ev(a, { message: 'a2' }),
        ev(a.toUpperCase(), { message: 'a3' }),
      ],
    });
    expect(res.ids).toEqual([a, b, a, a]);
    await drained();
    expect(await copies([a, b])).toEqual({ [a]: [1, 1], [b]: [1, 1] });
    const { rows } = await db.query('SELECT message FROM events WHERE id = $1', [a]);
    expect(rows).toEqual([{ message: 'a1' }]);
    await expectGapless();
  });

  it('stores once when the same bulk is posted many times concurrently', async () => {
    const events = Array.from({ length: 50 }, () => ev(randomUUID()));
    const ids = events.map((e) => e.id);
    const results = await Promise.all(Array.from({ length: 8 }, () => post('/api/v1/logs/bulk', { events })));
    for (const r of results) expect(r.ids).toEqual(ids);
    await drained();
    const got = await copies(ids);
    expect(Object.values(got).every(([e, i]) => e === 1 && i === 1)).toBe(true);
    expect(Object.keys(got)).toHaveLength(50);
    await expectGapless();
  });

  it('stores once when a copy arrives after the original was persisted', async () => {
    const ids = Array.from({ length: 20 }, () => randomUUID());
    await post('/api/v1/logs/bulk', { events: ids.map((id) => ev(id)) });
    await drained();
    const { rows: before } = await db.query(`SELECT last_seq::int AS n FROM tenants WHERE id = 'acme'`);
    // The same events, reordered and mixed with one new one, as a retrying client might send.
    const fresh = randomUUID();
    await post('/api/v1/logs/bulk', {
      events: [...ids]
        .reverse()
        .map((id) => ev(id))
        .concat(ev(fresh)),
    });
    for (const id of ids.slice(0, 5)) await post('/api/v1/logs', ev(id));
    await drained();
    const got = await copies([...ids, fresh]);
    expect(Object.values(got).every(([e, i]) => e === 1 && i === 1)).toBe(true);
    // Only the new event took a sequence number.
    const { rows: after } = await db.query(`SELECT last_seq::int AS n FROM tenants WHERE id = 'acme'`);
    expect(after[0].n).toBe(before[0].n + 1);
    const { rows } = await db.query(`SELECT seq::int AS seq FROM events WHERE id = $1`, [fresh]);
    expect(rows).toEqual([{ seq: before[0].n + 1 }]);
    await expectGapless();
  });

  it('assigns sequence numbers in submission order, with no gaps, across many requests', async () => {
    const { rows: start } = await db.query(`SELECT last_seq::int AS n FROM tenants WHERE id = 'acme'`);
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const batch = Array.from({ length: 5 }, () => ev(randomUUID()));
      ids.push(...batch.map((e) => e.id));
      // Every other request repeats the previous request's events.
      const repeat = i % 2 === 1 ? ids.slice(-10, -5).map((id) => ev(id)) : [];
      await post('/api/v1/logs/bulk', { events: [...repeat, ...batch] });
    }
    await drained();
    const { rows } = await db.query(
      `SELECT id::text AS id, seq::int AS seq FROM events WHERE tenant_id = 'acme' AND seq > $1 ORDER BY seq`,
      [start[0].n],
    );
    expect(rows.map((r) => r.id)).toEqual(ids);
    expect(rows.map((r) => r.seq)).toEqual(ids.map((_, i) => start[0].n + i + 1));
    await expectGapless();
  });
});
