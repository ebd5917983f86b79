import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCursor } from '../query/cursor.js';
import { eventually, http, startTestService, type TestService } from './harness.js';

/**
 * Every endpoint of the foundation issue, over real HTTP against the real pipeline (embedded
 * queue, real PostgreSQL). Expected results are exact id lists, so a filter that leaks or drops
 * one row fails.
 */

let svc: TestService;
let platform: string;
let admin: string;

const T0 = Date.parse('2026-01-10T12:00:00Z');
const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();

/** The acme fixture: one property varies per event so every filter has a distinct answer. */
const fixture = [
  {
    user_id: 'u1',
    action: 'CREATE',
    resource_type: 'order',
    resource_id: 'o1',
    severity: 'INFO',
    request_id: 'r1',
  },
  {
    user_id: 'u2',
    action: 'UPDATE',
    resource_type: 'order',
    resource_id: 'o1',
    severity: 'WARNING',
    request_id: 'r1',
  },
  {
    user_id: 'u1',
    action: 'DELETE',
    resource_type: 'order',
    resource_id: 'o2',
    severity: 'ERROR',
    request_id: 'r2',
  },
  {
    user_id: 'u3',
    action: 'LOGIN',
    resource_type: 'session',
    resource_id: 's1',
    severity: 'INFO',
    request_id: 'r3',
  },
  { user_id: 'u2', action: 'EXPORT', resource_type: 'report', resource_id: 'rep1', severity: 'CRITICAL' },
  {
    user_id: 'u1',
    action: 'VIEW',
    resource_type: 'order',
    resource_id: 'o1',
    severity: 'INFO',
    request_id: 'r2',
  },
  { action: 'CUSTOM_ACTION', resource_type: 'order', resource_id: 'o3', severity: 'WARNING' },
].map((e, i) => ({ ...e, id: randomUUID(), occurred_at: at(i) }));
const ids = fixture.map((e) => e.id);
/** Ids of fixture events by index, newest first (the API's default order). */
const newest = (...indexes: number[]) => [...indexes].sort((a, b) => b - a).map((i) => ids[i]);

async function search(query: Record<string, string>, token = admin) {
  const res = await http(svc.url, 'GET', `/api/v1/logs?${new URLSearchParams(query)}`, { token });
  expect(res.status, res.text).toBe(200);
  return res.body as { data: any[]; next_cursor: string | null };
}

/**
 * Waits until the tenant has exactly `count` events matching `query`. Every read is itself
 * recorded as an `audit_log` event in the tenant read, so counts are always taken over a filter
 * that excludes those.
 */
async function waitForCount(tenant: string, count: number, query: Record<string, string>) {
  const qs = new URLSearchParams({ tenant_id: tenant, limit: '1000', ...query });
  return eventually(async () => {
    const res = await http(svc.url, 'GET', `/api/v1/logs?${qs}`, { token: platform });
    return res.status === 200 && res.body.data.length === count ? (res.body.data as any[]) : undefined;
  });
}

async function metricValue(name: string): Promise<number> {
  const res = await http(svc.url, 'GET', '/metrics');
  const line = res.text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  return Number(line?.split(' ').pop() ?? 'NaN');
}

beforeAll(async () => {
  svc = await startTestService(['ingest', 'mask', 'encrypt', 'persist', 'index', 'query']);
  platform = await svc.token('*', 'admin', 'root');
  for (const id of ['acme', 'globex', 'pager']) {
    const res = await http(svc.url, 'POST', '/api/v1/tenants', { token: platform, body: { id, name: id } });
    expect(res.status).toBe(201);
  }
  admin = await svc.token('acme', 'admin', 'acme-admin');
  const res = await http(svc.url, 'POST', '/api/v1/logs/bulk', { token: admin, body: { events: fixture } });
  expect(res.status).toBe(202);
  // Decoys in another tenant with the same users, actions and resources: no filter may reach them.
  const globex = await svc.token('globex', 'admin');
  const decoys = fixture.map(({ id: _id, ...e }) => e);
  expect(
    (await http(svc.url, 'POST', '/api/v1/logs/bulk', { token: globex, body: { events: decoys } })).status,
  ).toBe(202);
  await waitForCount('acme', fixture.length, { from: at(0), to: at(7) });
  await waitForCount('globex', fixture.length, { from: at(0), to: at(7) });
});
afterAll(async () => svc?.stop());

describe('POST /api/v1/logs', () => {
  it('accepts one event with 202 and the client id, then serves it by id', async () => {
    const id = randomUUID();
    const res = await http(svc.url, 'POST', '/api/v1/logs', {
      token: admin,
      body: {
        id,
        action: 'CREATE',
        resource_type: 'invoice',
        resource_id: 'inv-1',
        occurred_at: '2026-02-01T10:00:00+02:00',
      },
    });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ ids: [id], accepted: 1 });
    const got = await eventually(async () => {
      const r = await http(svc.url, 'GET', `/api/v1/logs/${id}`, { token: admin });
      return r.status === 200 ? r.body : undefined;
    });
    expect(got).toMatchObject({
      tenant_id: 'acme',
      id,
      occurred_at: '2026-02-01T08:00:00.000000Z',
      action: 'CREATE',
      resource_type: 'invoice',
      resource_id: 'inv-1',
      severity: 'INFO',
    });
  });

  it('assigns a UUIDv7 when the client sends no id, and lowercases a client id', async () => {
    const res = await http(svc.url, 'POST', '/api/v1/logs', {
      token: admin,
      body: { action: 'VIEW', resource_type: 'invoice' },
    });
    expect(res.status).toBe(202);
    expect(res.body.accepted).toBe(1);
    expect(res.body.ids[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const upper = randomUUID().toUpperCase();
    const res2 = await http(svc.url, 'POST', '/api/v1/logs', {
      token: admin,
      body: { id: upper, action: 'VIEW', resource_type: 'invoice' },
    });
    expect(res2.body).toEqual({ ids: [upper.toLowerCase()], accepted: 1 });
  });
});

describe('POST /api/v1/logs/bulk', () => {
  it('accepts a batch with 202, returning the ids in request order', async () => {
    const given = randomUUID();
    const res = await http(svc.url, 'POST', '/api/v1/logs/bulk', {
      token: admin,
      body: {
        events: [
          { action: 'LOGIN', resource_type: 'bulk-test' },
          { id: given, action: 'LOGOUT', resource_type: 'bulk-test' },
        ],
      },
    });
    expect(res.status).toBe(202);
    expect(res.body.accepted).toBe(2);
    expect(res.body.ids).toHaveLength(2);
    expect(res.body.ids[1]).toBe(given);
    const stored = await eventually(async () => {
      const page = await search({ resource_type: 'bulk-test' });
      return page.data.length === 2 ? page.data : undefined;
    });
    expect(new Set(stored.map((e) => e.id))).toEqual(new Set(res.body.ids));
  });

  it('rejects an empty events array', async () => {
    const res = await http(svc.url, 'POST', '/api/v1/logs/bulk', { token: admin, body: { events: [] } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
  });
});

describe('GET /api/v1/logs/:id', () => {
  it('returns the whole event: plain fields, decrypted and masked before/after/metadata', async () => {
    const id = randomUUID();
    const event = {
      id,
      occurred_at: '2026-03-01T09:30:00.123456Z',
      user_id: 'u-42',
      session_id: 'sess-9',
      action: 'UPDATE',
      resource_type: 'account',
      resource_id: 'acc-1',
      severity: 'ERROR',
      ip_address: '2001:db8::7',
      user_agent: 'Mozilla/5.0',
      message: 'changed plan\tfor "acc-1"',
      before: { plan: 'silver', nested: { list: [1, 2, { x: null }] } },
      after: { plan: 'gold', password: 'hunter2' },
      metadata: { source: 'api', retries: 2, ok: true },
      request_id: 'req-detail',
    };
    expect((await http(svc.url, 'POST', '/api/v1/logs', { token: admin, body: event })).status).toBe(202);
    const got = await eventually(async () => {
      const r = await http(svc.url, 'GET', `/api/v1/logs/${id}`, { token: admin });
      return r.status === 200 ? r.body : undefined;
    });
    const { received_at, sequence, ...rest } = got;
    expect(rest).toEqual({
      ...event,
      tenant_id: 'acme',
      after: { plan: 'gold', password: '[REDACTED]' },
    });
    expect(received_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
    expect(sequence).toMatch(/^[1-9][0-9]*$/);
    // The same event through search is the same object.
    const page = await search({ request_id: 'req-detail' });
    expect(page.data).toEqual([got]);
  });

  it('answers 404 for a missing id and for a malformed one, with the same body', async () => {
    const missing = await http(svc.url, 'GET', `/api/v1/logs/${randomUUID()}`, { token: admin });
    const malformed = await http(svc.url, 'GET', '/api/v1/logs/not-a-uuid', { token: admin });
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ error: { code: 'not_found', message: 'no such event' } });
    expect(malformed.status).toBe(404);
    expect(malformed.body).toEqual(missing.body);
  });

  it('serves a platform admin who names the tenant, and asks it to name one', async () => {
    const ok = await http(svc.url, 'GET', `/api/v1/logs/${ids[0]}?tenant_id=acme`, { token: platform });
    expect(ok.status).toBe(200);
    expect(ok.body.id).toBe(ids[0]);
    const unnamed = await http(svc.url, 'GET', `/api/v1/logs/${ids[0]}`, { token: platform });
    expect(unnamed.status).toBe(400);
    expect(unnamed.body.error.code).toBe('tenant_required');
  });
});

describe('GET /api/v1/logs filters', () => {
  const fixtureOnly = { from: at(0), to: at(7) };

  it('returns the tenant’s events newest first with sequence numbers in submission order', async () => {
    const page = await search(fixtureOnly);
    expect(page.data.map((e) => e.id)).toEqual(newest(0, 1, 2, 3, 4, 5, 6));
    expect(page.data.map((e) => e.sequence)).toEqual(['7', '6', '5', '4', '3', '2', '1']);
    expect(page.data.every((e) => e.tenant_id === 'acme')).toBe(true);
    expect(page.next_cursor).toBeNull();
  });

  it.each([
    ['from (inclusive)', { from: at(2) }, [2, 3, 4, 5, 6]],
    ['to (exclusive)', { to: at(2) }, [0, 1]],
    ['from and to', { from: at(1), to: at(4) }, [1, 2, 3]],
    ['from with an offset', { from: '2026-01-10T13:05:00+01:00' }, [5, 6]],
    ['user_id', { user_id: 'u1' }, [0, 2, 5]],
    ['action (one)', { action: 'LOGIN' }, [3]],
    ['action (comma list)', { action: 'CREATE,DELETE,CUSTOM_ACTION' }, [0, 2, 6]],
    ['resource_type', { resource_type: 'order' }, [0, 1, 2, 5, 6]],
    ['resource_id', { resource_id: 'o1' }, [0, 1, 5]],
    ['resource_type and resource_id', { resource_type: 'session', resource_id: 's1' }, [3]],
    ['severity (one)', { severity: 'CRITICAL' }, [4]],
    ['severity (comma list)', { severity: 'WARNING,CRITICAL' }, [1, 4, 6]],
    // A request_id search is a correlation: causal (sequence) order, oldest first.
    ['request_id', { request_id: 'r1' }, [0, 1], 'asc'],
    [
      'everything combined',
      {
        from: at(1),
        to: at(6),
        user_id: 'u1',
        action: 'VIEW,DELETE,CREATE',
        resource_type: 'order',
        resource_id: 'o1',
        severity: 'INFO,ERROR',
        request_id: 'r2',
      },
      [5],
    ],
    ['a combination that matches nothing', { user_id: 'u1', severity: 'CRITICAL' }, []],
    ['a value nobody has', { user_id: 'nobody' }, []],
  ] as [string, Record<string, string>, number[], 'asc'?][])(
    'filters by %s',
    async (_name, query, expected, order) => {
      const page = await search({ from: fixtureOnly.from, to: fixtureOnly.to, ...query });
      expect(page.data.map((e) => e.id)).toEqual(
        order === 'asc' ? expected.map((i) => ids[i]) : newest(...expected),
      );
    },
  );

  it.each([
    ['limit=0', 'limit=0'],
    ['limit=1001', 'limit=1001'],
    ['limit=abc', 'limit=abc'],
    ['an unknown parameter', 'colour=red'],
    ['a bad severity', 'severity=INFO,LOUD'],
    ['a bad action', 'action=create'],
    ['an empty action list item', 'action=CREATE,'],
    ['a from without offset', 'from=2026-01-10T12:00:00'],
    ['a from in year 0', 'from=0000-01-01T00:00:00Z'],
    ['a to past year 9999', `to=${encodeURIComponent('9999-12-31T23:00:00-05:00')}`],
  ])('rejects %s with 400', async (_name, qs) => {
    const res = await http(svc.url, 'GET', `/api/v1/logs?${qs}`, { token: admin });
    expect(res.status, res.text).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
  });

  it('accepts RFC 3339 offsets beyond what PostgreSQL parses (±15:59)', async () => {
    // 2026-01-11T11:00+23:00 is 2026-01-10T12:00Z: the fixture's first event.
    const page = await search({ from: '2026-01-11T11:00:00+23:00', to: '2026-01-10T12:00:00.000001Z' });
    expect(page.data.map((e) => e.id)).toEqual([ids[0]]);
  });
});

describe('GET /api/v1/logs pagination', () => {
  const total = 57;
  /** Only the test's own events: reads add audit_log events to the tenant. */
  const page = { resource_type: 'page' };
  let pagerAdmin: string;
  let all: any[];

  beforeAll(async () => {
    pagerAdmin = await svc.token('pager', 'admin');
    // Twenty events share one timestamp, so the sequence tiebreaker decides their order.
    const events = Array.from({ length: total }, (_, i) => ({
      action: 'VIEW',
      resource_type: 'page',
      resource_id: `p${i}`,
      occurred_at: i < 20 ? at(100) : at(100 + i),
    }));
    expect(
      (await http(svc.url, 'POST', '/api/v1/logs/bulk', { token: pagerAdmin, body: { events } })).status,
    ).toBe(202);
    all = await waitForCount('pager', total, page);
  });

  it('defaults to 50 per page and caps at 1000', async () => {
    const first = await search(page, pagerAdmin);
    expect(first.data).toHaveLength(50);
    expect(first.next_cursor).toEqual(expect.any(String));
    const max = await search({ ...page, limit: '1000' }, pagerAdmin);
    expect(max.data).toHaveLength(total);
    expect(max.next_cursor).toBeNull();
  });

  it('orders by (occurred_at, sequence) descending', () => {
    // The bulk was the tenant's first write: sequences 1..57 in submission order.
    const expected = [
      ...Array.from({ length: total - 20 }, (_, i) => `p${total - 1 - i}:${total - i}`),
      ...Array.from({ length: 20 }, (_, i) => `p${19 - i}:${20 - i}`),
    ];
    expect(all.map((e) => `${e.resource_id}:${e.sequence}`)).toEqual(expected);
  });

  it.each([1, 5, 7, 20, 56, 57])('walks every event exactly once with limit=%i', async (limit) => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const got = await search({ ...page, limit: String(limit), ...(cursor ? { cursor } : {}) }, pagerAdmin);
      expect(got.data.length).toBe(Math.min(limit, total - seen.length));
      seen.push(...got.data.map((e) => e.id));
      cursor = got.next_cursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(Math.ceil(total / limit));
    expect(seen).toEqual(all.map((e) => e.id));
  });

  it('is stable while newer events arrive between pages', async () => {
    const first = await search({ ...page, limit: '10' }, pagerAdmin);
    const res = await http(svc.url, 'POST', '/api/v1/logs', {
      token: pagerAdmin,
      body: { action: 'VIEW', resource_type: 'page', resource_id: 'late', occurred_at: at(500) },
    });
    expect(res.status).toBe(202);
    await waitForCount('pager', total + 1, page);
    const seen = first.data.map((e) => e.id);
    let cursor = first.next_cursor;
    while (cursor) {
      const next = await search({ ...page, limit: '10', cursor }, pagerAdmin);
      seen.push(...next.data.map((e) => e.id));
      cursor = next.next_cursor;
    }
    expect(seen).toEqual(all.map((e) => e.id));
  });

  it('keeps filters applied across pages', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const got = await search(
        { limit: '3', from: at(100), to: at(101), ...(cursor ? { cursor } : {}) },
        pagerAdmin,
      );
      seen.push(...got.data.map((e) => e.resource_id));
      cursor = got.next_cursor;
    } while (cursor);
    expect(seen).toEqual(
      all.filter((e) => e.occurred_at === all[all.length - 1].occurred_at).map((e) => e.resource_id),
    );
    expect(seen).toHaveLength(20);
  });

  it.each([
    ['garbage', 'not-a-cursor'],
    ['a forged impossible date', encodeCursor({ occurredAt: '2026-13-45T25:61:61.000000Z', seq: '1' })],
    ['a forged 31 February', encodeCursor({ occurredAt: '2026-02-31T00:00:00.000000Z', seq: '1' })],
    ['a forged year 0', encodeCursor({ occurredAt: '0000-01-01T00:00:00.000000Z', seq: '1' })],
    [
      'a sequence beyond bigint',
      encodeCursor({ occurredAt: '2026-01-01T00:00:00.000000Z', seq: '9999999999999999999' }),
    ],
    ['a JSON object', Buffer.from('{"a":1}').toString('base64url')],
  ])('rejects %s as a cursor with 400 invalid_cursor', async (_name, cursor) => {
    const res = await http(svc.url, 'GET', `/api/v1/logs?cursor=${cursor}`, { token: pagerAdmin });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: { code: 'invalid_cursor', message: 'cursor is malformed' } });
  });
});

describe('tenants', () => {
  it('creates a tenant with 201 and refuses a duplicate with 409', async () => {
    const res = await http(svc.url, 'POST', '/api/v1/tenants', {
      token: platform,
      body: { id: 'initech', name: 'Initech Corp.' },
    });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ id: 'initech', name: 'Initech Corp.', created_at: expect.any(String) });
    expect(Math.abs(Date.parse(res.body.created_at) - Date.now())).toBeLessThan(3_600_000);
    const dup = await http(svc.url, 'POST', '/api/v1/tenants', {
      token: platform,
      body: { id: 'initech', name: 'Someone else' },
    });
    expect(dup.status).toBe(409);
    expect(dup.body).toEqual({
      error: { code: 'tenant_exists', message: 'a tenant with this id already exists' },
    });
  });

  it.each(['a', '0', 'a-b-c', `a${'b'.repeat(62)}`, '9lives'])('accepts the id %j', async (id) => {
    const res = await http(svc.url, 'POST', '/api/v1/tenants', { token: platform, body: { id, name: 'x' } });
    expect(res.status).toBe(201);
  });

  it.each(['Acme', '-acme', 'ac_me', 'ac me', '', `a${'b'.repeat(63)}`, 'acme.', '*', 'ü'])(
    'rejects the id %j with 400',
    async (id) => {
      const res = await http(svc.url, 'POST', '/api/v1/tenants', {
        token: platform,
        body: { id, name: 'x' },
      });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
    },
  );

  it.each([
    ['a missing name', { id: 'noname' }],
    ['an empty name', { id: 'noname', name: '' }],
    ['an unknown field', { id: 'noname', name: 'x', plan: 'gold' }],
    ['a numeric id', { id: 5, name: 'x' }],
  ])('rejects %s with 400', async (_n, body) => {
    const res = await http(svc.url, 'POST', '/api/v1/tenants', { token: platform, body });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
  });

  it('lists every tenant, ordered by id', async () => {
    const res = await http(svc.url, 'GET', '/api/v1/tenants', { token: platform });
    expect(res.status).toBe(200);
    const listed = res.body.data.map((t: { id: string }) => t.id);
    expect(listed).toEqual([...listed].sort());
    expect(listed).toEqual(expect.arrayContaining(['acme', 'globex', 'pager', 'initech']));
    expect(res.body.data.find((t: { id: string }) => t.id === 'initech')).toEqual({
      id: 'initech',
      name: 'Initech Corp.',
      created_at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/),
    });
  });

  it('rejects events for a tenant that does not exist', async () => {
    const res = await http(svc.url, 'POST', '/api/v1/logs', {
      token: platform,
      body: { tenant_id: 'nosuchtenant', action: 'CREATE', resource_type: 'x' },
    });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('tenant_not_found');
  });
});

describe('service endpoints', () => {
  it('GET /healthz answers 200 without a token', async () => {
    const res = await http(svc.url, 'GET', '/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('GET /metrics serves Prometheus text that counts accepted events', async () => {
    const res = await http(svc.url, 'GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(res.text).toContain('# TYPE auditlog_ingest_events_total counter');
    expect(res.text).toContain('# TYPE auditlog_http_request_duration_seconds histogram');
    const before = await metricValue('auditlog_ingest_events_total');
    const events = Array.from({ length: 3 }, () => ({ action: 'VIEW', resource_type: 'metric' }));
    expect(
      (await http(svc.url, 'POST', '/api/v1/logs/bulk', { token: admin, body: { events } })).status,
    ).toBe(202);
    expect(await metricValue('auditlog_ingest_events_total')).toBe(before + 3);
  });

  it('answers unknown routes with a JSON 404', async () => {
    const res = await http(svc.url, 'GET', '/api/v1/nothing-here', { token: admin });
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: { code: 'not_found', message: 'no such route' } });
  });
});
