import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Batch, SealedEvent } from '../infra/schema/batch.js';
import type { StagedEvent } from '../infra/schema/event.js';
import { encryptStage } from '../stages/encrypt/handler.js';
import { maskStage } from '../stages/mask/handler.js';
import { persistStage } from '../stages/persist/handler.js';
import { eventually, http, startTestService, type TestService } from '../test/harness.js';
import { type Ev, expected, SEVERITIES } from './stats-oracle.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const BASE = Date.parse('2026-01-10T00:00:00Z');

/** 120 events over three UTC days, every hour of them used at least once, plus two boundary cases. */
function acmeEvents(): Ev[] {
  const events: Ev[] = Array.from({ length: 120 }, (_, i) => {
    const r = i % 10;
    return {
      ...(r === 0 ? { user_id: 'u-1' } : r <= 4 ? { user_id: 'u-2' } : r <= 7 ? { user_id: 'u-3' } : {}),
      action: ['CREATE', 'UPDATE', 'DELETE', 'LOGIN', 'VIEW'][i % 5]!,
      resource_type: ['order', 'invoice', 'session'][i % 3]!,
      severity: SEVERITIES[(i * 3 + Math.floor(i / 4)) % 4]!,
      occurred_at: new Date(BASE + ((i * 37) % 72) * HOUR + ((i * 11) % 60) * 60_000 + i).toISOString(),
    };
  });
  // Exactly on an hour boundary (belongs to the 02:00 bucket), and one given with an offset.
  events.push({
    user_id: 'u-3',
    action: 'UPDATE',
    resource_type: 'order',
    severity: 'INFO',
    occurred_at: '2026-01-11T02:00:00Z',
  });
  events.push({
    user_id: 'u-1',
    action: 'LOGIN',
    resource_type: 'session',
    severity: 'ERROR',
    occurred_at: '2026-01-11T01:30:00-01:00',
  });
  return events;
}

/** Another tenant's events at the same times, with values acme never uses. */
function globexEvents(): Ev[] {
  return Array.from({ length: 40 }, (_, i) => ({
    user_id: `g-${i % 2}`,
    action: i % 2 ? 'LOGOUT' : 'EXPORT',
    resource_type: 'payment',
    severity: 'CRITICAL',
    occurred_at: new Date(BASE + ((i * 5) % 72) * HOUR + 17 * 60_000).toISOString(),
  }));
}

/**
 * 600 events over 24 days from Sunday 2026-02-01 05:00 UTC (so ranges cross ISO weeks, whole days
 * and partial ones), users skewed so the top list is not a tie.
 */
const LONG_BASE = Date.parse('2026-02-01T05:00:00Z');
function longEvents(): Ev[] {
  return Array.from({ length: 600 }, (_, i) => ({
    ...(i % 7 === 0 ? {} : { user_id: `l-${((i * i) % 13) % (1 + (i % 5))}` }),
    action: ['CREATE', 'UPDATE', 'DELETE', 'LOGIN'][(i * 7) % 4]!,
    resource_type: ['order', 'invoice', 'session', 'report'][(i * 5) % 4]!,
    severity: SEVERITIES[(i * 11) % 4]!,
    occurred_at: new Date(LONG_BASE + ((i * 9973) % (24 * 24 * 60)) * 60_000 + (i % 1000)).toISOString(),
  }));
}

describe('GET /api/v1/logs/stats (rollups maintained by persist)', () => {
  let svc: TestService;
  let auditor: string;
  const acme = acmeEvents();
  const globex = globexEvents();
  const long = longEvents();

  const stats = (qs: string, token: string) => http(svc.url, 'GET', `/api/v1/logs/stats?${qs}`, { token });

  beforeAll(async () => {
    svc = await startTestService(['ingest', 'mask', 'encrypt', 'persist', 'query'], {
      STATS_USER_MAX_EVENTS: '20',
    });
    for (const id of ['acme', 'globex', 'initech', 'longrange']) await svc.createTenant(id);
    for (const [tenant, events] of [
      ['acme', acme],
      ['globex', globex],
      ['longrange', long],
    ] as const) {
      const writer = await svc.token(tenant, 'admin', 'app');
      const res = await http(svc.url, 'POST', '/api/v1/logs/bulk', { token: writer, body: { events } });
      expect(res.status).toBe(202);
    }
    auditor = await svc.token('acme', 'auditor', 'aud');
    const all = 'from=2026-01-10T00:00:00Z&to=2026-01-13T00:00:00Z&interval=day';
    await eventually(async () =>
      (await stats(all, auditor)).body?.total === acme.length ? true : undefined,
    );
    const theirs = await svc.token('globex', 'auditor', 'aud');
    await eventually(async () =>
      (await stats(all, theirs)).body?.total === globex.length ? true : undefined,
    );
    const longAuditor = await svc.token('longrange', 'auditor', 'aud');
    const longAll = 'from=2026-01-31T00:00:00Z&to=2026-02-27T00:00:00Z&interval=day';
    await eventually(async () =>
      (await stats(longAll, longAuditor)).body?.total === long.length ? true : undefined,
    );
  });
  afterAll(async () => svc?.stop());

  it('counts whole days exactly (daily rollups)', async () => {
    const res = await stats('from=2026-01-10T00:00:00Z&to=2026-01-13T00:00:00Z&interval=day', auditor);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(expected(acme, 'acme', BASE, BASE + 3 * DAY, 'day', 10));
    expect(res.body.total).toBe(122);
    expect(res.body.series.map((b: any) => b.count)).toEqual([
      acme.filter((e) => e.occurred_at.startsWith('2026-01-10')).length,
      acme.filter(
        (e) => Date.parse(e.occurred_at) >= BASE + DAY && Date.parse(e.occurred_at) < BASE + 2 * DAY,
      ).length,
      acme.filter((e) => e.occurred_at.startsWith('2026-01-12')).length,
    ]);
  });

  it('counts edge hours from hourly rollups and a whole day from daily ones, by hour', async () => {
    const res = await stats('from=2026-01-10T21:00:00Z&to=2026-01-12T02:00:00Z&interval=hour&top=3', auditor);
    expect(res.status).toBe(200);
    const want = expected(acme, 'acme', BASE + 21 * HOUR, BASE + 2 * DAY + 2 * HOUR, 'hour', 3);
    expect(res.body).toEqual(want);
    expect(res.body.series).toHaveLength(29);
    expect(res.body.by_action).toHaveLength(3);
  });

  it('counts ranges over weeks, days and edge hours exactly (weekly rollups, days minus hours)', async () => {
    const token = await svc.token('longrange', 'auditor', 'aud');
    const h = (iso: string) => Date.parse(iso);
    const ranges: [string, string, 'hour' | 'day'][] = [
      // Whole weeks (Mondays 2, 9, 16) with partial days and hours at both ends.
      ['2026-02-01T05:00:00Z', '2026-02-25T05:00:00Z', 'day'],
      ['2026-02-01T21:00:00Z', '2026-02-24T22:00:00Z', 'day'],
      ['2026-02-02T00:00:00Z', '2026-02-16T00:00:00Z', 'day'],
      // Edge days mostly inside (read as the day minus the hours outside) and mostly outside.
      ['2026-02-03T01:00:00Z', '2026-02-12T23:00:00Z', 'hour'],
      ['2026-02-03T20:00:00Z', '2026-02-04T19:00:00Z', 'hour'],
      ['2026-02-10T02:00:00Z', '2026-02-10T22:00:00Z', 'hour'],
      ['2026-02-10T05:00:00Z', '2026-02-10T06:00:00Z', 'hour'],
      ['2026-01-20T00:00:00Z', '2026-03-01T00:00:00Z', 'day'],
    ];
    for (const [from, to, interval] of ranges) {
      for (const top of [3, 100]) {
        const res = await stats(`from=${from}&to=${to}&interval=${interval}&top=${top}`, token);
        expect(res.status, `${from} ${to}`).toBe(200);
        expect(res.body, `${from} ${to} top ${top}`).toEqual(
          expected(long, 'longrange', h(from), h(to), interval, top),
        );
      }
    }
  });

  it('widens an uneven range to whole UTC hours and says so', async () => {
    const res = await stats('from=2026-01-10T21:20:00Z&to=2026-01-11T01:10:00Z', auditor);
    expect(res.status).toBe(200);
    expect(res.body.from).toBe('2026-01-10T21:00:00Z');
    expect(res.body.to).toBe('2026-01-11T02:00:00Z');
    expect(res.body).toEqual(expected(acme, 'acme', BASE + 21 * HOUR, BASE + DAY + 2 * HOUR, 'hour', 10));
    // The event at exactly 02:00 belongs to the next bucket, the one at 01:30-01:00 (02:30Z) too.
    const next = await stats('from=2026-01-11T02:00:00Z&to=2026-01-11T03:00:00Z', auditor);
    expect(next.body.series).toEqual([
      {
        bucket: '2026-01-11T02:00:00Z',
        count: acme.filter(
          (e) =>
            Date.parse(e.occurred_at) >= BASE + DAY + 2 * HOUR &&
            Date.parse(e.occurred_at) < BASE + DAY + 3 * HOUR,
        ).length,
      },
    ]);
    expect(next.body.series[0].count).toBeGreaterThanOrEqual(2);
  });

  it('reports partial first and last days when a day series starts mid-day', async () => {
    const res = await stats('from=2026-01-10T12:00:00Z&to=2026-01-12T06:00:00Z&interval=day', auditor);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(expected(acme, 'acme', BASE + 12 * HOUR, BASE + 2 * DAY + 6 * HOUR, 'day', 10));
    expect(res.body.series.map((b: any) => b.bucket)).toEqual([
      '2026-01-10T00:00:00Z',
      '2026-01-11T00:00:00Z',
      '2026-01-12T00:00:00Z',
    ]);
  });

  it('never includes another tenant’s events, and refuses to name another tenant', async () => {
    const intruder = await svc.token('globex', 'admin', 'intruder');
    const own = await stats('from=2026-01-10T00:00:00Z&to=2026-01-13T00:00:00Z&interval=day', intruder);
    expect(own.status).toBe(200);
    expect(own.body).toEqual(expected(globex, 'globex', BASE, BASE + 3 * DAY, 'day', 10));
    expect(own.body.by_severity).toEqual({ INFO: 0, WARNING: 0, ERROR: 0, CRITICAL: 40 });
    expect(JSON.stringify(own.body)).not.toMatch(/u-1|u-2|u-3|order|invoice|CREATE/);

    const named = await stats('tenant_id=acme&from=2026-01-10T00:00:00Z&to=2026-01-13T00:00:00Z', intruder);
    expect(named.status).toBe(403);
    expect(named.body.error.code).toBe('forbidden_tenant');
    // A tenant with no events sees zeros, not anyone else's numbers.
    const empty = await stats(
      'from=2026-01-10T00:00:00Z&to=2026-01-13T00:00:00Z&interval=day',
      await svc.token('initech', 'auditor', 'x'),
    );
    expect(empty.body.total).toBe(0);
    expect(empty.body.top_users).toEqual([]);
    expect(empty.body.by_action).toEqual([]);
  });

  it('gives a platform admin the named tenant’s stats and requires the name', async () => {
    const platform = await svc.token('*', 'admin', 'root');
    const res = await stats(
      'tenant_id=acme&from=2026-01-10T00:00:00Z&to=2026-01-13T00:00:00Z&interval=day',
      platform,
    );
    expect(res.body).toEqual(expected(acme, 'acme', BASE, BASE + 3 * DAY, 'day', 10));
    const unnamed = await stats('from=2026-01-10T00:00:00Z&to=2026-01-13T00:00:00Z', platform);
    expect(unnamed.status).toBe(400);
    expect(unnamed.body.error.code).toBe('tenant_required');
  });

  it('gives the user role stats over its own events only, bounded', async () => {
    const user = await svc.token('acme', 'user', 'u-1');
    const res = await stats('from=2026-01-10T00:00:00Z&to=2026-01-13T00:00:00Z&interval=hour', user);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(expected(acme, 'acme', BASE, BASE + 3 * DAY, 'hour', 10, 'u-1'));
    expect(res.body.top_users).toEqual([{ user_id: 'u-1', count: 13 }]);
    // u-2 has 48 events: more than STATS_USER_MAX_EVENTS=20 for the whole range, fine for a narrow one.
    const heavy = await svc.token('acme', 'user', 'u-2');
    const refused = await stats('from=2026-01-10T00:00:00Z&to=2026-01-13T00:00:00Z', heavy);
    expect(refused.status).toBe(422);
    expect(refused.body.error.code).toBe('too_many_events');
    const narrow = await stats('from=2026-01-10T00:00:00Z&to=2026-01-10T12:00:00Z', heavy);
    expect(narrow.status).toBe(200);
    expect(narrow.body).toEqual(expected(acme, 'acme', BASE, BASE + 12 * HOUR, 'hour', 10, 'u-2'));
    // A user of another tenant sees only its own (none here), never acme's u-1.
    const stranger = await svc.token('globex', 'user', 'u-1');
    const theirs = await stats('from=2026-01-10T00:00:00Z&to=2026-01-13T00:00:00Z', stranger);
    expect(theirs.body.total).toBe(0);
    expect((await stats('tenant_id=acme', stranger)).status).toBe(403);
  });

  it('rejects bad ranges and unknown parameters', async () => {
    const backwards = await stats('from=2026-01-12T00:00:00Z&to=2026-01-10T00:00:00Z', auditor);
    expect(backwards.status).toBe(400);
    expect(backwards.body.error.code).toBe('invalid_range');
    const huge = await stats('from=2025-01-01T00:00:00Z&to=2026-01-10T00:00:00Z&interval=hour', auditor);
    expect(huge.status).toBe(400);
    expect(huge.body.error.code).toBe('range_too_large');
    const yearByDay = await stats('from=2025-01-01T00:00:00Z&to=2026-01-10T00:00:00Z&interval=day', auditor);
    expect(yearByDay.status).toBe(200);
    const unknown = await stats('action=LOGIN', auditor);
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.code).toBe('validation_failed');
    expect((await stats('interval=week', auditor)).status).toBe(400);
    expect((await http(svc.url, 'GET', '/api/v1/logs/stats')).status).toBe(401);
  });

  it('records each stats read as a VIEW of audit_log in the tenant read (self-audit)', async () => {
    const res = await stats('from=2026-01-10T00:00:00Z&to=2026-01-11T00:00:00Z&interval=day', auditor);
    expect(res.status).toBe(200);
    const requestId = res.headers.get('x-request-id');
    expect(requestId).toBeTruthy();
    const recorded: any = await eventually(async () => {
      const page = await http(
        svc.url,
        'GET',
        `/api/v1/logs?request_id=${encodeURIComponent(requestId!)}&resource_type=audit_log`,
        { token: auditor },
      );
      return page.body?.data?.length === 1 ? page.body.data[0] : undefined;
    });
    expect(recorded.action).toBe('VIEW');
    expect(recorded.user_id).toBe('aud');
    expect(recorded.metadata.operation).toBe('stats');
    expect(recorded.metadata.filters).toEqual({
      from: '2026-01-10T00:00:00Z',
      to: '2026-01-11T00:00:00Z',
      interval: 'day',
      top: '10',
    });
    // A refused request (bad range) reads nothing and records nothing.
    const bad = await stats('from=2026-01-12T00:00:00Z&to=2026-01-10T00:00:00Z', auditor);
    expect(bad.status).toBe(400);
  });

  it('row-level security hides other tenants’ rollup rows from the reader role', async () => {
    const db = await svc.ctx.pool.connect();
    try {
      await db.query('BEGIN READ ONLY; SET LOCAL ROLE auditlog_reader');
      const count = async () =>
        (
          await db.query(
            `SELECT tenant_id, count(*)::int AS n FROM rollup_values_daily GROUP BY 1 ORDER BY 1`,
          )
        ).rows;
      expect(await count()).toEqual([]); // no tenant set: fail closed
      await db.query(`SELECT set_config('auditlog.tenant', 'globex', true)`);
      const rows = await count();
      expect(rows.map((r) => r.tenant_id)).toEqual(['globex']);
      const acmeRows = await db.query(
        `SELECT count(*)::int AS n FROM rollup_users_daily WHERE tenant_id = 'acme'`,
      );
      expect(acmeRows.rows[0].n).toBe(0);
      // Every tenant here wrote late events (January), so each has a revision row; globex sees its own.
      const revisions = await db.query(`SELECT tenant_id FROM rollup_revisions`);
      expect(revisions.rows).toEqual([{ tenant_id: 'globex' }]);
    } finally {
      await db.query('ROLLBACK');
      db.release();
    }
  });

  it('counts a redelivered batch once: persist twice, and concurrently, on the same batch', async () => {
    const at = (h: number, m: number) => new Date(Date.parse('2026-02-01T00:00:00Z') + h * HOUR + m * 60_000);
    const received = new Date().toISOString();
    const staged = (h: number, m: number, extra: Partial<StagedEvent>): StagedEvent => ({
      tenant_id: 'initech',
      id: randomUUID(),
      occurred_at: at(h, m).toISOString(),
      received_at: received,
      action: 'UPDATE',
      resource_type: 'doc',
      severity: 'INFO',
      ...extra,
    });
    const first = staged(0, 5, { user_id: 'ann' });
    const batch: Batch<StagedEvent> = {
      v: 1,
      tenant_id: 'initech',
      // The same id twice in one batch is stored (and counted) once.
      events: [
        first,
        first,
        staged(0, 59, { user_id: 'bob', severity: 'ERROR' }),
        staged(1, 0, { action: 'DELETE' }),
      ],
    };
    const masked = await maskStage(svc.config).handle([batch], svc.ctx);
    const sealed = (await encryptStage.handle(masked, svc.ctx)) as Batch<SealedEvent>[];
    const persist = persistStage(false);
    await persist.handle(sealed, svc.ctx);
    await persist.handle(sealed, svc.ctx);
    await Promise.all([persist.handle(sealed, svc.ctx), persist.handle(sealed, svc.ctx)]);

    const reader = await svc.token('initech', 'auditor', 'aud');
    const res = await stats('from=2026-02-01T00:00:00Z&to=2026-02-01T02:00:00Z', reader);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      tenant_id: 'initech',
      scope: 'tenant',
      interval: 'hour',
      from: '2026-02-01T00:00:00Z',
      to: '2026-02-01T02:00:00Z',
      total: 3,
      by_severity: { INFO: 2, WARNING: 0, ERROR: 1, CRITICAL: 0 },
      by_action: [
        { action: 'UPDATE', count: 2 },
        { action: 'DELETE', count: 1 },
      ],
      by_resource_type: [{ resource_type: 'doc', count: 3 }],
      top_users: [
        { user_id: 'ann', count: 1 },
        { user_id: 'bob', count: 1 },
      ],
      series: [
        { bucket: '2026-02-01T00:00:00Z', count: 2 },
        { bucket: '2026-02-01T01:00:00Z', count: 1 },
      ],
    });
  });

  it('keeps every rollup equal to a recount of the events table', async () => {
    // One snapshot for both sides: self-audit events of the reads above may still be committing.
    const db = await svc.ctx.pool.connect();
    await db.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const recount = async (sql: string) => (await db.query(sql)).rows.map((r) => JSON.stringify(r)).sort();
    const pairs: [string, string][] = [
      [
        `SELECT tenant_id, bucket, count::int FROM rollup_totals_hourly`,
        `SELECT tenant_id, date_trunc('hour', occurred_at, 'UTC') AS bucket, count(*)::int AS count FROM events GROUP BY 1, 2`,
      ],
      [
        `SELECT tenant_id, bucket, user_id, count::int FROM rollup_users_daily`,
        `SELECT tenant_id, date_trunc('day', occurred_at, 'UTC') AS bucket, user_id, count(*)::int AS count
           FROM events WHERE user_id IS NOT NULL GROUP BY 1, 2, 3`,
      ],
      [
        `SELECT tenant_id, bucket, user_id, count::int FROM rollup_users_weekly`,
        `SELECT tenant_id, date_trunc('week', occurred_at, 'UTC') AS bucket, user_id, count(*)::int AS count
           FROM events WHERE user_id IS NOT NULL GROUP BY 1, 2, 3`,
      ],
      [
        `SELECT tenant_id, bucket, user_id, count::int FROM rollup_users_hourly`,
        `SELECT tenant_id, date_trunc('hour', occurred_at, 'UTC') AS bucket, user_id, count(*)::int AS count
           FROM events WHERE user_id IS NOT NULL GROUP BY 1, 2, 3`,
      ],
      [
        `SELECT tenant_id, bucket, count::int FROM rollup_totals_daily`,
        `SELECT tenant_id, date_trunc('day', occurred_at, 'UTC') AS bucket, count(*)::int AS count FROM events GROUP BY 1, 2`,
      ],
    ];
    // One row per tenant, bucket and value of each breakdown dimension, at every grain.
    for (const [grain, unit] of [
      ['hourly', 'hour'],
      ['daily', 'day'],
      ['weekly', 'week'],
    ]) {
      pairs.push([
        `SELECT tenant_id, bucket, dim::text, value, count::int FROM rollup_values_${grain}`,
        `SELECT tenant_id, date_trunc('${unit}', occurred_at, 'UTC') AS bucket, v.dim, v.value, count(*)::int AS count
           FROM events, LATERAL (VALUES ('s', severity), ('a', action), ('r', resource_type)) v(dim, value)
          GROUP BY 1, 2, 3, 4`,
      ]);
    }
    try {
      for (const [rollup, events] of pairs) {
        const want = await recount(events);
        expect(want.length).toBeGreaterThan(0);
        expect(await recount(rollup)).toEqual(want);
      }
    } finally {
      await db.query('ROLLBACK');
      db.release();
    }
  });
});
