import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../infra/schema/event.js';
import { startTestService, type TestService } from '../test/harness.js';
import { type TenantTx, withTenantScope } from './scoped.js';
import { allPages, expectedOrder, QUERY_DAEMONS, seedWithDecoy } from './test-support.js';
import { boundsOf, narrowed, slicedKeys, timeWindows } from './time-windows.js';
import { buildWhere } from './where.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = Date.parse('2026-11-28T12:00:00.000Z');

describe('timeWindows', () => {
  it('cuts a newest-first match a day and eight days before now', () => {
    expect(timeWindows('time-desc', {}, NOW)).toEqual([NOW - DAY, NOW - 8 * DAY]);
  });

  it('anchors at `to` (or the cursor) when earlier than now, never later', () => {
    expect(timeWindows('time-desc', { to: NOW - 30 * DAY }, NOW)).toEqual([NOW - 31 * DAY, NOW - 38 * DAY]);
    expect(timeWindows('time-desc', { to: NOW + 30 * DAY }, NOW)).toEqual([NOW - DAY, NOW - 8 * DAY]);
  });

  it('drops edges at or below the lower bound: a last-24h page is one statement', () => {
    expect(timeWindows('time-desc', { from: NOW - DAY }, NOW)).toEqual([]);
    expect(timeWindows('time-desc', { from: NOW - 3 * DAY }, NOW)).toEqual([NOW - DAY]);
  });

  it('cuts an oldest-first match only from a known start', () => {
    expect(timeWindows('time-asc', {}, NOW)).toEqual([]);
    expect(timeWindows('time-asc', { from: NOW - 20 * DAY }, NOW)).toEqual([NOW - 19 * DAY, NOW - 12 * DAY]);
    expect(timeWindows('time-asc', { from: NOW - 20 * DAY, to: NOW - 15 * DAY }, NOW)).toEqual([
      NOW - 19 * DAY,
    ]);
  });

  it('never cuts a sequence (correlation) order', () => {
    expect(timeWindows('seq-asc', { from: NOW - 20 * DAY }, NOW)).toEqual([]);
    expect(timeWindows('seq-desc', {}, NOW)).toEqual([]);
  });

  it('keeps edges inside years 1–9999', () => {
    const y1 = Date.parse('0001-01-03T00:00:00Z');
    expect(timeWindows('time-desc', { to: y1 }, NOW)).toEqual([y1 - DAY]);
    const y9999 = Date.parse('9999-12-30T00:00:00Z');
    expect(timeWindows('time-asc', { from: y9999 }, NOW)).toEqual([y9999 + DAY]);
  });
});

describe('boundsOf', () => {
  it('reads from/to and the cursor as strict bounds in its direction', () => {
    const at = '2026-11-27T10:00:00.123456Z';
    const ms = Date.parse(at);
    expect(boundsOf({}, undefined)).toEqual({});
    expect(boundsOf({ from: '2026-11-01T00:00:00Z', to: '2026-11-28T00:00:00+01:00' }, undefined)).toEqual({
      from: Date.parse('2026-11-01T00:00:00Z'),
      to: Date.parse('2026-11-27T23:00:00Z'),
    });
    // The upper bound is past the cursor's microseconds, so its own instant stays inside.
    expect(boundsOf({}, { occurredAt: at, seq: '5', mode: 'time-desc' })).toEqual({ to: ms + 1 });
    expect(boundsOf({ to: '2026-11-01T00:00:00Z' }, { occurredAt: at, seq: '5', mode: 'time-desc' })).toEqual(
      {
        to: Date.parse('2026-11-01T00:00:00Z'),
      },
    );
    expect(boundsOf({}, { occurredAt: at, seq: '5', mode: 'time-asc' })).toEqual({ from: ms });
    expect(boundsOf({}, { occurredAt: at, seq: '5', mode: 'seq-asc' })).toEqual({});
  });
});

describe('narrowed', () => {
  it('appends the window as parameters and keeps the scope', () => {
    const where = buildWhere({ tenantId: 'acme' }, { action: 'LOGIN' });
    const w = narrowed(where, { from: NOW - DAY, to: NOW });
    expect(w.sql).toBe(`${where.sql} AND occurred_at >= $3::timestamptz AND occurred_at < $4::timestamptz`);
    expect(w.params).toEqual([
      'acme',
      'LOGIN',
      new Date(NOW - DAY).toISOString(),
      new Date(NOW).toISOString(),
    ]);
    expect(w.scope).toBe(where.scope);
    expect(narrowed(where, {})).toEqual(where);
  });
});

/**
 * Against PostgreSQL: events spread from an hour in the future to 40 days back (so across the
 * slices and their edges), with a decoy copy in another tenant. Every page of every query must
 * be exactly what one unsliced statement would return.
 */
describe('sliced matching', () => {
  let svc: TestService;
  const now = Date.now();
  /** Ages in hours (negative: in the future, as clock skew allows); two events share an instant. */
  const AGES = [-1, 0.5, 2, 2, 23.9, 24.1, 30, 70, 100, 190, 193, 200, 400, 700, 960];
  const fixture = AGES.map((age, i) => ({
    occurred_at: new Date(now - age * HOUR).toISOString(),
    action: i % 3 === 0 ? 'LOGIN' : 'UPDATE',
    resource_type: 'doc',
    resource_id: `d${i}`,
    user_id: i === 9 || i === 13 ? 'rare' : 'common',
  }));
  type Fixture = (typeof fixture)[number];
  let ids: string[] = [];

  beforeAll(async () => {
    svc = await startTestService([...QUERY_DAEMONS]);
    ids = await seedWithDecoy(svc, 'slices', 'slices-decoy', fixture);
  }, 120_000);
  afterAll(async () => svc?.stop());

  const expected = (keep: (e: Fixture) => boolean, sort: 'asc' | 'desc') =>
    expectedOrder(fixture, ids, keep, sort);
  const iso = (ageHours: number) => new Date(now - ageHours * HOUR).toISOString();
  const queries: [string, Record<string, string>, (e: Fixture) => boolean][] = [
    ['everything', {}, () => true],
    ['a common action', { action: 'UPDATE' }, (e) => e.action === 'UPDATE'],
    ['a rare user', { user_id: 'rare' }, (e) => e.user_id === 'rare'],
    ['from 3 days back', { from: iso(72) }, (e) => Date.parse(e.occurred_at) >= now - 72 * HOUR],
    ['up to 4 days back', { to: iso(96) }, (e) => Date.parse(e.occurred_at) < now - 96 * HOUR],
    [
      'between 20 and 1 days back',
      { from: iso(480), to: iso(24) },
      (e) => Date.parse(e.occurred_at) >= now - 480 * HOUR && Date.parse(e.occurred_at) < now - 24 * HOUR,
    ],
  ];

  for (const sort of ['desc', 'asc'] as const) {
    for (const [name, params, keep] of queries) {
      it(`pages ${name}, sort=${sort}, exactly as one statement would`, async () => {
        const token = await svc.token('slices', 'auditor');
        const want = expected(keep, sort);
        expect(want.length).toBeGreaterThan(0);
        for (const limit of [1, 2, 3, 50]) {
          // resource_type keeps out the self-audit events the reads themselves add to the tenant.
          const q = new URLSearchParams({
            ...params,
            resource_type: 'doc',
            sort,
            limit: String(limit),
          }).toString();
          const got = (await allPages(svc, token, q)).map((r: StoredEvent) => r.id);
          expect(got, `limit ${limit}`).toEqual(want);
        }
      });
    }
  }

  /** A TenantTx whose `keys` records each statement's time bounds before running it for real. */
  const recording = (tx: TenantTx, calls: { sql: string; limit: number }[]): TenantTx => ({
    ...tx,
    keys: (where, mode, limit) => {
      const at = where.sql.indexOf(' AND occurred_at');
      calls.push({ sql: at < 0 ? '' : where.sql.slice(at + 5), limit });
      return tx.keys(where, mode, limit);
    },
  });

  it('asks the newest day first and widens only while the page is not full', async () => {
    const scope = { tenantId: 'slices' };
    const run = (filters: { user_id?: string; resource_type?: string }, limit: number) =>
      withTenantScope(svc.ctx, scope, async (tx) => {
        const calls: { sql: string; limit: number }[] = [];
        const where = buildWhere(scope, { ...filters, resource_type: 'doc' });
        const edges = timeWindows('time-desc', {}, Date.now());
        const sliced = await slicedKeys(recording(tx, calls), where, 'time-desc', limit, edges);
        const whole = await tx.keys(where, 'time-desc', limit);
        return { calls, sliced, whole };
      });

    // Five events in the last day: a page of 3 is one statement over that day.
    let r = await run({}, 3);
    expect(r.sliced).toEqual(r.whole);
    expect(r.calls.map((c) => c.sql)).toEqual(['occurred_at >= $3::timestamptz']);

    // A page of 8: the day (5), then the next week (5 more), full after two statements.
    r = await run({}, 8);
    expect(r.sliced).toEqual(r.whole);
    expect(r.calls.map((c) => c.limit)).toEqual([8, 3]);
    expect(r.calls[1]?.sql).toBe('occurred_at >= $3::timestamptz AND occurred_at < $4::timestamptz');

    // A page of 20: the day (5), the week (5), then the rest (open at the far end).
    r = await run({}, 20);
    expect(r.sliced).toEqual(r.whole);
    expect(r.sliced).toHaveLength(fixture.length);
    expect(r.calls).toEqual([
      { sql: 'occurred_at >= $3::timestamptz', limit: 20 },
      { sql: 'occurred_at >= $3::timestamptz AND occurred_at < $4::timestamptz', limit: 15 },
      { sql: 'occurred_at < $3::timestamptz', limit: 10 },
    ]);

    // A page of 100: the day holds too few to expect the week to fill it, so the rest is next.
    r = await run({}, 100);
    expect(r.sliced).toEqual(r.whole);
    expect(r.calls.map((c) => c.sql)).toEqual([
      'occurred_at >= $3::timestamptz',
      'occurred_at < $3::timestamptz',
    ]);

    // Nothing from the rare user in the last day: the week is skipped, the rest asked at once.
    r = await run({ user_id: 'rare' }, 50);
    expect(r.sliced).toEqual(r.whole);
    expect(r.sliced).toHaveLength(2);
    expect(r.calls.map((c) => c.sql)).toEqual([
      'occurred_at >= $4::timestamptz',
      'occurred_at < $4::timestamptz',
    ]);
  });
});
