import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIMITS } from '../infra/schema/event.js';
import { eventually, http, startTestService, type TestService } from './harness.js';

/**
 * Malformed, hostile and oversized input. Three properties hold throughout: every error is the
 * JSON error body with the right status, never a 500; a refused request writes nothing to the
 * queue (checked on the queue's own id sequence, which any insert would advance); and an event
 * that is accepted is stored, exactly as sent.
 */

let svc: TestService;
let db: pg.Client;
let token: string;

const ok = { action: 'CREATE', resource_type: 'order' };

async function queueSeq(): Promise<string> {
  const { rows } = await db.query('SELECT last_value::text AS v, is_called FROM queue_messages_id_seq');
  return `${rows[0].v}/${rows[0].is_called}`;
}

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  return http(svc.url, 'POST', path, { token, body, headers });
}

async function raw(path: string, text: string, contentType?: string) {
  return http(svc.url, 'POST', path, {
    token,
    raw: text,
    headers: contentType === undefined ? {} : { 'content-type': contentType },
  });
}

/** The error body every failure must have: code and message strings, no stack trace. */
function expectErrorBody(res: { status: number; body: any; text: string }, status: number, code?: string) {
  expect(res.status, res.text.slice(0, 300)).toBe(status);
  expect(typeof res.body?.error?.code).toBe('string');
  expect(typeof res.body?.error?.message).toBe('string');
  expect(Object.keys(res.body).sort()).toEqual(['error']);
  expect(res.text).not.toMatch(/\n\s+at |node_modules|\.ts:\d+/);
  if (code !== undefined) expect(res.body.error.code).toBe(code);
}

async function storedCount(ids: string[]): Promise<number> {
  const { rows } = await db.query('SELECT count(*)::int AS n FROM events WHERE id = ANY($1::uuid[])', [ids]);
  return rows[0].n;
}

beforeAll(async () => {
  svc = await startTestService(['ingest', 'mask', 'encrypt', 'persist', 'index', 'query']);
  db = new pg.Client({ connectionString: svc.config.DATABASE_URL });
  await db.connect();
  await svc.createTenant('acme', 'Acme');
  token = await svc.token('acme', 'admin', 'writer');
});
afterAll(async () => {
  await db?.end();
  await svc?.stop();
});

describe('body format', () => {
  it.each([
    ['truncated JSON', '{"action": "CREATE"'],
    ['a trailing comma', '{"action":"CREATE","resource_type":"x",}'],
    ['single quotes', "{'action':'CREATE'}"],
    ['bare words', 'hello'],
    ['an empty body', ''],
    ['a forbidden __proto__ key', '{"action":"CREATE","resource_type":"x","__proto__":{"admin":true}}'],
  ])('answers %s with 400 invalid_json and enqueues nothing', async (_name, text) => {
    const before = await queueSeq();
    for (const path of ['/api/v1/logs', '/api/v1/logs/bulk']) {
      expectErrorBody(await raw(path, text, 'application/json'), 400, 'invalid_json');
    }
    expect(await queueSeq()).toBe(before);
  });

  it.each([
    ['text/plain', JSON.stringify(ok)],
    ['application/xml', '<event/>'],
    ['application/x-www-form-urlencoded', 'action=CREATE&resource_type=x'],
    ['multipart/form-data; boundary=x', '--x\r\n\r\n--x--'],
    ['application/jsonp', JSON.stringify(ok)],
    [undefined, JSON.stringify(ok)],
  ])('answers content type %j with 415 and enqueues nothing', async (type, text) => {
    const before = await queueSeq();
    for (const path of ['/api/v1/logs', '/api/v1/logs/bulk']) {
      expectErrorBody(await raw(path, text, type), 415, 'unsupported_media_type');
    }
    expect(await queueSeq()).toBe(before);
  });

  it('accepts application/json with a charset parameter', async () => {
    const res = await raw('/api/v1/logs', JSON.stringify(ok), 'application/json; charset=utf-8');
    expect(res.status).toBe(202);
  });
});

describe('event validation', () => {
  it.each([
    ['an unknown field', { ...ok, colour: 'red' }, [{ path: '/colour', message: 'unknown field' }]],
    ['a missing action', { resource_type: 'x' }, [{ path: '/action', message: 'is required' }]],
    ['a number for a string', { ...ok, user_id: 42 }, [{ path: '/user_id', message: 'must be string' }]],
    ['a string for an object', { ...ok, metadata: 'x' }, [{ path: '/metadata', message: 'must be object' }]],
    ['an array for an object', { ...ok, before: [1] }, [{ path: '/before', message: 'must be object' }]],
    [
      'an invalid IPv4',
      { ...ok, ip_address: '300.1.1.1' },
      [{ path: '/ip_address', message: 'must match format "ip"' }],
    ],
    [
      'an IPv6 zone id',
      { ...ok, ip_address: 'fe80::1%eth0' },
      [{ path: '/ip_address', message: 'must match format "ip"' }],
    ],
    ['an invalid uuid', { ...ok, id: '1234' }, [{ path: '/id', message: 'must match format "uuid"' }]],
    [
      'a timestamp without offset',
      { ...ok, occurred_at: '2026-01-01T10:00:00' },
      [{ path: '/occurred_at', message: 'must match format "date-time"' }],
    ],
    [
      'a lowercase action',
      { ...ok, action: 'create' },
      [{ path: '/action', message: 'must match pattern "^[A-Z][A-Z0-9_]{1,63}$"' }],
    ],
    [
      'a NUL character',
      { ...ok, message: 'a\u0000b' },
      [{ path: '/message', message: 'must be well-formed Unicode without NUL characters' }],
    ],
    [
      'a too-deep object',
      { ...ok, metadata: { a: { b: { c: { d: { e: { f: { g: { h: { i: 1 } } } } } } } } } },
      [{ path: '/metadata', message: `nested deeper than ${LIMITS.objectDepth} levels` }],
    ],
  ])('rejects %s with 400 naming the path, and enqueues nothing', async (_name, event, details) => {
    const before = await queueSeq();
    const res = await post('/api/v1/logs', event);
    expectErrorBody(res, 400, 'validation_failed');
    expect(res.body.error.details).toEqual(details);
    expect(await queueSeq()).toBe(before);
  });

  it('rejects an event over 64 KiB: 413 alone, 400 with its index inside a bulk', async () => {
    const event = { ...ok, metadata: { pad: 'x'.repeat(LIMITS.eventBytes) } };
    const size = Buffer.byteLength(JSON.stringify(event));
    const before = await queueSeq();
    const single = await post('/api/v1/logs', event);
    expectErrorBody(single, 413, 'event_too_large');
    const bulk = await post('/api/v1/logs/bulk', { events: [ok, event] });
    expectErrorBody(bulk, 400, 'validation_failed');
    expect(bulk.body.error.details).toEqual([
      { index: 1, path: '', message: `event is ${size} bytes; the limit is ${LIMITS.eventBytes}` },
    ]);
    expect(await queueSeq()).toBe(before);
  });

  it('rejects a single-event body far over the limit with 413', async () => {
    const res = await post('/api/v1/logs', { ...ok, message: 'x'.repeat(LIMITS.eventBytes * 3) });
    expectErrorBody(res, 413, 'payload_too_large');
  });

  it('rejects an absurdly deep object with 400, not a stack overflow', async () => {
    const depth = 100_000;
    const text = `{"action":"CREATE","resource_type":"x","metadata":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`;
    const res = await raw('/api/v1/logs/bulk', `{"events":[${text}]}`, 'application/json');
    expectErrorBody(res, 400, 'validation_failed');
    expect(res.body.error.details).toEqual([
      { index: 0, path: '/metadata', message: `nested deeper than ${LIMITS.objectDepth} levels` },
    ]);
    // Deep enough to overflow a recursive JSON.stringify, small enough for the single-event limit.
    const arrays = await raw(
      '/api/v1/logs',
      `${'['.repeat(60_000)}${']'.repeat(60_000)}`,
      'application/json',
    );
    expectErrorBody(arrays, 400, 'validation_failed');
    const objects = await raw(
      '/api/v1/logs',
      `{"action":"CREATE","resource_type":"x","after":${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}}`,
      'application/json',
    );
    expectErrorBody(objects, 400, 'validation_failed');
    expect(objects.body.error.details).toEqual([
      { path: '/after', message: `nested deeper than ${LIMITS.objectDepth} levels` },
    ]);
  });
});

describe('bulk', () => {
  it('lists every bad item by index and path, and stores nothing of the request', async () => {
    const goodId = randomUUID();
    const events = [
      { ...ok, id: goodId },
      { ...ok, severity: 'LOUD', ip_address: 'nope' },
      { ...ok, id: randomUUID() },
      { resource_type: 'x', extra: 1 },
      'not an object',
      { ...ok, occurred_at: new Date(Date.now() + 25 * 3600_000).toISOString() },
    ];
    const before = await queueSeq();
    const res = await post('/api/v1/logs/bulk', { events });
    expectErrorBody(res, 400, 'validation_failed');
    expect(res.body.error.details).toEqual([
      { index: 1, path: '/severity', message: 'must be equal to constant' },
      { index: 1, path: '/severity', message: 'must match a schema in anyOf' },
      { index: 1, path: '/ip_address', message: 'must match format "ip"' },
      { index: 3, path: '/action', message: 'is required' },
      { index: 3, path: '/extra', message: 'unknown field' },
      { index: 4, path: '', message: 'must be object' },
      { index: 5, path: '/occurred_at', message: 'is more than 24 h in the future' },
    ]);
    expect(await queueSeq()).toBe(before);
    // The valid items were not stored either: send a barrier and wait for it to land.
    const barrier = await post('/api/v1/logs', ok);
    await eventually(async () => ((await storedCount(barrier.body.ids)) === 1 ? true : undefined));
    expect(await storedCount([goodId])).toBe(0);
  });

  it(`accepts ${LIMITS.bulkEvents} events and answers 413 for one more, enqueueing nothing`, async () => {
    const events = Array.from({ length: LIMITS.bulkEvents + 1 }, () => ok);
    const before = await queueSeq();
    expectErrorBody(await post('/api/v1/logs/bulk', { events }), 413, 'too_many_events');
    expect(await queueSeq()).toBe(before);
    const res = await post('/api/v1/logs/bulk', { events: events.slice(1) });
    expect(res.status).toBe(202);
    expect(res.body.accepted).toBe(LIMITS.bulkEvents);
  });

  it('answers a body over 5 MiB with 413 and enqueues nothing', async () => {
    const pad = 'x'.repeat(60 * 1024);
    const events = Array.from({ length: 90 }, () => ({ ...ok, metadata: { pad } }));
    expect(Buffer.byteLength(JSON.stringify({ events }))).toBeGreaterThan(LIMITS.bulkBytes);
    const before = await queueSeq();
    expectErrorBody(await post('/api/v1/logs/bulk', { events }), 413, 'payload_too_large');
    expect(await queueSeq()).toBe(before);
  });

  it('accepts a body just under 5 MiB of valid events and stores them all', async () => {
    const pad = 'y'.repeat(60 * 1024);
    const events = Array.from({ length: 80 }, (_, i) => ({
      ...ok,
      resource_id: `big-${i}`,
      metadata: { pad },
    }));
    expect(Buffer.byteLength(JSON.stringify({ events }))).toBeLessThan(LIMITS.bulkBytes);
    const res = await post('/api/v1/logs/bulk', { events });
    expect(res.status).toBe(202);
    await eventually(async () => ((await storedCount(res.body.ids)) === 80 ? true : undefined), 30_000);
  });

  it.each([
    ['a missing events field', { event: [] }],
    ['events as an object', { events: {} }],
    ['an extra top-level field', { events: [ok], tenant: 'x' }],
    ['an array body', [ok]],
    ['a null body', null],
  ])('rejects %s with 400', async (_name, body) => {
    const before = await queueSeq();
    expectErrorBody(await post('/api/v1/logs/bulk', body), 400, 'validation_failed');
    expect(await queueSeq()).toBe(before);
  });
});

describe('occurred_at range', () => {
  it('stores backfills from any past year and events up to 24 h ahead, creating partitions on demand', async () => {
    const ahead = new Date(Date.now() + 23 * 3600_000);
    const events = [
      { ...ok, id: randomUUID(), occurred_at: '1999-03-04T05:06:07.890123Z' },
      { ...ok, id: randomUUID(), occurred_at: '1970-01-01T00:00:00Z' },
      { ...ok, id: randomUUID(), occurred_at: '0001-01-01T00:00:00Z' },
      { ...ok, id: randomUUID(), occurred_at: ahead.toISOString() },
      // RFC 3339 allows offsets PostgreSQL itself rejects (beyond ±15:59); they must still store.
      { ...ok, id: randomUUID(), occurred_at: '2020-06-01T12:00:00+23:30' },
    ];
    const res = await post('/api/v1/logs/bulk', { events });
    expect(res.status).toBe(202);
    const ids = events.map((e) => e.id);
    await eventually(async () => ((await storedCount(ids)) === ids.length ? true : undefined));
    const { rows } = await db.query(
      `SELECT id::text AS id, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS t
         FROM events WHERE id = ANY($1::uuid[])`,
      [ids],
    );
    const byId = new Map(rows.map((r) => [r.id, r.t]));
    expect(ids.map((id) => byId.get(id))).toEqual([
      '1999-03-04T05:06:07.890123',
      '1970-01-01T00:00:00.000000',
      '0001-01-01T00:00:00.000000',
      `${ahead.toISOString().slice(0, 23)}000`,
      '2020-05-31T12:30:00.000000',
    ]);
    const { rows: parts } = await db.query(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'events'::regclass AND c.relname = ANY($1) ORDER BY 1`,
      // Weekly partitions (the default width), named after their Monday.
      [['events_p00010101', 'events_p19691229', 'events_p19990301']],
    );
    expect(parts.map((p) => p.name)).toEqual(['events_p00010101', 'events_p19691229', 'events_p19990301']);
    expect((await db.query('SELECT count(*)::int AS n FROM queue_dead_letters')).rows[0].n).toBe(0);
  });

  it('rejects an event 25 h in the future and one in year 0', async () => {
    const before = await queueSeq();
    for (const occurred_at of [new Date(Date.now() + 25 * 3600_000).toISOString(), '0000-06-01T00:00:00Z']) {
      const res = await post('/api/v1/logs', { ...ok, occurred_at });
      expectErrorBody(res, 400, 'validation_failed');
      expect(res.body.error.details.map((d: { path: string }) => d.path)).toEqual(['/occurred_at']);
    }
    expect(await queueSeq()).toBe(before);
  });
});

/** A small seeded PRNG (mulberry32), so a failing fuzz case can be replayed. */
function rng(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('fuzz', () => {
  const random = rng(0xa0d17);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const ATOMS = [
    '',
    'x',
    'CREATE',
    '\t\n\\',
    '🧾',
    '\u0000',
    '\ud800',
    '1e999',
    '-0',
    'null',
    '"',
    '{}',
    '__proto__',
    'constructor',
    '💥'.repeat(40),
    '2026-01-01T00:00:00Z',
    '::1',
    randomUUID(),
  ];
  const KEYS = [
    ...Object.keys({
      ...ok,
      id: 1,
      user_id: 1,
      metadata: 1,
      before: 1,
      severity: 1,
      occurred_at: 1,
      ip_address: 1,
    }),
    'zzz',
    '__proto__',
    'constructor',
    '',
  ];

  function value(depth: number): unknown {
    const r = random();
    if (depth > 4 || r < 0.35) return pick(ATOMS);
    if (r < 0.45) return Math.floor(random() * 1e6) * (random() < 0.5 ? -1 : 1);
    if (r < 0.5) return pick([true, false, null, 1.5, Number.MAX_SAFE_INTEGER]);
    if (r < 0.75) return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1));
    const obj: Record<string, unknown> = {};
    for (let i = Math.floor(random() * 6); i > 0; i--) obj[pick(KEYS)] = value(depth + 1);
    return obj;
  }

  function junkText(): string {
    const r = random();
    if (r < 0.3) return JSON.stringify(value(0));
    if (r < 0.5)
      return JSON.stringify({ events: Array.from({ length: Math.floor(random() * 4) }, () => value(1)) });
    if (r < 0.7) {
      // Valid JSON, cut at a random point.
      const s = JSON.stringify({ events: [value(1), value(1)] });
      return s.slice(0, Math.floor(random() * s.length));
    }
    return Array.from({ length: Math.floor(random() * 40) }, () =>
      String.fromCharCode(Math.floor(random() * 0x3000)),
    ).join('');
  }

  it('never answers 500 to junk bodies, and always with the error body', async () => {
    const types = [
      'application/json',
      'application/json',
      'text/plain',
      'application/octet-stream',
      undefined,
    ];
    for (let i = 0; i < 250; i++) {
      const path = pick(['/api/v1/logs', '/api/v1/logs/bulk']);
      const text = junkText();
      const res = await raw(path, text, pick(types));
      expect(
        res.status,
        `#${i} ${path} ${JSON.stringify(text).slice(0, 200)} → ${res.text.slice(0, 200)}`,
      ).toBeLessThan(500);
      if (res.status >= 400) expectErrorBody(res, res.status);
    }
  });

  it('never answers 500 to junk query strings', async () => {
    // A lone surrogate cannot be percent-encoded; send its UTF-8-invalid raw form instead.
    const enc = (v: string) => (v === '\ud800' ? '%ED%A0%80' : encodeURIComponent(v));
    const params = [
      'from',
      'to',
      'user_id',
      'action',
      'severity',
      'limit',
      'cursor',
      'request_id',
      'tenant_id',
      'zzz',
    ];
    for (let i = 0; i < 150; i++) {
      const qs = Array.from(
        { length: 1 + Math.floor(random() * 3) },
        () => `${pick(params)}=${enc(String(pick(ATOMS)))}`,
      ).join('&');
      const res = await http(svc.url, 'GET', `/api/v1/logs?${qs}`, { token });
      expect(res.status, `#${i} ?${qs} → ${res.text.slice(0, 200)}`).toBeLessThan(500);
      if (res.status >= 400) expectErrorBody(res, res.status);
    }
  });

  it('stores every accepted event of random shape exactly as sent; nothing dead-letters', async () => {
    const STRINGS = [
      'plain',
      'tab\there',
      'nl\nhere',
      'back\\slash',
      '🧾 ünï',
      '\\N',
      '\\.',
      ' ',
      '"q"',
      "'s'",
    ];
    const accepted: Record<string, unknown>[] = [];
    for (let i = 0; i < 60; i++) {
      const event: Record<string, unknown> = { ...ok, id: randomUUID() };
      for (const field of ['user_id', 'session_id', 'resource_id', 'user_agent', 'request_id']) {
        if (random() < 0.6) event[field] = `${pick(STRINGS)}${pick(STRINGS)}`;
      }
      if (random() < 0.5) event.ip_address = pick(['10.0.0.1', '::1', '2001:db8::ff', '::ffff:1.2.3.4']);
      if (random() < 0.5)
        event.metadata = { k: pick(STRINGS), n: pick([1, 2.5, -3, true, null]), nested: [pick(STRINGS)] };
      const res = await post('/api/v1/logs', event);
      if (res.status === 202) accepted.push(event);
      else expectErrorBody(res, res.status);
    }
    expect(accepted.length).toBe(60);
    const ids = accepted.map((e) => e.id as string);
    await eventually(async () => ((await storedCount(ids)) === ids.length ? true : undefined));
    for (const sent of accepted) {
      const got = await http(svc.url, 'GET', `/api/v1/logs/${sent.id}`, { token });
      expect(got.status).toBe(200);
      for (const field of [
        'user_id',
        'session_id',
        'resource_id',
        'user_agent',
        'request_id',
        'ip_address',
        'metadata',
      ]) {
        expect([field, got.body[field]]).toEqual([field, sent[field]]);
      }
    }
    expect((await db.query('SELECT count(*)::int AS n FROM queue_dead_letters')).rows[0].n).toBe(0);
  });
});

describe('rate limit', () => {
  let limited: TestService;

  beforeAll(async () => {
    limited = await startTestService(['ingest', 'query'], { RATE_LIMIT_MAX: '3' });
  });
  afterAll(async () => limited?.stop());

  it('answers 429 with the error body once a token exceeds its budget, per token', async () => {
    const a = await limited.token('acme', 'admin', 'a');
    const b = await limited.token('acme', 'admin', 'b');
    const statuses: number[] = [];
    let last: Awaited<ReturnType<typeof http>> | undefined;
    for (let i = 0; i < 5; i++) {
      last = await http(limited.url, 'GET', '/api/v1/logs', { token: a });
      statuses.push(last.status);
    }
    // The tenant does not exist on this fresh service; the status before the limit does not matter.
    expect(statuses.slice(3)).toEqual([429, 429]);
    expect(statuses.slice(0, 3).every((s) => s !== 429)).toBe(true);
    expectErrorBody(last!, 429, 'rate_limited');
    // Another token has its own budget; health and metrics are never limited.
    expect((await http(limited.url, 'GET', '/api/v1/logs', { token: b })).status).not.toBe(429);
    for (let i = 0; i < 5; i++) {
      expect((await http(limited.url, 'GET', '/healthz')).status).toBe(200);
      expect((await http(limited.url, 'GET', '/metrics')).status).toBe(200);
    }
  });
});
