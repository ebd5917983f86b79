import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http, startTestService, type TestService } from '../test/harness.js';
import { encodeCursor } from './cursor.js';
import { createTenants, ingest, QUERY_DAEMONS, waitStored } from './test-support.js';

/**
 * Cross-tenant attempts from the attacker's side, through every parameter of every read route.
 * The victim (acme) holds events with distinctive values; the attacker (globex) has a few events
 * of its own. Whatever the attacker sends, it must see nothing of acme's: not a row, not a count,
 * not a different error.
 */
const T0 = Date.parse('2026-06-01T12:00:00Z');
const at = (m: number) => new Date(T0 + m * 60_000).toISOString();
const SECRET = 'victimsecretword';
const victim = Array.from({ length: 6 }, (_, i) => ({
  id: randomUUID(),
  occurred_at: at(i),
  user_id: i % 2 ? 'alice' : 'bob',
  action: 'UPDATE',
  resource_type: 'payroll',
  resource_id: `pay-${i}`,
  ip_address: '198.51.100.20',
  message: `${SECRET} payroll change ${i}`,
  metadata: { plan: 'gold', dept: 'finance' },
  request_id: 'victim-req',
}));
const own = Array.from({ length: 3 }, (_, i) => ({
  id: randomUUID(),
  occurred_at: at(10 + i),
  user_id: 'mallory',
  action: 'CREATE',
  resource_type: 'note',
  message: `own note ${i}`,
  metadata: { plan: 'free' },
}));
const victimIds = new Set(victim.map((e) => e.id as string));

let svc: TestService;
let attacker: string;

/** The rows of a search, get or export response (json, ndjson or csv). */
function rowsOf(res: { text: string; body: any; headers: Headers }): Record<string, unknown>[] {
  const type = res.headers.get('content-type') ?? '';
  if (type.startsWith('text/csv')) {
    const [header, ...lines] = res.text.split('\r\n').filter((l) => l !== '');
    const columns = header!.split(',');
    // Only the leading, never-quoted columns are needed here: tenant_id, id, ..., resource_type.
    return lines.map((l) =>
      Object.fromEntries(
        l
          .split(',')
          .slice(0, 9)
          .map((v, i) => [columns[i], v]),
      ),
    );
  }
  if (type.startsWith('application/x-ndjson'))
    return res.text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  if (Array.isArray(res.body)) return res.body;
  if (Array.isArray(res.body?.data)) return res.body.data;
  return res.body?.id ? [res.body] : [];
}

/**
 * Fails if any row of the response belongs to the victim, or if anything but the attacker's own
 * self-audit events (which quote what the attacker typed) mentions the victim's data.
 */
function expectNothingOfAcme(res: { status: number; text: string; body: any; headers: Headers }) {
  const rows = rowsOf(res);
  expect(rows.filter((e) => e.tenant_id !== 'globex')).toEqual([]);
  const others = JSON.stringify(rows.filter((e) => e.resource_type !== 'audit_log'));
  const errorText = rows.length === 0 ? res.text : '';
  for (const text of [others, errorText]) {
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain('payroll');
    for (const id of victimIds) expect(text).not.toContain(id);
  }
}

async function get(url: string, token = attacker) {
  return http(svc.url, 'GET', url, { token });
}

beforeAll(async () => {
  svc = await startTestService([...QUERY_DAEMONS]);
  await createTenants(svc, ['acme', 'globex']);
  await ingest(svc, 'acme', victim);
  await ingest(svc, 'globex', own);
  await waitStored(svc, 'acme', victim.length);
  await waitStored(svc, 'globex', own.length);
  attacker = await svc.token('globex', 'admin', 'mallory');
});
afterAll(async () => svc?.stop());

describe('cross-tenant reads reveal nothing', () => {
  it('by id: a victim id is exactly as unknown as a random one', async () => {
    const random = await get(`/api/v1/logs/${randomUUID()}`);
    for (const e of victim) {
      const res = await get(`/api/v1/logs/${e.id}`);
      expect(res.status).toBe(404);
      expect(res.body).toEqual(random.body);
      const upper = await get(`/api/v1/logs/${e.id.toUpperCase()}`);
      expect(upper.status).toBe(404);
    }
    // The victim itself can read them (the ids are real).
    const acme = await svc.token('acme', 'admin', 'owner');
    expect((await get(`/api/v1/logs/${victim[0]!.id}`, acme)).status).toBe(200);
  });

  it('by naming the tenant: 403 on every route, with or without other parameters', async () => {
    for (const url of [
      '/api/v1/logs?tenant_id=acme',
      '/api/v1/logs?tenant_id=acme&q=payroll',
      `/api/v1/logs/${victim[0]!.id}?tenant_id=acme`,
      '/api/v1/logs/export?tenant_id=acme&format=csv',
      '/api/v1/logs?tenant_id=nosuchtenant',
    ]) {
      const res = await get(url);
      expect(res.status, url).toBe(403);
      expect(res.body.error.code).toBe('forbidden_tenant');
      expectNothingOfAcme(res);
    }
  });

  it('with a cursor taken from the victim: it only positions a scan of the attacker’s own rows', async () => {
    const acme = await svc.token('acme', 'admin', 'owner');
    const page = await get('/api/v1/logs?limit=2&resource_type=payroll', acme);
    expect(page.body.data).toHaveLength(2);
    const stolen = page.body.next_cursor as string;
    const res = await get(`/api/v1/logs?cursor=${encodeURIComponent(stolen)}&limit=100`);
    expect(res.status).toBe(200);
    expectNothingOfAcme(res);
    // A forged cursor far in the future walks the attacker's rows, nothing else.
    const forged = encodeCursor({ occurredAt: '9999-01-01T00:00:00.000000Z', seq: '9223372036854775807' });
    const walked = await get(`/api/v1/logs?cursor=${forged}&limit=1000&to=${at(20)}`);
    expect(walked.body.data.map((e: any) => e.id)).toEqual([...own].reverse().map((e) => e.id));
  });

  it.each([
    ['a victim word', SECRET],
    ['a victim resource type', 'payroll'],
    ['a SQL tautology', "' OR 1=1 --"],
    ['a tenant-looking clause', "x' OR tenant_id = 'acme"],
    ['a phrase with operators', '"victimsecretword" OR payroll OR -note'],
    ['a very long query', `${SECRET} `.repeat(30)],
  ])('with q = %s', async (_name, q) => {
    const res = await get(`/api/v1/logs?q=${encodeURIComponent(q)}&limit=1000`);
    expect(res.status).toBe(200);
    expectNothingOfAcme(res);
  });

  it('with metadata filters the victim uses (tokens are per tenant) and crafted keys', async () => {
    const same = await get('/api/v1/logs?metadata.dept=finance&limit=1000');
    expect(same.status).toBe(200);
    expect(same.body.data).toEqual([]);
    const gold = await get('/api/v1/logs?metadata.plan=gold&limit=1000');
    expect(gold.body.data).toEqual([]);
    const free = await get(`/api/v1/logs?metadata.plan=free&limit=1000&to=${at(20)}`);
    expect(free.body.data.map((e: any) => e.id).sort()).toEqual(own.map((e) => e.id).sort());
    for (const crafted of [
      "metadata.plan'%20OR%20'1'='1=x",
      'metadata.tenant_id=acme&metadata.=x',
      'metadata..=x',
    ]) {
      const res = await get(`/api/v1/logs?${crafted}`);
      expect(res.status).toBe(crafted === 'metadata..=x' ? 200 : 400);
      expectNothingOfAcme(res);
    }
  });

  it('with the victim’s ip range and request id', async () => {
    const ip = await get('/api/v1/logs?ip_address=198.51.100.0/24&limit=1000');
    expect(ip.status).toBe(200);
    expect(ip.body.data).toEqual([]);
    const all = await get('/api/v1/logs?ip_address=0.0.0.0/0&limit=1000');
    expectNothingOfAcme(all);
    const req = await get('/api/v1/logs?request_id=victim-req');
    expect(req.body).toEqual({
      data: [],
      next_cursor: null,
      correlation: { request_id: 'victim-req', count: 0, first_at: null, last_at: null, span_ms: null },
    });
  });

  it('through export, in every format and with every filter', async () => {
    for (const format of ['json', 'ndjson', 'csv']) {
      for (const extra of [
        '',
        `&q=${SECRET}`,
        '&metadata.dept=finance',
        '&ip_address=198.51.100.20',
        '&request_id=victim-req',
      ]) {
        const res = await get(`/api/v1/logs/export?format=${format}${extra}`);
        expect(res.status).toBe(200);
        expect(res.headers.get('content-disposition')).toMatch(/filename="auditlog-globex-/);
        expectNothingOfAcme(res);
      }
    }
  });
});

describe('the user role reveals nothing of other users, through any parameter', () => {
  it('sees only its own events whatever it filters on', async () => {
    const bob = await svc.token('acme', 'user', 'bob');
    const mine: string[] = victim.filter((e) => e.user_id === 'bob').map((e) => e.id);
    const urls = [
      `/api/v1/logs?to=${at(20)}&limit=1000`,
      `/api/v1/logs?user_id=alice`,
      `/api/v1/logs?q=${SECRET}&to=${at(20)}`,
      `/api/v1/logs?metadata.dept=finance&to=${at(20)}`,
      `/api/v1/logs?request_id=victim-req`,
      `/api/v1/logs/export?format=ndjson&to=${at(20)}`,
    ];
    for (const url of urls) {
      const res = await get(url, bob);
      expect(res.status, url).toBe(200);
      const rows: any[] = url.includes('/export')
        ? res.text
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l))
        : res.body.data;
      expect(
        rows.every((e) => e.user_id === 'bob'),
        url,
      ).toBe(true);
      expect(rows.map((e) => e.id).filter((id: string) => victimIds.has(id) && !mine.includes(id))).toEqual(
        [],
      );
    }
    const corr = await get('/api/v1/logs?request_id=victim-req', bob);
    expect(corr.body.correlation.count).toBe(mine.length);
    const alices = victim.find((e) => e.user_id === 'alice')!;
    expect((await get(`/api/v1/logs/${alices.id}`, bob)).status).toBe(404);
  });
});
