import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http, startTestService, type TestService } from '../test/harness.js';
import { allPages, createTenants, ingest, QUERY_DAEMONS, waitStored } from './test-support.js';

/**
 * Search filters, alone and combined, against a fixture where each filter has a distinct answer,
 * with an identical decoy copy in another tenant that no filter may reach.
 */
const T0 = Date.parse('2026-03-02T08:00:00Z');
const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();
/** occurred_at as the API returns it (UTC, microseconds). */
const stored = (minutes: number) => at(minutes).replace(/\.(\d{3})Z$/, '.$1000Z');

const fixture = [
  {
    user_id: 'u1',
    action: 'CREATE',
    resource_type: 'order',
    resource_id: 'o1',
    severity: 'INFO',
    ip_address: '203.0.113.5',
    message: 'Order placed for shipping address Paris',
    metadata: { plan: 'gold', region: 'eu', count: 3 },
    request_id: 'r1',
  },
  {
    user_id: 'u2',
    action: 'UPDATE',
    resource_type: 'order',
    resource_id: 'o1',
    severity: 'WARNING',
    ip_address: '203.0.113.77',
    message: 'Shipping address changed to Lyon',
    metadata: { plan: 'silver', region: 'eu' },
    request_id: 'r1',
  },
  {
    user_id: 'u1',
    action: 'DELETE',
    resource_type: 'order',
    resource_id: 'o2',
    severity: 'ERROR',
    ip_address: '198.51.100.9',
    message: 'Refund issued for order',
    metadata: { plan: 'gold', region: 'us', password: 'hunter2' },
    request_id: 'r2',
  },
  {
    user_id: 'u3',
    action: 'LOGIN',
    resource_type: 'session',
    resource_id: 's1',
    severity: 'INFO',
    ip_address: '2001:db8::1',
    message: 'User logged in from new device in Zürich: Привет, École',
    metadata: { mfa: true },
  },
  {
    user_id: 'u2',
    action: 'EXPORT',
    resource_type: 'report',
    resource_id: 'rep1',
    severity: 'CRITICAL',
    ip_address: '2001:db8:0:1::2',
    message: 'Quarterly report exported',
    metadata: { plan: 'gold', nested: { region: 'eu' } },
  },
  {
    user_id: 'u1',
    action: 'VIEW',
    resource_type: 'order',
    resource_id: 'o1',
    severity: 'INFO',
    message: 'Viewed order details',
    metadata: { region: 'apac' },
    request_id: 'r2',
  },
  {
    action: 'CUSTOM_ACTION',
    resource_type: 'order',
    resource_id: 'o3',
    severity: 'WARNING',
    ip_address: '10.1.2.3',
    message: 'Shipping label printed',
  },
  // One request whose events were submitted (sequence order) in a different order than their
  // occurred_at: causal order is the submission order.
  { user_id: 'u4', action: 'CREATE', resource_type: 'cart', resource_id: 'c1', request_id: 'r3' },
  { user_id: 'u4', action: 'UPDATE', resource_type: 'cart', resource_id: 'c1', request_id: 'r3' },
  { user_id: 'u4', action: 'DELETE', resource_type: 'cart', resource_id: 'c1', request_id: 'r3' },
];
const minutes = [0, 1, 2, 3, 4, 5, 6, 12, 10, 11];
const events = fixture.map((e, i) => ({ ...e, id: randomUUID(), occurred_at: at(minutes[i]!) }));
const ids = events.map((e) => e.id);
/** Fixture ids, newest first (the default order). */
const newest = (...indexes: number[]) =>
  [...indexes].sort((a, b) => minutes[b]! - minutes[a]!).map((i) => ids[i]);
const oldest = (...indexes: number[]) => newest(...indexes).reverse();

/** Every query runs inside the fixture's time window, which excludes the self-audit events of reads. */
const WINDOW = { from: at(0), to: at(20) };

let svc: TestService;
let admin: string;

async function search(query: Record<string, string>, token = admin) {
  const res = await http(svc.url, 'GET', `/api/v1/logs?${new URLSearchParams(query)}`, { token });
  expect(res.status, res.text).toBe(200);
  return res.body as { data: any[]; next_cursor: string | null; correlation?: unknown };
}

async function searchIds(query: Record<string, string>, token = admin) {
  const page = await search({ ...WINDOW, limit: '1000', ...query }, token);
  expect(page.data.every((e) => e.tenant_id === 'acme')).toBe(true);
  return page.data.map((e) => e.id);
}

beforeAll(async () => {
  svc = await startTestService([...QUERY_DAEMONS]);
  await createTenants(svc, ['acme', 'globex']);
  admin = await svc.token('acme', 'admin', 'acme-admin');
  await ingest(svc, 'acme', events);
  // Decoys: the same events (new ids) in another tenant.
  await ingest(
    svc,
    'globex',
    events.map(({ id: _id, ...e }) => e),
  );
  await waitStored(svc, 'acme', events.length);
  await waitStored(svc, 'globex', events.length);
});
afterAll(async () => svc?.stop());

describe('GET /logs full-text search (q)', () => {
  it.each([
    ['a word, case-insensitive', 'SHIPPING', newest(0, 1, 6)],
    ['a quoted phrase', '"shipping address"', newest(0, 1)],
    ['an exclusion', 'shipping -lyon', newest(0, 6)],
    ['OR', 'refund OR quarterly', newest(2, 4)],
    ['two words (AND)', 'order details', newest(5)],
    ['a metadata value, top-level or nested', 'gold', newest(0, 2, 4)],
    ['the user id', 'u3', newest(3)],
    ['the action', 'custom_action', newest(6)],
    // Case folding and word splitting beyond ASCII come from the database's locale (embedded:
    // the builtin C.UTF-8 provider, infra/db/embedded.ts).
    ['accented and Cyrillic words, any case', 'ZÜRICH école привет', newest(3)],
    ['a capitalized non-ASCII word', 'ПРИВЕТ', newest(3)],
    ['a masked secret (never indexed)', 'hunter2', []],
    ['the mask placeholder instead', 'redacted', newest(2)],
    ['SQL-looking input, as plain words', "' OR 1=1 --", []],
    ['a tenant name, as a plain word', "acme' OR tenant_id <> 'x", []],
    ['punctuation only', '"-"', []],
  ])('%s', async (_name, q, expected) => {
    expect(await searchIds({ q })).toEqual(expected);
  });
});

describe('GET /logs metadata.<key> filters', () => {
  it.each([
    ['one key', { 'metadata.plan': 'gold' }, newest(0, 2, 4)],
    ['two keys (AND)', { 'metadata.plan': 'gold', 'metadata.region': 'eu' }, newest(0)],
    ['top-level only: a nested value does not match', { 'metadata.region': 'eu' }, newest(0, 1)],
    ['a number, as text', { 'metadata.count': '3' }, newest(0)],
    ['a boolean, as text', { 'metadata.mfa': 'true' }, newest(3)],
    ['exact, not prefix', { 'metadata.plan': 'gol' }, []],
    ['case-sensitive', { 'metadata.plan': 'Gold' }, []],
    ['a masked secret by its value', { 'metadata.password': 'hunter2' }, []],
    ['a masked secret by its placeholder', { 'metadata.password': '[REDACTED]' }, newest(2)],
    ['a key nobody has', { 'metadata.nope': 'gold' }, []],
  ])('%s', async (_name, query, expected) => {
    expect(await searchIds(query)).toEqual(expected);
  });

  it.each([
    ['an empty key', 'metadata.=x', 'querystring/metadata.'],
    ['a key with a space', 'metadata.a%20b=x', 'querystring/metadata.a b'],
    ['a key with a quote', "metadata.plan'--=x", "querystring/metadata.plan'--"],
    ['an empty value', 'metadata.plan=', 'querystring/metadata.plan'],
  ])('rejects %s with 400', async (_name, qs, path) => {
    const res = await http(svc.url, 'GET', `/api/v1/logs?${qs}`, { token: admin });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
  });

  it('rejects more than 8 metadata filters and a value over 256 characters', async () => {
    const nine = Array.from({ length: 9 }, (_, i) => `metadata.k${i}=v`).join('&');
    const res = await http(svc.url, 'GET', `/api/v1/logs?${nine}`, { token: admin });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      error: { code: 'too_many_metadata_filters', message: 'at most 8 metadata.<key> filters are allowed' },
    });
    const eight = Array.from({ length: 8 }, (_, i) => `metadata.k${i}=v`).join('&');
    expect((await http(svc.url, 'GET', `/api/v1/logs?${eight}`, { token: admin })).status).toBe(200);
    const long = await http(svc.url, 'GET', `/api/v1/logs?metadata.plan=${'x'.repeat(257)}`, {
      token: admin,
    });
    expect(long.status).toBe(400);
  });
});

describe('GET /logs ip_address filter', () => {
  it.each([
    ['an exact IPv4 address', '203.0.113.5', newest(0)],
    ['an exact IPv4 address as a /32', '203.0.113.5/32', newest(0)],
    ['the same address mapped into IPv6', '::ffff:203.0.113.5', []],
    ['an IPv4 /24', '203.0.113.0/24', newest(0, 1)],
    ['an IPv4 /24 written with host bits', '203.0.113.77/24', newest(0, 1)],
    ['a range whose last address is one (.76-.77)', '203.0.113.76/31', newest(1)],
    ['a range written with host bits (.4-.5)', '203.0.113.5/31', newest(0)],
    ['a range whose first address is one (::2-::3)', '2001:db8:0:1::2/127', newest(4)],
    ['a range just before that one (::0-::1)', '2001:db8:0:1::/127', []],
    ['a range just after one (.78-.79)', '203.0.113.78/31', []],
    ['a range just before one (.0-.3)', '203.0.113.0/30', []],
    ['an IPv4 /8', '10.0.0.0/8', newest(6)],
    ['every IPv4 address', '0.0.0.0/0', newest(0, 1, 2, 6)],
    ['an exact IPv6 address', '2001:db8::1', newest(3)],
    ['an exact IPv6 address written out, as a /128', '2001:0DB8:0:0:0:0:0:1/128', newest(3)],
    ['an IPv6 /32', '2001:db8::/32', newest(3, 4)],
    ['an IPv6 /64 holding one of them', '2001:db8:0:1::/64', newest(4)],
    ['every IPv6 address', '::/0', newest(3, 4)],
    ['an address nobody used', '192.0.2.1', []],
  ])('%s', async (_name, ip, expected) => {
    expect(await searchIds({ ip_address: ip })).toEqual(expected);
  });

  it.each([
    'junk',
    '300.1.1.1',
    '10.0.0.0/33',
    '2001:db8::/129',
    'fe80::1%25eth0',
    '1.2.3.4/8/8',
    '1.2.3.4/',
    "1.2.3.4' OR '1'='1",
  ])('rejects %s with 400 invalid_ip_address', async (ip) => {
    const res = await http(svc.url, 'GET', `/api/v1/logs?ip_address=${encodeURIComponent(ip)}`, {
      token: admin,
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_ip_address');
  });
});

describe('GET /logs sort', () => {
  it('orders newest first by default and oldest first with sort=asc', async () => {
    const all = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    expect(await searchIds({})).toEqual(newest(...all));
    expect(await searchIds({ sort: 'desc' })).toEqual(newest(...all));
    expect(await searchIds({ sort: 'asc' })).toEqual(oldest(...all));
  });

  it('pages in either direction with no gap or repeat, and refuses a cursor from the other direction', async () => {
    const asc = await allPages(
      svc,
      admin,
      new URLSearchParams({ ...WINDOW, sort: 'asc', limit: '3' }).toString(),
    );
    expect(asc.map((e) => e.id)).toEqual(oldest(0, 1, 2, 3, 4, 5, 6, 7, 8, 9));
    const desc = await allPages(svc, admin, new URLSearchParams({ ...WINDOW, limit: '4' }).toString());
    expect(desc.map((e) => e.id)).toEqual(newest(0, 1, 2, 3, 4, 5, 6, 7, 8, 9));

    const first = await search({ ...WINDOW, limit: '2' });
    expect(first.next_cursor).not.toBeNull();
    const mixed = await http(
      svc.url,
      'GET',
      `/api/v1/logs?${new URLSearchParams({ ...WINDOW, sort: 'asc', cursor: first.next_cursor! })}`,
      { token: admin },
    );
    expect(mixed.status).toBe(400);
    expect(mixed.body.error.code).toBe('invalid_cursor');
  });

  it('rejects an unknown sort with 400', async () => {
    const res = await http(svc.url, 'GET', '/api/v1/logs?sort=sideways', { token: admin });
    expect(res.status).toBe(400);
  });
});

describe('GET /logs combined filters', () => {
  it.each([
    ['q and user_id', { q: 'shipping', user_id: 'u2' }, newest(1)],
    ['metadata and severity', { 'metadata.plan': 'gold', severity: 'ERROR,CRITICAL' }, newest(2, 4)],
    ['ip range and q', { ip_address: '203.0.113.0/24', q: 'paris' }, newest(0)],
    ['q and from/to', { q: 'shipping', from: at(1), to: at(6) }, newest(1)],
    [
      'everything, ascending',
      {
        action: 'CREATE,UPDATE',
        resource_type: 'order',
        'metadata.region': 'eu',
        ip_address: '203.0.113.0/24',
        q: '"shipping address"',
        sort: 'asc',
      },
      oldest(0, 1),
    ],
    ['filters that exclude each other', { q: 'refund', 'metadata.plan': 'silver' }, []],
  ])('%s', async (_name, query, expected) => {
    expect(await searchIds(query as Record<string, string>)).toEqual(expected);
  });

  it('keeps every filter across pages', async () => {
    const rows = await allPages(
      svc,
      admin,
      new URLSearchParams({
        ...WINDOW,
        q: 'order OR shipping OR gold',
        'metadata.plan': 'gold',
        limit: '1',
      }).toString(),
    );
    expect(rows.map((e) => e.id)).toEqual(newest(0, 2, 4));
  });
});

describe('GET /logs?request_id= correlation', () => {
  const r3 = { request_id: 'r3', count: 3, first_at: stored(10), last_at: stored(12), span_ms: 120_000 };

  it('returns the request in causal (sequence) order with a summary of the whole request', async () => {
    const page = await search({ request_id: 'r3' });
    expect(page.data.map((e) => e.id)).toEqual([ids[7], ids[8], ids[9]]);
    expect(page.data.map((e) => Number(e.sequence))).toEqual([8, 9, 10]);
    expect(page.correlation).toEqual(r3);
    expect(page.next_cursor).toBeNull();
  });

  it('summarizes the whole request on every page, and pages in sequence order', async () => {
    const first = await search({ request_id: 'r3', limit: '2' });
    expect(first.data.map((e) => e.id)).toEqual([ids[7], ids[8]]);
    expect(first.correlation).toEqual(r3);
    const second = await search({ request_id: 'r3', limit: '2', cursor: first.next_cursor! });
    expect(second.data.map((e) => e.id)).toEqual([ids[9]]);
    expect(second.correlation).toEqual(r3);
    expect(second.next_cursor).toBeNull();
  });

  it('describes the request even when other filters narrow the page', async () => {
    const page = await search({ request_id: 'r3', action: 'DELETE' });
    expect(page.data.map((e) => e.id)).toEqual([ids[9]]);
    expect(page.correlation).toEqual(r3);
  });

  it('reverses with sort=desc', async () => {
    const page = await search({ request_id: 'r3', sort: 'desc' });
    expect(page.data.map((e) => e.id)).toEqual([ids[9], ids[8], ids[7]]);
  });

  it('reports an unknown request as empty', async () => {
    const page = await search({ request_id: 'nope' });
    expect(page).toEqual({
      data: [],
      next_cursor: null,
      correlation: { request_id: 'nope', count: 0, first_at: null, last_at: null, span_ms: null },
    });
  });

  it('has no correlation without request_id, and refuses a time cursor in a correlation', async () => {
    const page = await search({ ...WINDOW, limit: '1' });
    expect(page).not.toHaveProperty('correlation');
    const res = await http(
      svc.url,
      'GET',
      `/api/v1/logs?request_id=r3&cursor=${encodeURIComponent(page.next_cursor!)}`,
      { token: admin },
    );
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_cursor');
  });

  it('counts only what a user-role caller may see', async () => {
    const u2 = await svc.token('acme', 'user', 'u2');
    const page = await search({ request_id: 'r1' }, u2);
    expect(page.data.map((e) => e.id)).toEqual([ids[1]]);
    expect(page.correlation).toEqual({
      request_id: 'r1',
      count: 1,
      first_at: stored(1),
      last_at: stored(1),
      span_ms: 0,
    });
  });
});

describe('GET /logs as the user role', () => {
  it('sees only its own events through every filter', async () => {
    const u1 = await svc.token('acme', 'user', 'u1');
    expect(await searchIds({ q: 'shipping' }, u1)).toEqual(newest(0));
    expect(await searchIds({ 'metadata.plan': 'gold' }, u1)).toEqual(newest(0, 2));
    expect(await searchIds({ ip_address: '203.0.113.0/24' }, u1)).toEqual(newest(0));
    expect(await searchIds({ user_id: 'u2' }, u1)).toEqual([]);
  });
});

describe('query-string hygiene', () => {
  it('rejects NUL in q with 400, and unknown parameters still with 400', async () => {
    const nul = await http(svc.url, 'GET', '/api/v1/logs?q=a%00b', { token: admin });
    expect(nul.status).toBe(400);
    expect(nul.body.error.details).toEqual([{ path: 'querystring/q', message: 'must not contain NUL' }]);
    const unknown = await http(svc.url, 'GET', '/api/v1/logs?meta.plan=gold', { token: admin });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.details).toEqual([
      { path: 'querystring/meta.plan', message: 'unknown parameter' },
    ]);
  });
});
