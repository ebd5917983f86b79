import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../infra/db/pool.js';
import { startTestService, type TestService } from '../test/harness.js';
import { tupleSplitter } from './copy-tuples.js';
import { READER_ROLE, withTenantReads, withTenantScope } from './scoped.js';
import { createTenants, ingest, QUERY_DAEMONS, waitStored } from './test-support.js';
import { tupleFields } from './tuple-format.js';
import { buildWhere, type ScopedWhere } from './where.js';

/**
 * Defence in depth: row-level security keeps a read inside its scope even when the SQL forgets
 * the tenant (or user) condition. These tests write SQL that "forgets" on purpose.
 */
describe('withTenantScope (row-level security)', () => {
  let svc: TestService;
  let pool: pg.Pool;
  let timescale = false;

  beforeAll(async () => {
    svc = await startTestService([...QUERY_DAEMONS]);
    await createTenants(svc, ['acme', 'globex']);
    const mk = (user: string, i: number) => ({
      user_id: user,
      action: 'UPDATE',
      resource_type: 'order',
      resource_id: `o-${i}`,
      request_id: 'r-1',
    });
    await ingest(svc, 'acme', [mk('u1', 1), mk('u1', 2), mk('u2', 3)]);
    await ingest(svc, 'globex', [mk('u1', 4), mk('g', 5)]);
    await waitStored(svc, 'acme', 3);
    await waitStored(svc, 'globex', 2);
    // One connection, so every statement below runs on the connection the scopes used.
    pool = createPool(svc.config.DATABASE_URL!, 1, 'scoped-test');
    timescale = await svc.ctx.partitions.isTimescale();
  });
  afterAll(async () => {
    await pool?.end();
    await svc?.stop();
  });

  it('shows only the scoped tenant to a query without any tenant condition', async () => {
    const seen = await withTenantScope({ pool }, { tenantId: 'acme' }, async (tx) => ({
      events: (
        await tx.query<{ tenant_id: string; resource_id: string }>(
          `SELECT tenant_id, resource_id FROM events WHERE resource_type = 'order' ORDER BY resource_id`,
        )
      ).rows,
      ids: (
        await tx.query<{ tenant_id: string; n: number }>(
          'SELECT tenant_id, count(*)::int AS n FROM event_ids GROUP BY tenant_id',
        )
      ).rows,
    }));
    if (!timescale) {
      expect(seen.events).toEqual([
        { tenant_id: 'acme', resource_id: 'o-1' },
        { tenant_id: 'acme', resource_id: 'o-2' },
        { tenant_id: 'acme', resource_id: 'o-3' },
      ]);
    }
    // event_ids has the policy on TimescaleDB too; acme's only events are the three (no reads yet).
    expect(seen.ids).toEqual([{ tenant_id: 'acme', n: 3 }]);
  });

  it('restricts the user role to its own events even when the SQL does not', async () => {
    if (timescale) return;
    const rows = await withTenantScope(
      { pool },
      { tenantId: 'acme', userId: 'u1' },
      async (tx) =>
        (
          await tx.query<{ resource_id: string }>(
            `SELECT resource_id FROM events WHERE resource_type = 'order' ORDER BY 1`,
          )
        ).rows,
    );
    expect(rows.map((r) => r.resource_id)).toEqual(['o-1', 'o-2']);
  });

  it('shows nothing for a tenant that has no rows, and nothing when asked for another tenant by name', async () => {
    const result = await withTenantScope({ pool }, { tenantId: 'initech' }, async (tx) => ({
      all: (await tx.query('SELECT 1 FROM events')).rowCount,
      named: (await tx.query(`SELECT 1 FROM events WHERE tenant_id = 'acme'`)).rowCount,
      ids: (await tx.query(`SELECT 1 FROM event_ids WHERE tenant_id = 'acme'`)).rowCount,
    }));
    expect(result).toEqual({ all: timescale ? result.all : 0, named: timescale ? result.named : 0, ids: 0 });
  });

  it('fetches rows by key only inside the scope, even from keys of a match that forgot the tenant', async () => {
    const { keys, rows } = await withTenantScope({ pool }, { tenantId: 'globex' }, async (tx) => {
      // A buggy clause: it claims globex's scope but matches every tenant.
      const buggy: ScopedWhere = {
        sql: `$1::text IS NOT NULL AND resource_type = 'order'`,
        params: ['globex'],
        scope: tx.scope,
        leakproof: true,
        planStable: false,
      };
      const keys = await tx.keys(buggy, 'seq-asc', 100);
      const rows = await tx.rowsAt(keys);
      // rowsAt left the transaction in the reader role; a match after it is the owner's again.
      expect(await tx.keys(buggy, 'seq-asc', 100)).toEqual(keys);
      return { keys, rows };
    });
    expect(keys).toHaveLength(5); // the owner-role match saw both tenants' positions...
    if (!timescale) {
      // ...but the rows read back are globex's only.
      expect(rows.map((r) => [r.tenant_id, r.resource_id]).sort()).toEqual([
        ['globex', 'o-4'],
        ['globex', 'o-5'],
      ]);
    }
  });

  /** Every tuple of a binary COPY of text columns, as arrays of strings (null for NULL). */
  async function copied(stream: NodeJS.ReadableStream, columns: number): Promise<(string | null)[][]> {
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    const splitter = tupleSplitter(columns, 1000);
    const groups = splitter.push(Buffer.concat(chunks));
    const rest = splitter.end();
    if (rest) groups.push(rest);
    return groups.flatMap((g) => {
      const f = tupleFields(g.data, g.rows, columns);
      return Array.from({ length: g.rows }, (_, r) =>
        Array.from({ length: columns }, (_, c) =>
          f.starts[r * columns + c]! < 0
            ? null
            : g.data.toString('utf8', f.starts[r * columns + c], f.ends[r * columns + c]),
        ),
      );
    });
  }

  it('copies rows only inside the scope, even from a clause that forgot the tenant', async () => {
    const rows = await withTenantScope({ pool }, { tenantId: 'globex' }, async (tx) => {
      const buggy: ScopedWhere = {
        sql: `$1::text IS NOT NULL AND resource_type = 'order'`,
        params: ['globex'],
        scope: tx.scope,
        leakproof: true,
        planStable: false,
      };
      return copied(await tx.copyRows(buggy, 'seq-asc', 'tenant_id, resource_id'), 2);
    });
    expect(rows).toEqual([
      ['globex', 'o-4'],
      ['globex', 'o-5'],
    ]);
    const mine = await withTenantScope({ pool }, { tenantId: 'acme', userId: 'u1' }, async (tx) =>
      copied(await tx.copyRows(buildWhere(tx.scope, {}), 'seq-desc', 'resource_id'), 1),
    );
    expect(mine).toEqual([['o-2'], ['o-1']]);
  });

  it('gives a COPY every parameter as its value, lists with quotes, backslashes and braces included', async () => {
    const copy = (filters: Parameters<typeof buildWhere>[1]) =>
      withTenantScope({ pool }, { tenantId: 'acme' }, async (tx) =>
        copied(await tx.copyRows(buildWhere(tx.scope, filters), 'seq-asc', 'resource_id'), 1),
      );
    const all = [['o-1'], ['o-2'], ['o-3']];
    expect(await copy({ action: 'UPDATE,a"b\\c,{x},NULL' })).toEqual(all);
    expect(await copy({ action: 'a"b\\c,{UPDATE},NULL, UPDATE' })).toEqual([]);
    expect(await copy({ user_id: 'u1', resource_id: 'o-2' })).toEqual([['o-2']]);
    expect(await copy({ user_id: "u1' OR '1'='1" })).toEqual([]);
    expect(
      await copy({ from: '2000-01-01T00:00:00Z', to: '2100-01-01T00:00:00Z', severity: 'INFO,LOW' }),
    ).toEqual(all);
    // The settings and the planner switch were transaction-local.
    const { rows } = await pool.query<{ sort: string; p: string | null }>(
      `SELECT current_setting('enable_sort') AS sort, current_setting('auditlog.copy_1', true) AS p`,
    );
    expect(rows).toEqual([{ sort: 'on', p: '' }]);
  });

  it('discards the connection of a COPY that is not read to its end', async () => {
    const pid = async () =>
      (await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const before = await pid();
    await expect(
      withTenantScope({ pool }, { tenantId: 'acme' }, async (tx) => {
        const stream = await tx.copyRows(buildWhere(tx.scope, {}), 'seq-asc', 'resource_id');
        for await (const _ of stream) throw new Error('client went away');
      }),
    ).rejects.toThrow('client went away');
    // The discarded connection's end reaches pg a moment later, which then errors the COPY
    // stream: that must not be an uncaught exception (vitest fails the run on one).
    await new Promise((resolve) => setTimeout(resolve, 300));
    // A new connection, which works; the old session has ended.
    const after = await pid();
    expect(after).not.toBe(before);
    // Returning early without an error discards it too (a COMMIT would wait behind the COPY).
    const early = await withTenantScope({ pool }, { tenantId: 'acme' }, async (tx) => {
      (await tx.copyRows(buildWhere(tx.scope, {}), 'seq-asc', 'resource_id')).destroy();
      return 'early';
    });
    expect(early).toBe('early');
    expect(await pid()).not.toBe(after);
    const { rows } = await svc.ctx.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1',
      [before],
    );
    expect(rows[0]!.n).toBe(0);
  });

  it('runs every query as the reader, before and after a key match as the owner', async () => {
    const role = async (tx: Parameters<Parameters<typeof withTenantScope>[2]>[0]) =>
      (await tx.query<{ r: string }>('SELECT current_user AS r')).rows[0]!.r;
    const roles = await withTenantScope({ pool }, { tenantId: 'acme' }, async (tx) => {
      const first = await role(tx);
      await tx.keys(buildWhere(tx.scope, {}), 'time-desc', 1);
      const afterKeys = await role(tx);
      const next = await tx.keyCursor(buildWhere(tx.scope, {}), 'seq-asc');
      await next(1);
      const afterKeyCursor = await role(tx);
      const inCopy = (
        await copied(await tx.copyRows(buildWhere(tx.scope, {}), 'seq-asc', 'current_user'), 1)
      )[0]?.[0];
      await next(1);
      return [first, afterKeys, afterKeyCursor, inCopy, await role(tx)];
    });
    expect(roles).toEqual([READER_ROLE, READER_ROLE, READER_ROLE, READER_ROLE, READER_ROLE]);
  });

  it('refuses a WHERE clause built for another scope', async () => {
    await expect(
      withTenantScope({ pool }, { tenantId: 'globex' }, (tx) =>
        tx.keys(buildWhere({ tenantId: 'acme' }, {}), 'time-desc', 10),
      ),
    ).rejects.toThrow('WHERE clause was built for a different scope');
    await expect(
      withTenantScope({ pool }, { tenantId: 'acme', userId: 'u1' }, (tx) =>
        tx.keys(buildWhere({ tenantId: 'acme' }, {}), 'time-desc', 10),
      ),
    ).rejects.toThrow('WHERE clause was built for a different scope');
    await expect(
      withTenantScope({ pool }, { tenantId: 'acme', userId: 'u1' }, (tx) =>
        tx.copyRows(buildWhere({ tenantId: 'acme' }, {}), 'time-desc', 'id'),
      ),
    ).rejects.toThrow('WHERE clause was built for a different scope');
  });

  it('cannot write, cannot read partitions or other tables directly', async () => {
    const attempt = (sql: string) =>
      withTenantScope({ pool }, { tenantId: 'acme' }, (tx) => tx.query(sql)).then(
        () => 'ok',
        (err: { code?: string }) => err.code,
      );
    // 25006: read-only transaction; 42501: insufficient privilege.
    expect(await attempt(`DELETE FROM events WHERE tenant_id = 'acme'`)).toBe('25006');
    expect(await attempt(`SELECT * FROM tenant_keys`)).toBe('42501');
    expect(await attempt(`SELECT * FROM tenants`)).toBe('42501');
    expect(await attempt(`SELECT * FROM queue_messages`)).toBe('42501');
    if (!timescale) {
      const { rows } = await pool.query<{ name: string }>(
        `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = 'events'::regclass LIMIT 1`,
      );
      expect(await attempt(`SELECT * FROM ${rows[0]!.name}`)).toBe('42501');
    }
  });

  it('leaves the pooled connection as it found it, after success and after failure', async () => {
    const state = async () =>
      (
        await pool.query<{ role: string; tenant: string | null; user: string | null }>(
          `SELECT current_user AS role, current_setting('auditlog.tenant', true) AS tenant,
                  current_setting('auditlog.user', true) AS user`,
        )
      ).rows[0];
    const owner = (await pool.query<{ u: string }>('SELECT session_user AS u')).rows[0]!.u;
    const inside = await withTenantScope(
      { pool },
      { tenantId: 'acme', userId: 'u1' },
      async (tx) =>
        (
          await tx.query<{ role: string; tenant: string; user: string }>(
            `SELECT current_user AS role, current_setting('auditlog.tenant') AS tenant, current_setting('auditlog.user') AS user`,
          )
        ).rows[0],
    );
    expect(inside).toEqual({ role: READER_ROLE, tenant: 'acme', user: 'u1' });
    expect(await state()).toEqual({ role: owner, tenant: '', user: '' });
    await expect(
      withTenantScope({ pool }, { tenantId: 'acme' }, async (tx) => {
        await tx.query('SELECT 1/0');
      }),
    ).rejects.toThrow('division by zero');
    expect(await state()).toEqual({ role: owner, tenant: '', user: '' });
    // The owner (writers: persist, queue, migrations) still sees every tenant: RLS is not FORCEd.
    const all = await pool.query<{ n: number }>(
      `SELECT count(DISTINCT tenant_id)::int AS n FROM events WHERE resource_type = 'order'`,
    );
    expect(all.rows[0]!.n).toBe(2);
  });

  it('keeps every scope to its own rows when the statements run from a cached generic plan', async () => {
    // The read statements are prepared once per connection (`prepared`); forcing generic plans
    // makes each run below reuse one plan across tenants and users, as a busy pool does.
    const rowsAtGeneric = async () =>
      (
        await pool.query<{ generic: number }>(
          `SELECT coalesce(sum(generic_plans), 0)::int AS generic FROM pg_prepared_statements
            WHERE name LIKE 'auditlog-%' AND statement LIKE '%FROM auditlog_rows_at(%'`,
        )
      ).rows[0]!.generic;
    const rowsAtBefore = await rowsAtGeneric();
    await pool.query('SET plan_cache_mode = force_generic_plan');
    try {
      const read = (scope: { tenantId: string; userId?: string }, filters: { user_id?: string }) =>
        withTenantScope({ pool }, scope, async (tx) => {
          const keys = await tx.keys(buildWhere(scope, filters), 'time-desc', 10);
          return (await tx.rowsAt(keys)).map((r) => `${r.tenant_id}/${r.user_id}/${r.resource_id}`);
        });
      // One request's events in sequence order (a plan-stable match too, see `ScopedWhere.planStable`).
      const request = (scope: { tenantId: string; userId?: string }) =>
        withTenantScope({ pool }, scope, async (tx) => {
          const keys = await tx.keys(buildWhere(scope, { request_id: 'r-1' }), 'seq-asc', 10);
          return (await tx.rowsAt(keys)).map((r) => `${r.tenant_id}/${r.user_id}/${r.resource_id}`);
        });
      for (let i = 0; i < 3; i++) {
        expect(await request({ tenantId: 'acme' })).toEqual(['acme/u1/o-1', 'acme/u1/o-2', 'acme/u2/o-3']);
        expect(await request({ tenantId: 'globex' })).toEqual(['globex/u1/o-4', 'globex/g/o-5']);
        expect(await read({ tenantId: 'acme' }, { user_id: 'u1' })).toEqual(['acme/u1/o-2', 'acme/u1/o-1']);
        expect(await read({ tenantId: 'globex' }, { user_id: 'u1' })).toEqual(['globex/u1/o-4']);
        expect(await read({ tenantId: 'acme', userId: 'u2' }, {})).toEqual(['acme/u2/o-3']);
        expect(await read({ tenantId: 'globex' }, {})).toEqual(['globex/g/o-5', 'globex/u1/o-4']);
      }
      const { rows } = await pool.query<{ generic: number }>(
        `SELECT sum(generic_plans)::int AS generic FROM pg_prepared_statements WHERE name LIKE 'auditlog-%'`,
      );
      expect(rows[0]!.generic).toBeGreaterThanOrEqual(36); // 18 reads of rows by key, 18 matches
      // The rows by key: one call, 18 times from its generic plan, and so was the read inside it
      // (PL/pgSQL follows plan_cache_mode), across tenants and users, with the right rows above.
      expect((await rowsAtGeneric()) - rowsAtBefore).toBe(18);
      // Every match ran from its cached plan: the tenant's, the users' (filter and scope), the request's.
      const matches = await pool.query<{ statement: string; generic: number }>(
        `SELECT statement, generic_plans::int AS generic FROM pg_prepared_statements
          WHERE name LIKE 'auditlog-%' AND statement LIKE 'SELECT to_char(occurred_at%'`,
      );
      const generic = matches.rows.map((r) => [r.statement.match(/WHERE (.*) ORDER BY/)?.[1], r.generic]);
      expect(generic.sort()).toEqual([
        ['tenant_id = $1 AND request_id = $2', 6],
        ['tenant_id = $1 AND user_id = $2', 9],
        ['tenant_id = $1', 3],
      ]);
    } finally {
      await pool.query('RESET plan_cache_mode');
    }
  });

  /** The connection's role and scope settings, outside any scope. */
  const connectionState = async () =>
    (
      await pool.query<{ role: string; tenant: string | null; user: string | null; tx: boolean }>(
        // Never set on a new connection (a failed read's is discarded): NULL, as good as empty.
        `SELECT current_user AS role, coalesce(current_setting('auditlog.tenant', true), '') AS tenant,
                coalesce(current_setting('auditlog.user', true), '') AS user,
                -- outside a transaction block every statement starts its own transaction
                now() = statement_timestamp() AS tx`,
      )
    ).rows[0];

  /** A clause that claims `scope` but matches every tenant's orders (a bug in our own SQL). */
  const forgetful = (scope: { tenantId: string; userId?: string }): ScopedWhere => ({
    sql: `$1::text IS NOT NULL AND resource_type = 'order'`,
    params: [scope.tenantId],
    scope,
    leakproof: true,
    planStable: false,
  });

  it('reads a page without a transaction block: rows only inside the scope, for a tenant and for a user', async () => {
    const owner = (await pool.query<{ u: string }>('SELECT session_user AS u')).rows[0]!.u;
    const page = (scope: { tenantId: string; userId?: string }) =>
      withTenantReads({ pool }, scope, async (reads) => {
        const keys = await reads.keys(forgetful(scope), 'seq-asc', 100);
        const rows = await reads.rowsAt(keys);
        return {
          keys: keys.length,
          rows: rows.map((r) => `${r.tenant_id}/${r.user_id}/${r.resource_id}`),
        };
      });
    for (let i = 0; i < 3; i++) {
      const globex = await page({ tenantId: 'globex' });
      // The match ran as the owner (every tenant's positions; the reader would see globex's)...
      expect(globex.keys).toBe(5);
      // ...and the rows came back for the scope only: the read's own conditions, and the policy.
      expect(globex.rows.sort()).toEqual(['globex/g/o-5', 'globex/u1/o-4']);
      expect((await page({ tenantId: 'acme', userId: 'u2' })).rows).toEqual(['acme/u2/o-3']);
      expect((await page({ tenantId: 'acme', userId: 'u1' })).rows).toEqual(['acme/u1/o-1', 'acme/u1/o-2']);
      expect((await page({ tenantId: 'initech' })).rows).toEqual([]);
      // Nothing of the reader role or the scope outlives the statement that read the rows.
      expect(await connectionState()).toEqual({ role: owner, tenant: '', user: '', tx: true });
    }
  });

  it('summarizes a request within the scope only, without a transaction block or in one', async () => {
    const owner = (await pool.query<{ u: string }>('SELECT session_user AS u')).rows[0]!.u;
    const count = async (scope: { tenantId: string; userId?: string }) => {
      const without = (await withTenantReads({ pool }, scope, (reads) => reads.correlate('r-1'))).count;
      expect(await connectionState()).toEqual({ role: owner, tenant: '', user: '', tx: true });
      const within = await withTenantScope({ pool }, scope, (tx) => tx.correlate('r-1'));
      expect(within.count).toBe(without);
      return without;
    };
    // Both tenants used request id r-1.
    expect(await count({ tenantId: 'acme' })).toBe(3);
    expect(await count({ tenantId: 'globex' })).toBe(2);
    expect(await count({ tenantId: 'acme', userId: 'u2' })).toBe(1);
    expect(await count({ tenantId: 'initech' })).toBe(0);
  });

  it('reads rows by key as the reader with the scope set, also for a read after it in a transaction block', async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(
        `SELECT count(*) FROM auditlog_rows_at('acme', NULL, '{}'::timestamptz[], '{}'::bigint[], now(), now())`,
      );
      // A statement with no condition at all: the role and the policy's settings are in force.
      const after = await client.query<{ role: string; tenant: string; tenants: string[] }>(
        `SELECT current_user AS role, current_setting('auditlog.tenant') AS tenant,
                (SELECT array_agg(DISTINCT tenant_id) FROM event_ids) AS tenants`,
      );
      expect(after.rows[0]).toEqual({ role: READER_ROLE, tenant: 'acme', tenants: ['acme'] });
      await client.query('COMMIT');
    } finally {
      client.release();
    }
  });

  it('refuses a clause built for another scope without a transaction block too, and survives a failed read', async () => {
    const owner = (await pool.query<{ u: string }>('SELECT session_user AS u')).rows[0]!.u;
    await expect(
      withTenantReads({ pool }, { tenantId: 'globex' }, (reads) =>
        reads.keys(buildWhere({ tenantId: 'acme' }, {}), 'time-desc', 10),
      ),
    ).rejects.toThrow('WHERE clause was built for a different scope');
    await expect(
      withTenantReads({ pool }, { tenantId: 'acme' }, (reads) =>
        reads.rowsAt([{ occurred_at: 'not a time', seq: '1' }]),
      ),
    ).rejects.toMatchObject({ code: '22007' }); // invalid datetime format
    expect(await connectionState()).toEqual({ role: owner, tenant: '', user: '', tx: true });
  });
});
