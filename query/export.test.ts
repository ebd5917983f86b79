import { randomUUID } from 'node:crypto';
import { Duplex } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http, startTestService, type TestService } from '../test/harness.js';
import { utcTimestamp } from './decode.js';
import { exportEvents } from './export.js';
import { EXPORT_FORMATS } from './export-format.js';
import { createTenants, ingest, QUERY_DAEMONS, waitStored } from './test-support.js';

/** Exports: exact content in every format, headers, role rules, and flat memory on a large set. */
const T0 = Date.parse('2026-05-01T10:00:00Z');
const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();
const stored = (minutes: number) => at(minutes).replace(/\.(\d{3})Z$/, '.$1000Z');

const ID = ['0193a3a5-0000-7000-8000-000000000001', '0193a3a5-0000-7000-8000-000000000002'] as const;
const ID2 = '0193a3a5-0000-7000-8000-000000000003';
const ID3 = '0193a3a5-0000-7000-8000-000000000004';

/** Fields chosen to exercise CSV quoting and formula neutralization. */
const fixture = [
  {
    id: ID[0],
    occurred_at: at(0),
    user_id: 'u1',
    session_id: 's1',
    action: 'CREATE',
    resource_type: 'order',
    resource_id: 'o-1',
    severity: 'INFO',
    ip_address: '203.0.113.5',
    user_agent: 'Mozilla/5.0 (X11; Linux)',
    message: 'He said "hi", then left\r\nline two',
    before: { a: 1 },
    after: { a: 2, b: 'x,y' },
    metadata: { plan: 'gold' },
    request_id: 'r1',
  },
  {
    id: ID[1],
    occurred_at: at(1),
    user_id: '=cmd|/c calc',
    action: 'UPDATE',
    resource_type: 'order',
    resource_id: '-5',
    severity: 'WARNING',
    message: '+1 555 0100',
    metadata: { formula: '=1+1' },
  },
  {
    id: ID2,
    occurred_at: at(2),
    user_id: 'u2',
    action: 'DELETE',
    resource_type: 'invoice',
    user_agent: '\tTabbed',
    message: '@SUM(A1:A9)',
  },
  {
    id: ID3,
    occurred_at: at(3),
    user_id: 'u1',
    action: 'VIEW',
    resource_type: 'order',
    message: '\rcarriage',
  },
];
const WINDOW = { from: at(0), to: at(10) };

let svc: TestService;
let admin: string;

async function exportText(query: Record<string, string>, token = admin) {
  return http(svc.url, 'GET', `/api/v1/logs/export?${new URLSearchParams(query)}`, { token });
}

async function searchAll(query: Record<string, string>, token = admin) {
  const res = await http(svc.url, 'GET', `/api/v1/logs?${new URLSearchParams({ ...query, limit: '1000' })}`, {
    token,
  });
  expect(res.status).toBe(200);
  return res.body.data as any[];
}

beforeAll(async () => {
  svc = await startTestService([...QUERY_DAEMONS]);
  await createTenants(svc, ['acme', 'globex', 'bulk']);
  admin = await svc.token('acme', 'admin', 'acme-admin');
  await ingest(svc, 'acme', fixture);
  await ingest(
    svc,
    'globex',
    fixture.map(({ id: _id, ...e }) => e),
  );
  await waitStored(svc, 'acme', fixture.length);
  await waitStored(svc, 'globex', fixture.length);
});
afterAll(async () => svc?.stop());

describe('GET /logs/export formats', () => {
  it('json: one array, byte-for-byte the events search returns, with attachment headers', async () => {
    const res = await exportText({ ...WINDOW, format: 'json' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('content-disposition')).toMatch(
      /^attachment; filename="auditlog-acme-\d{8}T\d{6}Z\.json"$/,
    );
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('x-request-id')).toMatch(/.+/);
    const expected = await searchAll(WINDOW);
    expect(expected.map((e) => e.id)).toEqual([ID3, ID2, ID[1], ID[0]]);
    // One event per line between the brackets (key order may differ from the search response's).
    const lines = res.text.split('\n');
    expect([lines[0], ...lines.slice(-2)]).toEqual(['[', ']', '']);
    expect(
      lines.slice(1, -2).map((l, i) => JSON.parse(i < expected.length - 1 ? l.slice(0, -1) : l)),
    ).toEqual(expected);
    expect(JSON.parse(res.text)).toEqual(expected);
  });

  it('ndjson: one event per line, in the same order as search, honouring filters and sort', async () => {
    const query = { ...WINDOW, resource_type: 'order', sort: 'asc' };
    const res = await exportText({ ...query, format: 'ndjson' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    expect(res.headers.get('content-disposition')).toMatch(
      /^attachment; filename="auditlog-acme-\d{8}T\d{6}Z\.ndjson"$/,
    );
    const expected = await searchAll(query);
    expect(expected.map((e) => e.id)).toEqual([ID[0], ID[1], ID3]);
    const lines = res.text.split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.map((l) => JSON.parse(l))).toEqual(expected);
  });

  it('passes every filter value to the COPY as search passes it: lists, quotes, backslashes, braces', async () => {
    // Filter values reach the binary COPY as transaction settings (COPY takes no parameters), a
    // list as an array literal (see scoped.test.ts for quotes and braces inside one).
    const cases: Record<string, string>[] = [
      { action: 'CREATE,VIEW,DELETE' },
      { user_id: 'a"b\\c{x},NULL' },
      { user_id: '=cmd|/c calc' },
      { user_id: 'u1', severity: 'INFO,WARNING', resource_type: 'order' },
      { request_id: 'r1' },
    ];
    for (const filters of cases) {
      const query = { ...WINDOW, ...filters, sort: 'asc' };
      const res = await exportText({ ...query, format: 'ndjson' });
      expect({ filters, status: res.status, body: res.status === 200 ? '' : res.text }).toEqual({
        filters,
        status: 200,
        body: '',
      });
      const expected = await searchAll(query);
      const lines = res.text.split('\n').slice(0, -1);
      expect({ filters, events: lines.map((l) => JSON.parse(l)) }).toEqual({ filters, events: expected });
    }
    // They matched something.
    expect(
      (await searchAll({ ...WINDOW, action: 'CREATE,VIEW,DELETE', sort: 'asc' })).map((e) => e.id),
    ).toEqual([ID[0], ID2, ID3]);
  });

  it('csv: RFC 4180 with a header row, quoting, CRLF and formula neutralization', async () => {
    const res = await exportText({ ...WINDOW, sort: 'asc', format: 'csv' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-disposition')).toMatch(
      /^attachment; filename="auditlog-acme-\d{8}T\d{6}Z\.csv"$/,
    );
    const received = Object.fromEntries((await searchAll(WINDOW)).map((e) => [e.id, e.received_at]));
    const expected = [
      'tenant_id,id,sequence,occurred_at,received_at,user_id,session_id,action,resource_type,resource_id,severity,ip_address,user_agent,message,request_id,before,after,metadata',
      `acme,${ID[0]},1,${stored(0)},${received[ID[0]]},u1,s1,CREATE,order,o-1,INFO,203.0.113.5,Mozilla/5.0 (X11; Linux),` +
        `"He said ""hi"", then left\r\nline two",r1,"{""a"":1}","{""a"":2,""b"":""x,y""}","{""plan"":""gold""}"`,
      `acme,${ID[1]},2,${stored(1)},${received[ID[1]]},'=cmd|/c calc,,UPDATE,order,'-5,WARNING,,,'+1 555 0100,,,,` +
        `"{""formula"":""=1+1""}"`,
      `acme,${ID2},3,${stored(2)},${received[ID2]},u2,,DELETE,invoice,,INFO,,'\tTabbed,'@SUM(A1:A9),,,,`,
      `acme,${ID3},4,${stored(3)},${received[ID3]},u1,,VIEW,order,,INFO,,,"'\rcarriage",,,,`,
    ];
    expect(res.text).toBe(`${expected.join('\r\n')}\r\n`);
  });

  it('exports an empty result as a valid empty document in every format', async () => {
    const empty = { ...WINDOW, user_id: 'nobody' };
    expect((await exportText({ ...empty, format: 'json' })).text).toBe('[\n]\n');
    expect((await exportText({ ...empty, format: 'ndjson' })).text).toBe('');
    const csv = await exportText({ ...empty, format: 'csv' });
    expect(csv.text.split('\r\n')).toEqual([expect.stringMatching(/^tenant_id,id,sequence,/), '']);
  });

  it('defaults to json, and is not captured by /logs/:id', async () => {
    const res = await exportText(WINDOW);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(JSON.parse(res.text)).toHaveLength(4);
    const bad = await exportText({ format: 'xml' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('validation_failed');
  });

  it('applies full-text, metadata and ip filters like search', async () => {
    const res = await exportText({
      ...WINDOW,
      q: 'hi',
      'metadata.plan': 'gold',
      ip_address: '203.0.113.0/24',
      format: 'ndjson',
    });
    expect(
      res.text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).id),
    ).toEqual([ID[0]]);
    // One address is matched with `=`, a range as its first and last address; both exported by
    // binary COPY, and each must equal search.
    for (const ip_address of ['203.0.113.5', '203.0.113.5/32', '203.0.113.0/24']) {
      const filtered = await exportText({ ...WINDOW, ip_address, format: 'ndjson' });
      const rows = filtered.text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(rows.map((r) => r.id)).toEqual((await searchAll({ ...WINDOW, ip_address })).map((e) => e.id));
      expect(rows.map((r) => r.id)).toContain(ID[0]);
    }
    const junk = await exportText({ ip_address: 'junk', format: 'csv' });
    expect(junk.status).toBe(400);
    expect(junk.body.error.code).toBe('invalid_ip_address');
  });
});

describe('export timestamps', () => {
  it('are exactly what to_char prints for every timestamp PostgreSQL can hold', async () => {
    const client = await svc.ctx.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT set_config('datestyle', 'ISO', true)`);
      const { rows } = await client.query<{ iso: string; expected: string }>(
        `SELECT (t AT TIME ZONE 'UTC')::text AS iso,
                to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS expected
           FROM unnest($1::timestamptz[]) AS t`,
        [
          [
            '2026-05-01T10:00:00Z',
            '2026-05-01T10:00:00.5+02:00',
            '2026-05-01T23:59:59.123456Z',
            '2026-05-01T10:00:00.000001Z',
            '2026-05-01T10:00:00.12Z',
            '0001-01-01T00:00:00Z',
            '9999-12-31T23:59:59.999999Z',
            '10000-01-01 00:00:00.25Z',
            '0044-03-15 12:00:00 BC',
          ],
        ],
      );
      expect(rows.map((r) => utcTimestamp(r.iso))).toEqual(rows.map((r) => r.expected));
      expect(() => utcTimestamp('infinity')).toThrow();
      expect(() => utcTimestamp('01/05/2026 10:00:00 UTC')).toThrow();
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});

describe('GET /logs/export access', () => {
  it('gives the user role only its own events, and the auditor everything', async () => {
    const u1 = await svc.token('acme', 'user', 'u1');
    const mine = await exportText({ ...WINDOW, format: 'ndjson' }, u1);
    expect(
      mine.text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).id),
    ).toEqual([ID3, ID[0]]);
    const auditor = await svc.token('acme', 'auditor', 'aud');
    const all = await exportText({ ...WINDOW, format: 'ndjson' }, auditor);
    expect(all.text.trim().split('\n')).toHaveLength(4);
  });

  it('refuses another tenant, and makes a platform admin name one', async () => {
    const other = await exportText({ tenant_id: 'globex', format: 'json' });
    expect(other.status).toBe(403);
    expect(other.body.error.code).toBe('forbidden_tenant');
    const platform = await svc.token('*', 'admin', 'root');
    const unnamed = await exportText({ format: 'json' }, platform);
    expect(unnamed.status).toBe(400);
    expect(unnamed.body.error.code).toBe('tenant_required');
    const named = await exportText({ ...WINDOW, tenant_id: 'globex', format: 'json' }, platform);
    expect(named.status).toBe(200);
    expect(named.headers.get('content-disposition')).toMatch(/filename="auditlog-globex-/);
    const rows = JSON.parse(named.text) as any[];
    expect(rows.map((e) => e.tenant_id)).toEqual(['globex', 'globex', 'globex', 'globex']);
    expect(rows.map((e) => e.id).filter((id) => [...ID, ID2, ID3].includes(id))).toEqual([]);
  });

  it('answers 401 without a token', async () => {
    const res = await http(svc.url, 'GET', '/api/v1/logs/export?format=csv');
    expect(res.status).toBe(401);
  });
});

describe('GET /logs/export at scale', () => {
  const N = 20_000;
  const B = Date.parse('2026-05-10T00:00:00Z');

  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  /**
   * The JS heap after a collection: where rows, decoded events and formatted text would pile up
   * if an export were materialized. (Output stuck in stream buffers is checked on the body itself,
   * below: the buffers' backing stores are freed too lazily to measure here.)
   */
  const used = () => {
    gc();
    return process.memoryUsage().heapUsed;
  };

  /**
   * Resolves when the export's transaction has ended (everything produced), or when its backend
   * has sat idle inside the transaction for 10 consecutive polls (waiting for the client).
   */
  async function serverBlockedOrDone(): Promise<'blocked' | 'done'> {
    let idle = 0;
    for (;;) {
      // The export's statement: a cursor's FETCH or its rows' read (between them the backend is
      // idle in its transaction), or a COPY (blocked on the socket: waiting to write to the client).
      const { rows } = await svc.ctx.pool.query<{ state: string; wait_event: string | null }>(
        `SELECT state, wait_event FROM pg_stat_activity
          WHERE datname = current_database() AND xact_start IS NOT NULL AND pid <> pg_backend_pid()
            AND (query LIKE 'FETCH % FROM scoped_%' OR query LIKE '%auditlog_rows_at(%'
                 OR query LIKE 'COPY (SELECT %')`,
      );
      if (rows.length === 0) return 'done';
      const { state, wait_event } = rows[0]!;
      idle = state === 'idle in transaction' || wait_event === 'ClientWrite' ? idle + 1 : 0;
      if (idle >= 10) return 'blocked';
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The 20,000 events, ingested once for both tests: their ids in time order and stored sequences. */
  let loaded: Promise<{ ids: string[]; seqOf: Map<string, string> }> | undefined;
  const bulk = () => {
    loaded ??= (async () => {
      // ~1.1 KB per row, so the export (~23 MB) dwarfs what a flat stream may hold at once.
      const filler = 'lorem ipsum dolor sit amet '.repeat(32);
      const ids = Array.from({ length: N }, () => randomUUID());
      // Built and sent inside a function, so the 20k event objects are garbage before the baseline.
      await (async () => {
        const events = ids.map((id, i) => ({
          id,
          occurred_at: new Date(B + i * 1000).toISOString(),
          user_id: `u-${i % 50}`,
          action: 'UPDATE',
          resource_type: 'document',
          resource_id: `doc-${i}`,
          message: `${i} ${filler}`,
          metadata: { n: i, plan: i % 2 ? 'gold' : 'free' },
        }));
        await ingest(svc, 'bulk', events);
      })();
      await waitStored(svc, 'bulk', N);
      // Sequence numbers as stored, to check each exported row against (read before the baseline).
      const seqOf = await (async () => {
        const { rows } = await svc.ctx.pool.query<{ id: string; seq: string }>(
          `SELECT id::text AS id, seq::text AS seq FROM events WHERE tenant_id = 'bulk'`,
        );
        return new Map(rows.map((r) => [r.id, r.seq]));
      })();
      expect(seqOf.size).toBe(N);
      return { ids, seqOf };
    })();
    return loaded;
  };

  /**
   * Both read paths: binary COPY (time filters only) and the key cursor (a full-text filter that
   * every row matches).
   */
  const READ_PATHS: [string, Record<string, string>][] = [
    ['binary COPY', {}],
    ['key cursor', { q: 'lorem' }],
  ];

  it.each(READ_PATHS)(
    `streams ${N.toLocaleString('en')} rows exactly by %s, with memory that does not grow with the export`,
    async (_, extra) => {
      const { ids, seqOf } = await bulk();

      const token = await svc.token('bulk', 'auditor', 'exporter');
      const qs = new URLSearchParams({
        from: new Date(B).toISOString(),
        to: new Date(B + N * 1000).toISOString(),
        sort: 'asc',
        format: 'ndjson',
        ...extra,
      });
      // Warm up (pool connection buffers, compiled code) with one full export, so the baseline
      // below is the steady state.
      const warmed = await (async () => {
        const warm = await fetch(`${svc.url}/api/v1/logs/export?${qs}`, {
          headers: { authorization: `Bearer ${token}` },
        });
        return (await warm.arrayBuffer()).byteLength;
      })();
      expect(warmed).toBeGreaterThan(20_000_000);
      const baseline = used();
      const res = await fetch(`${svc.url}/api/v1/logs/export?${qs}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let pending = '';
      let line = 0;
      let bytes = 0;
      let nextSample = 0;
      let peak = 0;
      let stalled: number | undefined;

      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        bytes += value.byteLength;
        pending += decoder.decode(value, { stream: true });
        let nl = pending.indexOf('\n');
        while (nl >= 0) {
          const event = JSON.parse(pending.slice(0, nl));
          // Exact content, row by row: order, id, stored sequence and the decrypted metadata.
          if (
            event.id !== ids[line] ||
            event.sequence !== seqOf.get(ids[line]!) ||
            event.metadata.n !== line
          ) {
            expect({ line, id: event.id, sequence: event.sequence, n: event.metadata.n }).toEqual({
              line,
              id: ids[line],
              sequence: seqOf.get(ids[line]!),
              n: line,
            });
          }
          line++;
          pending = pending.slice(nl + 1);
          nl = pending.indexOf('\n');
        }
        if (stalled === undefined && bytes > 1_000_000) {
          // A slow client: stop reading until the server is either blocked (backpressure) or done.
          // Done is no failure by itself: the sockets' kernel buffers, autotuned up to 32 MB here
          // (tcp_rmem), may take the whole rest of the export. What must not happen is the rest
          // sitting in this process (the unread body is checked without sockets further down).
          await serverBlockedOrDone();
          stalled = used() - baseline;
        }
        if (bytes >= nextSample) {
          peak = Math.max(peak, used() - baseline);
          nextSample = bytes + 2_000_000;
        }
      }
      expect(pending).toBe('');
      expect(line).toBe(N);
      expect(bytes).toBeGreaterThan(20_000_000);
      // Generous bounds, far below the export's size: memory is bounded by one chunk, not the result.
      expect(stalled).toBeDefined();
      expect(stalled).toBeLessThan(10_000_000);
      expect(peak).toBeLessThan(10_000_000);
    },
    300_000,
  );

  // The same two read paths. The first check is only a precondition (the export is still running
  // when the client goes away) where it can be relied on: a key cursor FETCHes on demand, so with
  // ~20 MB unsent its backend must be waiting; a COPY's output may all fit in the socket buffers
  // between PostgreSQL and this process (up to 32 MB here), so its statement may already be done
  // while the service has not read the rest.
  it.each([
    ['binary COPY', {}, ['blocked', 'done']],
    ['key cursor', { q: 'lorem' }, ['blocked']],
  ])(
    'ends the read when the client goes away mid-export by %s, and keeps serving',
    async (_, extra, before) => {
      await bulk();
      const token = await svc.token('bulk', 'auditor', 'exporter');
      const qs = new URLSearchParams({
        from: new Date(B).toISOString(),
        to: new Date(B + N * 1000).toISOString(),
        ...extra,
      });
      const abort = new AbortController();
      const res = await fetch(`${svc.url}/api/v1/logs/export?${qs}&format=csv`, {
        headers: { authorization: `Bearer ${token}` },
        signal: abort.signal,
      });
      const reader = res.body!.getReader();
      await reader.read();
      expect(before).toContain(await serverBlockedOrDone());
      abort.abort();
      await reader.read().catch(() => {});
      // The export's session ends (a COPY's connection is discarded: it cannot be rolled back).
      for (let i = 0; (await serverBlockedOrDone()) !== 'done'; i++) {
        expect(i).toBeLessThan(50);
        await new Promise((r) => setTimeout(r, 100));
      }
      const after = await fetch(`${svc.url}/api/v1/logs/export?${qs}&format=ndjson`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(after.status).toBe(200);
      expect((await after.text()).split('\n')).toHaveLength(N + 1);
    },
    120_000,
  );

  // Backpressure without sockets in the way (their kernel buffers may take a whole export, see
  // above): an export body nobody reads holds at most a buffer or two, and the service reads no
  // further than that (a key cursor's backend waits; a COPY's rows stay unread in its socket).
  it.each(READ_PATHS)(
    'holds an unread export body by %s to a few buffers, then delivers all of it',
    async (_, extra) => {
      await bulk();
      const filters = { from: new Date(B).toISOString(), to: new Date(B + N * 1000).toISOString(), ...extra };
      const baseline = used();
      const body = await exportEvents(
        svc.ctx,
        { tenantId: 'bulk' },
        filters,
        'time-asc',
        EXPORT_FORMATS.ndjson,
      );
      const state = await serverBlockedOrDone();
      if ('q' in extra) expect(state).toBe('blocked');
      // A few 64 KB output buffers at most: each side of the body (a PassThrough) stops one write
      // past its 64 KB high-water mark (without backpressure it would hold the whole ~23 MB export).
      expect(body).toBeInstanceOf(Duplex);
      const held = body.readableLength + (body as Duplex).writableLength;
      expect(held).toBeLessThanOrEqual(512 * 1024);
      expect(used() - baseline).toBeLessThan(10_000_000);
      let lines = 0;
      for await (const chunk of body) for (const byte of chunk as Buffer) if (byte === 10) lines++;
      expect(lines).toBe(N);
    },
    120_000,
  );
});

describe('GET /logs/export and shutdown', () => {
  it('cuts a stalled export when the server stops, instead of waiting for the client forever', async () => {
    const own = await startTestService([...QUERY_DAEMONS]);
    try {
      await createTenants(own, ['acme']);
      // ~24 MB: more than the socket buffers between the service and a stopped client take.
      const big = 'x'.repeat(4000);
      await ingest(
        own,
        'acme',
        Array.from({ length: 6000 }, (_, i) => ({
          action: 'CREATE',
          resource_type: 'doc',
          message: `${i} ${big}`,
        })),
      );
      await waitStored(own, 'acme', 6000);
      const token = await own.token('acme', 'auditor', 'slow-reader');
      const res = await fetch(`${own.url}/api/v1/logs/export?format=ndjson&resource_type=doc`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      expect((await reader.read()).done).toBe(false);
      // The client now stops reading with ~24 MB still to come. Stopping must still complete.
      await own.stop();
      let received = 0;
      const outcome = await (async () => {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return 'complete';
          received += value.byteLength;
        }
      })().catch(() => 'broken');
      expect(outcome).toBe('broken');
      expect(received).toBeLessThan(20_000_000);
    } finally {
      await own.stop();
    }
  }, 300_000);
});
