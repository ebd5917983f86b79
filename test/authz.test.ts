import { randomBytes, randomUUID } from 'node:crypto';
import { generateKeyPair, type JWTPayload, SignJWT } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateSigningKey } from '../infra/auth/signing-key.js';
import { eventually, http, startTestService, type TestService } from './harness.js';

/**
 * Authorization from the attacker's side: every role of tenant acme, another tenant's admin and
 * platform tokens try every endpoint against acme's data and each other's. Expected statuses are
 * exact, 404s for another tenant's ids are byte-identical to 404s for ids that do not exist, and
 * refused writes are shown to have enqueued nothing at all.
 */

let svc: TestService;
let db: pg.Client;
type Caller = 'pAdm' | 'pUser' | 'pAud' | 'aUser' | 'aUser2' | 'aAud' | 'aAdm' | 'gAdm' | 'gUser';
/** One token per caller: platform (p), tenant acme (a), tenant globex (g). */
const tok = {} as Record<Caller, string>;
/** The token of a caller named in a test table; a typo fails loudly instead of sending no token. */
function tokenOf(who: string): string {
  const token = tok[who as Caller];
  if (!token) throw new Error(`no token for ${who}`);
  return token;
}

/** Fixture times lie in the past, so the audit_log events every read records never fall inside them. */
const T0 = Date.parse('2026-02-01T00:00:00Z');
const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();
const WINDOW = `from=${encodeURIComponent(at(0))}&to=${encodeURIComponent(at(60))}`;

const A = {
  alice1: randomUUID(),
  alice2: randomUUID(),
  bob: randomUUID(),
  nobody: randomUUID(),
};
const G = { alice: randomUUID(), carol: randomUUID() };

async function queueSeq(): Promise<string> {
  const { rows } = await db.query('SELECT last_value::text AS v, is_called FROM queue_messages_id_seq');
  return `${rows[0].v}/${rows[0].is_called}`;
}

async function idsIn(tenantQuery: string, token: string): Promise<string[]> {
  const res = await http(svc.url, 'GET', `/api/v1/logs?${WINDOW}${tenantQuery}&limit=1000`, { token });
  expect(res.status, res.text).toBe(200);
  return res.body.data.map((e: { id: string }) => e.id);
}

/** Events stored for `tenant` in the fixture window, straight from the database. */
async function storedIds(tenant: string): Promise<string[]> {
  const { rows } = await db.query(
    `SELECT id::text AS id FROM events WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3 ORDER BY seq`,
    [tenant, at(0), at(60)],
  );
  return rows.map((r) => r.id);
}

const ev = (minute: number, extra: Record<string, unknown> = {}) => ({
  action: 'UPDATE',
  resource_type: 'doc',
  occurred_at: at(minute),
  ...extra,
});

beforeAll(async () => {
  svc = await startTestService(['ingest', 'mask', 'encrypt', 'persist', 'index', 'query']);
  db = new pg.Client({ connectionString: svc.config.DATABASE_URL });
  await db.connect();
  tok.pAdm = await svc.token('*', 'admin', 'root');
  tok.pUser = await svc.token('*', 'user', 'platform-user');
  tok.pAud = await svc.token('*', 'auditor', 'platform-auditor');
  tok.aUser = await svc.token('acme', 'user', 'alice');
  tok.aUser2 = await svc.token('acme', 'user', 'bob');
  tok.aAud = await svc.token('acme', 'auditor', 'acme-auditor');
  tok.aAdm = await svc.token('acme', 'admin', 'acme-admin');
  tok.gAdm = await svc.token('globex', 'admin', 'globex-admin');
  tok.gUser = await svc.token('globex', 'user', 'alice');
  for (const id of ['acme', 'globex']) {
    expect(
      (await http(svc.url, 'POST', '/api/v1/tenants', { token: tok.pAdm, body: { id, name: id } })).status,
    ).toBe(201);
  }
  const seed = await http(svc.url, 'POST', '/api/v1/logs/bulk', {
    token: tok.aAdm,
    body: {
      events: [
        ev(1, { id: A.alice1, user_id: 'alice', message: 'acme original' }),
        ev(2, { id: A.alice2, user_id: 'alice' }),
        ev(3, { id: A.bob, user_id: 'bob' }),
        ev(4, { id: A.nobody }),
      ],
    },
  });
  expect(seed.status).toBe(202);
  // globex has a user with the same sub, alice: tenant boundaries must hold even then.
  const gseed = await http(svc.url, 'POST', '/api/v1/logs/bulk', {
    token: tok.gAdm,
    body: { events: [ev(5, { id: G.alice, user_id: 'alice' }), ev(6, { id: G.carol, user_id: 'carol' })] },
  });
  expect(gseed.status).toBe(202);
  await eventually(async () => ((await storedIds('acme')).length === 4 ? true : undefined));
  await eventually(async () => ((await storedIds('globex')).length === 2 ? true : undefined));
});
afterAll(async () => {
  await db?.end();
  await svc?.stop();
});

describe('role × endpoint × tenant matrix', () => {
  const acmeAll = () => [A.nobody, A.bob, A.alice2, A.alice1];
  const globexAll = () => [G.carol, G.alice];

  it.each([
    // caller, tenant_id query, expected status, expected ids (newest first)
    ['aUser', '', 200, () => [A.alice2, A.alice1]],
    ['aUser2', '', 200, () => [A.bob]],
    ['aAud', '', 200, acmeAll],
    ['aAdm', '', 200, acmeAll],
    ['gAdm', '', 200, globexAll],
    ['gUser', '', 200, () => [G.alice]],
    ['aUser', '&tenant_id=acme', 200, () => [A.alice2, A.alice1]],
    ['aAud', '&tenant_id=acme', 200, acmeAll],
    ['aAdm', '&tenant_id=acme', 200, acmeAll],
    ['pAdm', '&tenant_id=acme', 200, acmeAll],
    ['pAud', '&tenant_id=acme', 200, acmeAll],
    ['pAdm', '&tenant_id=globex', 200, globexAll],
  ] as const)('GET /logs as %s%s → %i with exactly the visible events', async (who, tq, status, expected) => {
    const res = await http(svc.url, 'GET', `/api/v1/logs?${WINDOW}${tq}`, { token: tokenOf(who) });
    expect(res.status, res.text).toBe(status);
    expect(res.body.data.map((e: { id: string }) => e.id)).toEqual(expected());
  });

  it.each([
    ['aUser', '&tenant_id=globex'],
    ['aAud', '&tenant_id=globex'],
    ['aAdm', '&tenant_id=globex'],
    ['gAdm', '&tenant_id=acme'],
    ['gUser', '&tenant_id=acme'],
  ])(
    'GET /logs as %s with %s → 403, the same answer as for a tenant that does not exist',
    async (who, tq) => {
      const res = await http(svc.url, 'GET', `/api/v1/logs?${WINDOW}${tq}`, { token: tokenOf(who) });
      const ghost = await http(svc.url, 'GET', `/api/v1/logs?${WINDOW}&tenant_id=no-such-tenant`, {
        token: tokenOf(who),
      });
      expect(res.status).toBe(403);
      expect(res.body).toEqual({
        error: { code: 'forbidden_tenant', message: 'tenant_id must be your own tenant' },
      });
      expect(ghost.status).toBe(403);
      expect(ghost.text).toBe(res.text);
    },
  );

  it.each([
    ['pUser', '&tenant_id=acme', 403],
    ['pUser', '', 403],
    ['pAdm', '', 400],
    ['pAud', '', 400],
  ])('GET /logs as %s%s → %i', async (who, tq, status) => {
    const res = await http(svc.url, 'GET', `/api/v1/logs?${WINDOW}${tq}`, { token: tokenOf(who) });
    expect(res.status).toBe(status);
    expect(res.body.error.code).toBe(status === 403 ? 'forbidden' : 'tenant_required');
  });

  it('a user sees only events carrying its own user_id, whatever it filters by', async () => {
    // No time window: everything alice can see, including read-audit events, must be hers.
    const all = await http(svc.url, 'GET', '/api/v1/logs?limit=1000', { token: tok.aUser });
    expect(all.status).toBe(200);
    expect(all.body.data.length).toBeGreaterThanOrEqual(2);
    expect(all.body.data.filter((e: { user_id?: string }) => e.user_id !== 'alice')).toEqual([]);
    expect(all.body.data.every((e: { tenant_id: string }) => e.tenant_id === 'acme')).toBe(true);
    expect(await idsIn('&user_id=bob', tok.aUser)).toEqual([]);
    expect(await idsIn('&user_id=alice', tok.aUser)).toEqual([A.alice2, A.alice1]);
    expect(await idsIn('&resource_type=doc', tok.aUser)).toEqual([A.alice2, A.alice1]);
  });

  it.each([
    ['aUser', A.alice1, 200],
    ['aUser', A.bob, 404],
    ['aUser', A.nobody, 404],
    ['aUser2', A.bob, 200],
    ['aUser2', A.alice1, 404],
    ['aAud', A.bob, 200],
    ['aAdm', A.alice1, 200],
    ['gAdm', A.alice1, 404],
    ['gUser', A.alice1, 404],
    ['aAdm', G.alice, 404],
    ['aUser', G.alice, 404],
  ])('GET /logs/:id as %s for %s → %i; a 404 is byte-identical to a missing id', async (who, id, status) => {
    const res = await http(svc.url, 'GET', `/api/v1/logs/${id}`, { token: tokenOf(who) });
    expect(res.status).toBe(status);
    if (status === 200) {
      expect(res.body.id).toBe(id);
      return;
    }
    const missing = await http(svc.url, 'GET', `/api/v1/logs/${randomUUID()}`, { token: tokenOf(who) });
    expect(missing.status).toBe(404);
    expect(res.text).toBe(missing.text);
    expect(res.headers.get('content-type')).toBe(missing.headers.get('content-type'));
  });

  it.each([
    ['pAdm', '?tenant_id=acme', 200],
    ['pAud', '?tenant_id=acme', 200],
    ['pAdm', '?tenant_id=globex', 404],
    ['pAdm', '', 400],
    ['pUser', '?tenant_id=acme', 403],
    ['gAdm', '?tenant_id=acme', 403],
    ['gAdm', '?tenant_id=no-such-tenant', 403],
    ['aAdm', '?tenant_id=acme', 200],
  ])('GET /logs/:id as %s with %s → %i', async (who, tq, status) => {
    const res = await http(svc.url, 'GET', `/api/v1/logs/${A.alice1}${tq}`, { token: tokenOf(who) });
    expect(res.status).toBe(status);
    if (status === 200) expect(res.body.id).toBe(A.alice1);
  });

  it('a cursor taken in one tenant only positions a scan inside the other tenant’s own data', async () => {
    const page = await http(svc.url, 'GET', `/api/v1/logs?${WINDOW}&limit=1`, { token: tok.aAdm });
    expect(page.body.data.map((e: { id: string }) => e.id)).toEqual([A.nobody]);
    const cursor = page.body.next_cursor as string;
    const theirs = await http(svc.url, 'GET', `/api/v1/logs?${WINDOW}&cursor=${cursor}`, { token: tok.gAdm });
    expect(theirs.status).toBe(200);
    // acme's cursor sits at minute 4: globex's events at minutes 5 and 6 are after it, so none show.
    expect(theirs.body.data).toEqual([]);
  });
});

describe('writes', () => {
  /** Asserts that the requests were refused and that not a single queue row was written. */
  async function refusedWithoutEnqueue(
    attempts: { who: Caller; path: string; body: unknown; status: number; code: string }[],
  ) {
    const before = await queueSeq();
    for (const a of attempts) {
      const res = await http(svc.url, 'POST', a.path, { token: tokenOf(a.who), body: a.body });
      expect([a.who, a.path, res.status, res.body?.error?.code]).toEqual([a.who, a.path, a.status, a.code]);
    }
    expect(await queueSeq()).toBe(before);
  }

  it('no one writes into another tenant, by any route, and nothing is enqueued', async () => {
    const intoGlobex = ev(30, { tenant_id: 'globex', message: 'planted' });
    const intoGhost = ev(30, { tenant_id: 'no-such-tenant' });
    await refusedWithoutEnqueue([
      { who: 'aAdm', path: '/api/v1/logs', body: intoGlobex, status: 403, code: 'forbidden_tenant' },
      { who: 'aUser', path: '/api/v1/logs', body: intoGlobex, status: 403, code: 'forbidden_tenant' },
      { who: 'aAdm', path: '/api/v1/logs', body: intoGhost, status: 403, code: 'forbidden_tenant' },
      {
        who: 'aAdm',
        path: '/api/v1/logs/bulk',
        body: { events: [ev(31), intoGlobex] },
        status: 403,
        code: 'forbidden_tenant',
      },
      {
        who: 'gAdm',
        path: '/api/v1/logs/bulk',
        body: { events: [ev(31, { tenant_id: 'acme' })] },
        status: 403,
        code: 'forbidden_tenant',
      },
    ]);
    // Same answer whether the named tenant exists or not.
    const real = await http(svc.url, 'POST', '/api/v1/logs', { token: tok.aAdm, body: intoGlobex });
    const ghost = await http(svc.url, 'POST', '/api/v1/logs', { token: tok.aAdm, body: intoGhost });
    expect(ghost.text).toBe(real.text);

    // A legitimate write after the attempts is stored; by per-tenant FIFO, anything planted
    // earlier would have been stored before it. Neither tenant gained anything else.
    const barrier = await http(svc.url, 'POST', '/api/v1/logs', { token: tok.gAdm, body: ev(40) });
    const acmeBarrier = await http(svc.url, 'POST', '/api/v1/logs', { token: tok.aAdm, body: ev(41) });
    await eventually(async () =>
      (await storedIds('globex')).includes(barrier.body.ids[0]) ? true : undefined,
    );
    await eventually(async () =>
      (await storedIds('acme')).includes(acmeBarrier.body.ids[0]) ? true : undefined,
    );
    expect(await storedIds('globex')).toEqual([G.alice, G.carol, barrier.body.ids[0]]);
    expect(await storedIds('acme')).toEqual([A.alice1, A.alice2, A.bob, A.nobody, acmeBarrier.body.ids[0]]);
  });

  it('auditors and platform non-admins cannot write, whatever they send, and nothing is enqueued', async () => {
    const many = { events: Array.from({ length: 1001 }, () => ev(32)) };
    await refusedWithoutEnqueue([
      { who: 'aAud', path: '/api/v1/logs', body: ev(32), status: 403, code: 'forbidden' },
      { who: 'aAud', path: '/api/v1/logs/bulk', body: { events: [ev(32)] }, status: 403, code: 'forbidden' },
      // Permission is checked before validation: a refused caller learns nothing from a 400/413.
      { who: 'aAud', path: '/api/v1/logs', body: { bogus: true }, status: 403, code: 'forbidden' },
      { who: 'aAud', path: '/api/v1/logs/bulk', body: many, status: 403, code: 'forbidden' },
      {
        who: 'pAud',
        path: '/api/v1/logs',
        body: ev(32, { tenant_id: 'acme' }),
        status: 403,
        code: 'forbidden',
      },
      {
        who: 'pUser',
        path: '/api/v1/logs',
        body: ev(32, { tenant_id: 'acme' }),
        status: 403,
        code: 'forbidden',
      },
      {
        who: 'pUser',
        path: '/api/v1/logs/bulk',
        body: { events: [ev(32, { tenant_id: 'globex' })] },
        status: 403,
        code: 'forbidden',
      },
    ]);
  });

  it('platform admins write only by naming the tenant, and only into tenants that exist', async () => {
    await refusedWithoutEnqueue([
      { who: 'pAdm', path: '/api/v1/logs', body: ev(33), status: 400, code: 'tenant_required' },
      {
        who: 'pAdm',
        path: '/api/v1/logs',
        body: ev(33, { tenant_id: 'no-such-tenant' }),
        status: 404,
        code: 'tenant_not_found',
      },
    ]);
    const ok = await http(svc.url, 'POST', '/api/v1/logs', {
      token: tok.pAdm,
      body: ev(33, { tenant_id: 'globex' }),
    });
    expect(ok.status).toBe(202);
  });

  it('users and admins write into their own tenant', async () => {
    for (const who of ['aUser', 'aAdm']) {
      const res = await http(svc.url, 'POST', '/api/v1/logs/bulk', {
        token: tokenOf(who),
        body: { events: [ev(34)] },
      });
      expect(res.status).toBe(202);
      const own = await http(svc.url, 'POST', '/api/v1/logs', {
        token: tokenOf(who),
        body: ev(34, { tenant_id: 'acme' }),
      });
      expect(own.status).toBe(202);
    }
  });

  it('reusing another tenant’s event id neither overwrites nor reveals it', async () => {
    const res = await http(svc.url, 'POST', '/api/v1/logs', {
      token: tok.gAdm,
      body: ev(35, { id: A.alice1, message: 'globex impostor' }),
    });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ ids: [A.alice1], accepted: 1 });
    const mine = await eventually(async () => {
      const r = await http(svc.url, 'GET', `/api/v1/logs/${A.alice1}`, { token: tok.gAdm });
      return r.status === 200 ? r.body : undefined;
    });
    expect([mine.tenant_id, mine.message]).toEqual(['globex', 'globex impostor']);
    const theirs = await http(svc.url, 'GET', `/api/v1/logs/${A.alice1}`, { token: tok.aAdm });
    expect([theirs.body.tenant_id, theirs.body.message, theirs.body.occurred_at]).toEqual([
      'acme',
      'acme original',
      `${at(1).slice(0, 19)}.000000Z`,
    ]);
  });
});

describe('tenant management', () => {
  it.each(['aAdm', 'aAud', 'aUser', 'gAdm', 'pUser', 'pAud'])(
    '%s cannot create or list tenants',
    async (who) => {
      for (const body of [{ id: `t-${who.toLowerCase()}`, name: 'x' }, { id: 'BAD ID' }, {}]) {
        const res = await http(svc.url, 'POST', '/api/v1/tenants', { token: tokenOf(who), body });
        expect(res.status).toBe(403);
        expect(res.body).toEqual({ error: { code: 'forbidden', message: 'platform admin role required' } });
      }
      const list = await http(svc.url, 'GET', '/api/v1/tenants', { token: tokenOf(who) });
      expect(list.status).toBe(403);
      const { rows } = await db.query('SELECT id FROM tenants ORDER BY id');
      expect(rows.map((r) => r.id)).toEqual(['acme', 'globex']);
    },
  );
});

describe('tokens', () => {
  let forged: Record<string, string>;

  const claims = (over: JWTPayload = {}): JWTPayload => {
    const now = Math.floor(Date.now() / 1000);
    return {
      sub: 'mallory',
      tenant: 'acme',
      role: 'admin',
      iss: 'auditlog',
      aud: 'auditlog',
      iat: now,
      exp: now + 600,
      ...over,
    };
  };

  beforeAll(async () => {
    const real = await loadOrCreateSigningKey(svc.config.DATA_DIR);
    const other = await generateKeyPair('ES256');
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const valid = await new SignJWT(claims())
      .setProtectedHeader({ alg: 'ES256', kid: real.kid })
      .sign(real.privateKey);
    const [h, , sig] = valid.split('.');
    forged = {
      // Unsigned, or signed with something the service does not trust.
      algNone: `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`,
      hs256: await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256' }).sign(randomBytes(32)),
      wrongKey: await new SignJWT(claims())
        .setProtectedHeader({ alg: 'ES256', kid: real.kid })
        .sign(other.privateKey),
      // Signed by the real key but with claims that must not pass.
      expired: await new SignJWT(claims({ iat: 1_000_000, exp: 1_000_600 }))
        .setProtectedHeader({ alg: 'ES256', kid: real.kid })
        .sign(real.privateKey),
      wrongIss: await new SignJWT(claims({ iss: 'evil' }))
        .setProtectedHeader({ alg: 'ES256', kid: real.kid })
        .sign(real.privateKey),
      wrongAud: await new SignJWT(claims({ aud: 'other' }))
        .setProtectedHeader({ alg: 'ES256', kid: real.kid })
        .sign(real.privateKey),
      badRole: await new SignJWT(claims({ role: 'root' }))
        .setProtectedHeader({ alg: 'ES256', kid: real.kid })
        .sign(real.privateKey),
      // A valid signature moved onto an edited payload (tenant acme → platform).
      tampered: `${h}.${b64(claims({ tenant: '*' }))}.${sig}`,
      garbage: 'not.a.jwt',
    };
  });

  const endpoints = [
    ['GET', '/api/v1/logs?tenant_id=acme', undefined],
    ['GET', `/api/v1/logs/${A.alice1}`, undefined],
    ['POST', '/api/v1/logs', ev(50)],
    ['POST', '/api/v1/logs/bulk', { events: [ev(50)] }],
    ['POST', '/api/v1/tenants', { id: 'forged', name: 'x' }],
    ['GET', '/api/v1/tenants', undefined],
  ] as const;

  it.each([
    ['algNone', 'token_invalid'],
    ['hs256', 'token_invalid'],
    ['wrongKey', 'token_invalid'],
    ['expired', 'token_expired'],
    ['wrongIss', 'token_claims_invalid'],
    ['wrongAud', 'token_claims_invalid'],
    ['badRole', 'token_claims_invalid'],
    ['tampered', 'token_invalid'],
    ['garbage', 'token_invalid'],
  ])('a %s token gets 401 %s on every endpoint and changes nothing', async (name, code) => {
    const before = await queueSeq();
    for (const [method, path, body] of endpoints) {
      const res = await http(svc.url, method, path, { token: forged[name] ?? '', body });
      expect([method, path, res.status, res.body?.error?.code]).toEqual([method, path, 401, code]);
      expect(Object.keys(res.body.error).sort()).toEqual(['code', 'message']);
    }
    expect(await queueSeq()).toBe(before);
    const { rows } = await db.query(`SELECT count(*)::int AS n FROM tenants WHERE id = 'forged'`);
    expect(rows[0].n).toBe(0);
  });

  it.each([
    ['no header', {}],
    ['a Basic credential', { authorization: 'Basic YWRtaW46YWRtaW4=' }],
    ['an empty bearer', { authorization: 'Bearer ' }],
  ])('%s gets 401 missing_token on every endpoint', async (_name, headers) => {
    for (const [method, path, body] of endpoints) {
      const res = await http(svc.url, method, path, { headers: headers as Record<string, string>, body });
      expect([method, path, res.status, res.body?.error?.code]).toEqual([method, path, 401, 'missing_token']);
    }
  });
});
