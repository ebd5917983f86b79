import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { configureFromEnv } from '../../infra/config.js';
import { type Context, createContext } from '../../infra/context.js';
import type { Batch, PersistedEvent, SealedEvent } from '../../infra/schema/batch.js';
import { createTestDatabase, tempDir, testEnv } from '../../test/harness.js';
import { copyBytea, copyField, copyTokenArray } from './copy-text.js';
import { persistStage } from './handler.js';

let ctx: Context;
let dataDir: string;
const persist = persistStage(false);
const forwarding = persistStage(true);

beforeAll(async () => {
  dataDir = tempDir();
  const config = configureFromEnv(testEnv(await createTestDatabase(), dataDir, { PG_POOL_MAX: '12' }));
  ctx = await createContext(config, { daemon: 'persist-test', log: pino({ level: 'silent' }) });
});
beforeEach(async () => {
  await ctx.pool.query('TRUNCATE events, event_ids');
  await ctx.pool.query('DELETE FROM tenants');
  await ctx.pool.query(`INSERT INTO tenants (id, name) VALUES ('acme', 'Acme'), ('globex', 'Globex')`);
});
afterAll(async () => {
  await ctx?.close();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

function event(tenant: string, overrides: Partial<SealedEvent> = {}): SealedEvent {
  return {
    tenant_id: tenant,
    id: randomUUID(),
    occurred_at: '2026-11-28T10:15:00.123456Z',
    received_at: '2026-11-28T10:15:01Z',
    action: 'UPDATE',
    resource_type: 'order',
    severity: 'INFO',
    key_id: 1,
    meta_idx: [],
    meta_text: '',
    ...overrides,
  };
}

const batch = (tenant: string, events: SealedEvent[]): Batch<SealedEvent> => ({
  v: 1,
  tenant_id: tenant,
  events,
});

async function stored(tenant: string) {
  const { rows } = await ctx.pool.query<{ id: string; seq: string }>(
    'SELECT id::text AS id, seq::text AS seq FROM events WHERE tenant_id = $1 ORDER BY events.seq',
    [tenant],
  );
  return rows;
}

describe('copy text encoding', () => {
  it('escapes exactly the characters COPY treats specially', () => {
    expect(copyField(null)).toBe('\\N');
    expect(copyField(undefined)).toBe('\\N');
    expect(copyField(42)).toBe('42');
    expect(copyField('plain')).toBe('plain');
    expect(copyField('a\tb\nc\rd\\e')).toBe('a\\tb\\nc\\rd\\\\e');
    expect(copyField('\\N')).toBe('\\\\N');
    expect(copyBytea(undefined)).toBe('\\N');
    expect(copyBytea(Buffer.from([0, 255, 16]).toString('base64'))).toBe('\\\\x00ff10');
    expect(copyTokenArray(['a-b', 'C_d'])).toBe('{a-b,C_d}');
    expect(copyTokenArray([])).toBe('{}');
    expect(() => copyTokenArray(['a,b'])).toThrow('array token outside the safe alphabet');
    expect(() => copyTokenArray(['"x"'])).toThrow('array token outside the safe alphabet');
  });
});

describe('persist stage', () => {
  it('round-trips every awkward character exactly through COPY', async () => {
    const awkward = [
      'tab\there',
      'line\nbreak and\r\nwindows',
      'back\\slash \\N \\. \\t literal',
      '\\',
      '\\.',
      'trailing backslash \\',
      'unicode: ünïcödé 日本語 emoji 🧾👩‍💻 combining é',
      'quotes " \' and , { } [ ] ( )',
      '\u2028\u2029 separators and \u0001\u001f controls',
      ' leading and trailing spaces ',
      '',
    ];
    const events = awkward.map((message, i) =>
      event('acme', {
        message,
        user_id: `user\t${i}`,
        user_agent: message,
        request_id: `r\\${i}`,
        resource_id: `o\n${i}`,
      }),
    );
    await persist.handle([batch('acme', events)], ctx);
    const { rows } = await ctx.pool.query(
      `SELECT id::text AS id, message, user_id, user_agent, request_id, resource_id FROM events WHERE tenant_id = 'acme'`,
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    events.forEach((e, i) => {
      expect(byId.get(e.id)).toEqual({
        id: e.id,
        message: awkward[i],
        user_id: `user\t${i}`,
        user_agent: awkward[i],
        request_id: `r\\${i}`,
        resource_id: `o\n${i}`,
      });
    });
  });

  it('stores NULL for absent optional fields and keeps every column value', async () => {
    const sealed = Buffer.from('not really ciphertext').toString('base64');
    const full = event('acme', {
      user_id: 'u-1',
      session_id: 's-1',
      resource_id: 'o-1',
      severity: 'CRITICAL',
      ip_address: '2001:db8::1',
      user_agent: 'curl/8',
      message: 'hello',
      request_id: 'req-1',
      key_id: 3,
      sealed,
      meta_idx: ['tok-1', 'tok_2'],
      meta_text: 'gold searchable',
    });
    const bare = event('acme', { occurred_at: '1999-06-15T23:59:59.999999Z' });
    await persist.handle([batch('acme', [full, bare])], ctx);
    const { rows } = await ctx.pool.query(
      `SELECT id::text AS id, seq::text AS seq,
              to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS occurred_at,
              user_id, session_id, resource_id, severity, host(ip_address) AS ip, user_agent, message,
              request_id, key_id, sealed, meta_idx, tsv @@ to_tsquery('simple', 'gold') AS meta_searchable
         FROM events WHERE tenant_id = 'acme' ORDER BY seq`,
    );
    expect(rows).toEqual([
      {
        id: full.id,
        seq: '1',
        occurred_at: '2026-11-28T10:15:00.123456',
        user_id: 'u-1',
        session_id: 's-1',
        resource_id: 'o-1',
        severity: 'CRITICAL',
        ip: '2001:db8::1',
        user_agent: 'curl/8',
        message: 'hello',
        request_id: 'req-1',
        key_id: 3,
        sealed: Buffer.from('not really ciphertext'),
        meta_idx: ['tok-1', 'tok_2'],
        meta_searchable: true,
      },
      {
        id: bare.id,
        seq: '2',
        occurred_at: '1999-06-15T23:59:59.999999',
        user_id: null,
        session_id: null,
        resource_id: null,
        severity: 'INFO',
        ip: null,
        user_agent: null,
        message: null,
        request_id: null,
        key_id: 1,
        sealed: null,
        meta_idx: [],
        meta_searchable: false,
      },
    ]);
    // The masked metadata text feeds the index only; no column keeps it.
    const { rows: raw } = await ctx.pool.query(`SELECT events::text AS row FROM events WHERE id = $1`, [
      full.id,
    ]);
    expect(raw[0].row).not.toContain('gold searchable');
  });

  it('skips ids already stored and ids repeated within a batch', async () => {
    const a = event('acme');
    const b = event('acme');
    await persist.handle([batch('acme', [a, b])], ctx);
    // Redelivery of the same batch, plus a duplicate inside one batch, plus one new event.
    const c = event('acme');
    await persist.handle([batch('acme', [b, c, { ...c, message: 'second copy' }, a])], ctx);
    expect(await stored('acme')).toEqual([
      { id: a.id, seq: '1' },
      { id: b.id, seq: '2' },
      { id: c.id, seq: '3' },
    ]);
    // The first copy of a repeated id wins.
    const { rows } = await ctx.pool.query('SELECT message FROM events WHERE id = $1', [c.id]);
    expect(rows).toEqual([{ message: null }]);
    const { rows: ids } = await ctx.pool.query(
      `SELECT count(*)::int AS n FROM event_ids WHERE tenant_id = 'acme'`,
    );
    expect(ids[0].n).toBe(3);
    const { rows: t } = await ctx.pool.query(`SELECT last_seq::int AS n FROM tenants WHERE id = 'acme'`);
    expect(t[0].n).toBe(3);
  });

  it('forwards only newly stored events, with their sequence numbers', async () => {
    const a = event('acme');
    await persist.handle([batch('acme', [a])], ctx);
    const b = event('acme');
    const out = (await forwarding.handle([batch('acme', [a, b])], ctx)) as Batch<PersistedEvent>[];
    expect(out).toEqual([{ v: 1, tenant_id: 'acme', events: [{ ...b, sequence: '2' }] }]);
    expect(await forwarding.handle([batch('acme', [a, b])], ctx)).toEqual([]);
  });

  it('keeps the same id in two tenants apart: neither suppresses the other', async () => {
    const id = randomUUID();
    await persist.handle([batch('acme', [event('acme', { id, message: 'acme copy' })])], ctx);
    await persist.handle([batch('globex', [event('globex', { id, message: 'globex copy' })])], ctx);
    const { rows } = await ctx.pool.query(
      'SELECT tenant_id, seq::int AS seq, message FROM events WHERE id = $1 ORDER BY tenant_id',
      [id],
    );
    expect(rows).toEqual([
      { tenant_id: 'acme', seq: 1, message: 'acme copy' },
      { tenant_id: 'globex', seq: 1, message: 'globex copy' },
    ]);
  });

  it('assigns gapless per-tenant sequences in batch order under concurrent calls', async () => {
    const calls = 12;
    const perCall = 40;
    // Every call also repeats ids of another call, so concurrent duplicates are exercised too.
    const fresh = Array.from({ length: calls }, () => Array.from({ length: perCall }, () => event('acme')));
    const work = fresh.map((events, i) => {
      const overlap = fresh[(i + 1) % calls]!.slice(0, 5);
      const other = Array.from({ length: 3 }, () => event('globex'));
      return persist.handle([batch('acme', [...events, ...overlap]), batch('globex', other)], ctx);
    });
    await Promise.all(work);

    const rows = await stored('acme');
    expect(rows.map((r) => Number(r.seq))).toEqual(Array.from({ length: calls * perCall }, (_, i) => i + 1));
    expect(new Set(rows.map((r) => r.id)).size).toBe(calls * perCall);
    expect(new Set(rows.map((r) => r.id))).toEqual(new Set(fresh.flat().map((e) => e.id)));
    // Within one call's batch, events keep their submitted order in the sequence.
    const seqOf = new Map(rows.map((r) => [r.id, Number(r.seq)]));
    for (const events of fresh) {
      const seqs = events.map((e) => seqOf.get(e.id)).filter((s): s is number => s !== undefined);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    }
    expect((await stored('globex')).map((r) => Number(r.seq))).toEqual(
      Array.from({ length: calls * 3 }, (_, i) => i + 1),
    );
    const { rows: t } = await ctx.pool.query(`SELECT id, last_seq::int AS n FROM tenants ORDER BY id`);
    expect(t).toEqual([
      { id: 'acme', n: calls * perCall },
      { id: 'globex', n: calls * 3 },
    ]);
  });

  it('creates partitions on demand for backfills and near-future events', async () => {
    const future = new Date(Date.now() + 23 * 3600_000).toISOString();
    const events = [
      event('acme', { occurred_at: '1999-01-01T00:00:00Z' }),
      event('acme', { occurred_at: '0001-01-01T00:00:00Z' }),
      event('acme', { occurred_at: future }),
    ];
    await persist.handle([batch('acme', events)], ctx);
    expect((await stored('acme')).map((r) => r.id)).toEqual(events.map((e) => e.id));
    const { rows } = await ctx.pool.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'events'::regclass AND c.relname = ANY($1) ORDER BY 1`,
      // Weekly partitions (the default width), named after their Monday.
      [['events_p00010101', 'events_p19981228']],
    );
    expect(rows.map((r) => r.name)).toEqual(['events_p00010101', 'events_p19981228']);
  });

  it('fails the whole batch, storing nothing, when a tenant does not exist', async () => {
    const good = event('acme');
    await expect(
      persist.handle([batch('acme', [good]), batch('ghost', [event('ghost')])], ctx),
    ).rejects.toThrow('batch names a tenant that does not exist');
    expect(await stored('acme')).toEqual([]);
    const { rows } = await ctx.pool.query(`SELECT last_seq::int AS n FROM tenants WHERE id = 'acme'`);
    expect(rows[0].n).toBe(0);
  });

  it('notifies the stored sequence range per tenant at commit', async () => {
    const listener = await ctx.pool.connect();
    const seen: unknown[] = [];
    listener.on('notification', (n) => {
      if (n.channel === 'auditlog_events') seen.push(JSON.parse(n.payload ?? 'null'));
    });
    await listener.query('LISTEN auditlog_events');
    try {
      await persist.handle(
        [batch('acme', [event('acme'), event('acme')]), batch('globex', [event('globex')])],
        ctx,
      );
      await persist.handle([batch('acme', [event('acme')])], ctx);
      // A round trip on the listening connection flushes notifications delivered before it.
      await listener.query('SELECT 1');
      const byTenant = (seen as { tenant: string }[]).sort((a, b) => a.tenant.localeCompare(b.tenant));
      expect(byTenant).toEqual([
        { tenant: 'acme', from: 1, to: 2 },
        { tenant: 'acme', from: 3, to: 3 },
        { tenant: 'globex', from: 1, to: 1 },
      ]);
    } finally {
      await listener.query('UNLISTEN *');
      listener.release();
    }
  });
});
