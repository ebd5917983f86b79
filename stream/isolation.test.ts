import fs from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../infra/auth/sign.js';
import { eventually, http, startTestService, type TestService, tempDir } from '../test/harness.js';
import { createTenants, ingest, refusal, StreamClient } from './test-client.js';

/**
 * The stream from the attacker's side: every way of asking for another tenant's events is refused
 * before the upgrade, and a subscriber receives nothing outside its own scope, whatever filters
 * it sets.
 */
describe('stream authentication and tenant isolation', () => {
  let svc: TestService;
  let platform: string;
  const clients: StreamClient[] = [];

  beforeAll(async () => {
    svc = await startTestService();
    platform = await svc.token('*', 'admin', 'root');
    await createTenants(svc.url, platform, ['acme', 'globex']);
  });
  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await svc?.stop();
  });

  const open = async (
    ...args: Parameters<typeof StreamClient.open> extends [string, ...infer R] ? R : never
  ) => {
    const client = await StreamClient.open(svc.url, ...args);
    clients.push(client);
    return client;
  };

  it('refuses bad requests with a plain HTTP answer before the upgrade', async () => {
    const acmeAdmin = await svc.token('acme', 'admin', 'a');
    const auth = (t: string) => ({ authorization: `Bearer ${t}` });

    const none = await refusal(svc.url, {});
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe('missing_token');
    expect(none.headers['www-authenticate']).toBe('Bearer');

    const garbage = await refusal(svc.url, {}, auth('not.a.jwt'));
    expect(garbage).toMatchObject({ status: 401, body: { error: { code: 'token_invalid' } } });
    const garbageQuery = await refusal(svc.url, { access_token: 'not.a.jwt' });
    expect(garbageQuery).toMatchObject({ status: 401, body: { error: { code: 'token_invalid' } } });
    const basic = await refusal(svc.url, {}, { authorization: 'Basic YWRtaW46YWRtaW4=' });
    expect(basic).toMatchObject({ status: 401, body: { error: { code: 'missing_token' } } });

    // A well-formed token for acme, signed by a key this service does not trust.
    const foreignKeyDir = tempDir();
    const forged = await signToken(foreignKeyDir, svc.config, {
      tenant: 'acme',
      role: 'admin',
      sub: 'x',
    }).finally(() => fs.rmSync(foreignKeyDir, { recursive: true, force: true }));
    const forgedRes = await refusal(svc.url, {}, auth(forged));
    expect(forgedRes).toMatchObject({ status: 401, body: { error: { code: 'token_invalid' } } });

    // A valid acme token asking for globex, by header and by query parameter.
    const cross = await refusal(svc.url, { tenant_id: 'globex' }, auth(acmeAdmin));
    expect(cross.status).toBe(403);
    expect(cross.body).toEqual({
      error: { code: 'forbidden_tenant', message: 'tenant_id must be your own tenant' },
    });
    const crossQuery = await refusal(svc.url, { tenant_id: 'globex', access_token: acmeAdmin });
    expect(crossQuery.status).toBe(403);
    // Same answer for a tenant that does not exist: nothing is revealed about other tenants.
    const crossMissing = await refusal(svc.url, { tenant_id: 'nope' }, auth(acmeAdmin));
    expect(crossMissing.body).toEqual(cross.body);

    const platformNoTenant = await refusal(svc.url, {}, auth(platform));
    expect(platformNoTenant).toMatchObject({ status: 400, body: { error: { code: 'tenant_required' } } });
    const platformUser = await refusal(
      svc.url,
      { tenant_id: 'acme' },
      auth(await svc.token('*', 'user', 'p')),
    );
    expect(platformUser).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } });
    const platformMissing = await refusal(svc.url, { tenant_id: 'nope' }, auth(platform));
    expect(platformMissing).toMatchObject({ status: 404, body: { error: { code: 'tenant_not_found' } } });

    const unknownParam = await refusal(svc.url, { tenant: 'globex' }, auth(acmeAdmin));
    expect(unknownParam.status).toBe(400);
    expect(unknownParam.body.error).toEqual({
      code: 'validation_failed',
      message: 'invalid querystring',
      details: [{ path: 'querystring/tenant', message: 'unknown parameter' }],
    });
    const twice = await refusal(svc.url, {}, auth(acmeAdmin), '/api/v1/logs/stream?user_id=a&user_id=b');
    expect(twice).toMatchObject({ status: 400, body: { error: { code: 'validation_failed' } } });
    const badSince = await refusal(svc.url, { since: 'garbage!' }, auth(acmeAdmin));
    expect(badSince).toMatchObject({ status: 400, body: { error: { code: 'invalid_cursor' } } });
    const elsewhere = await refusal(svc.url, {}, auth(acmeAdmin), '/api/v1/logs');
    expect(elsewhere).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });

    // Without an upgrade the endpoint answers 426 (and still requires a token first).
    const plain = await http(svc.url, 'GET', '/api/v1/logs/stream', { token: acmeAdmin });
    expect(plain.status).toBe(426);
    expect(plain.body.error.code).toBe('upgrade_required');
    expect((await http(svc.url, 'GET', '/api/v1/logs/stream')).status).toBe(401);

    const refused = await svc.ctx.metrics.registry.getSingleMetricAsString('auditlog_stream_refused_total');
    expect(refused).toContain('auditlog_stream_refused_total{status="401",daemon="test"} 5');
    expect(refused).not.toContain('acme');
  });

  it('never delivers an event outside the subscriber scope, whatever the filters', async () => {
    const acmeWriter = await svc.token('acme', 'admin', 'app');
    const globexWriter = await svc.token('globex', 'admin', 'app');
    const acmeAdmin = await open(await svc.token('acme', 'admin', 'a1'));
    const acmeAuditorByQuery = await open(await svc.token('acme', 'auditor', 'a2'), {}, true);
    const u1 = await open(await svc.token('acme', 'user', 'u-1'));
    // A user asking for someone else's events gets the intersection with its own: nothing.
    const u1Spy = await open(await svc.token('acme', 'user', 'u-1'), { user_id: 'u-2' });
    const globexAdmin = await open(await svc.token('globex', 'admin', 'g1'));
    // Filters that match acme's events exactly, from a globex token.
    const globexSpy = await open(await svc.token('globex', 'admin', 'g2'), {
      user_id: 'u-1',
      resource_type: 'order',
      tenant_id: 'globex',
    });
    const platformOnGlobex = await open(platform, { tenant_id: 'globex' });

    const acmeEvents = [1, 2, 3, 4, 5, 6].map((i) => ({
      user_id: i % 2 ? 'u-1' : 'u-2',
      action: 'UPDATE',
      resource_type: 'order',
      resource_id: `o-${i}`,
      message: `acme secret ${i}`,
      metadata: { plan: 'gold' },
    }));
    const acmeIds = await ingest(svc.url, acmeWriter, acmeEvents);
    await acmeAdmin.waitForIds(acmeIds);
    await acmeAuditorByQuery.waitForIds(acmeIds);
    // Everything of acme has now been fanned out by this instance; any leak to a globex socket
    // would have been queued before the globex events below.
    globexSpy.send({ type: 'subscribe', filters: { resource_type: 'order' } });
    await globexSpy.waitForFrame((f) => f.type === 'subscribed');
    const globexIds = await ingest(svc.url, globexWriter, [
      { user_id: 'u-1', action: 'CREATE', resource_type: 'order', resource_id: 'g-1' },
      { user_id: 'u-9', action: 'CREATE', resource_type: 'invoice', resource_id: 'g-2' },
    ]);
    await globexAdmin.waitForIds(globexIds);
    await platformOnGlobex.waitForIds(globexIds);
    await globexSpy.waitForIds([globexIds[0]]);
    // A marker for u-1 after the u-2 events: once it arrives, every earlier acme event was considered.
    const [marker] = await ingest(svc.url, acmeWriter, [
      { user_id: 'u-1', action: 'VIEW', resource_type: 'order' },
    ]);
    await u1.waitForIds([marker]);
    u1Spy.send({ type: 'subscribe', filters: {} });
    await u1Spy.waitForFrame((f) => f.type === 'subscribed');
    const [marker2] = await ingest(svc.url, acmeWriter, [
      { user_id: 'u-1', action: 'VIEW', resource_type: 'x' },
    ]);
    await u1Spy.waitForIds([marker2]);
    await acmeAdmin.waitForIds([marker2]);
    await acmeAuditorByQuery.waitForIds([marker2]);
    await u1.waitForIds([marker2]);

    // Subscriptions are self-audited into the tenant read, so audit_log events interleave.
    const data = (c: StreamClient) =>
      c.events.filter((e) => e.resource_type !== 'audit_log').map((e) => e.id);
    expect(data(acmeAdmin)).toEqual([...acmeIds, marker, marker2]);
    expect(data(acmeAuditorByQuery)).toEqual([...acmeIds, marker, marker2]);
    expect(data(u1)).toEqual([acmeIds[0], acmeIds[2], acmeIds[4], marker, marker2]);
    expect(u1.events.every((e) => e.tenant_id === 'acme' && e.user_id === 'u-1')).toBe(true);
    expect(data(u1Spy)).toEqual([marker2]);
    expect(u1Spy.events.every((e) => e.tenant_id === 'acme' && e.user_id === 'u-1')).toBe(true);
    expect(data(globexAdmin)).toEqual(globexIds);
    expect(data(platformOnGlobex)).toEqual(globexIds);
    expect(data(globexSpy)).toEqual([globexIds[0]]);
    for (const c of [globexAdmin, globexSpy, platformOnGlobex]) {
      expect(c.events.every((e) => e.tenant_id === 'globex')).toBe(true);
      expect(JSON.stringify(c.frames)).not.toContain('acme');
    }
    for (const c of [acmeAdmin, acmeAuditorByQuery, u1, u1Spy]) {
      expect(c.events.every((e) => e.tenant_id === 'acme')).toBe(true);
      expect(JSON.stringify(c.frames)).not.toContain('globex');
    }
    // Sequences arrive in order, without duplicates.
    for (const c of clients) {
      const seqs = c.sequences();
      expect(seqs).toEqual([...new Set(seqs)].sort((a, b) => a - b));
    }

    // Exactly the search API's shape, decrypted.
    const search = await http(svc.url, 'GET', '/api/v1/logs?limit=100', { token: acmeWriter });
    const byId = new Map(search.body.data.map((e: any) => [e.id, e]));
    for (const e of acmeAdmin.events) expect(e).toEqual(byId.get(e.id));
    expect(acmeAdmin.events.find((e) => e.resource_id === 'o-1')).toMatchObject({
      message: 'acme secret 1',
      metadata: { plan: 'gold' },
    });
  });

  it('replays only the subscriber scope', async () => {
    // The database is the oracle: what each scope holds right now, read without the API (whose
    // reads would add self-audit events of their own).
    const db = new pg.Client({ connectionString: svc.config.DATABASE_URL });
    await db.connect();
    const snapshot = async (tenant: string) =>
      (
        await db.query<{ seq: string; user_id: string | null }>(
          'SELECT seq::text AS seq, user_id FROM events WHERE tenant_id = $1 ORDER BY events.seq',
          [tenant],
        )
      ).rows.map((r) => ({ seq: Number(r.seq), user: r.user_id }));
    const acme = await snapshot('acme');
    const globex = await snapshot('globex');
    await db.end();
    const acmeTop = acme.at(-1)!.seq;
    const globexTop = globex.at(-1)!.seq;
    expect(acmeTop).toBeGreaterThanOrEqual(8);

    const globexReplay = await open(await svc.token('globex', 'auditor', 'g3'), { since: '0' });
    const u1Replay = await open(await svc.token('acme', 'user', 'u-1'), { since: '0' });
    const platformReplay = await open(platform, { tenant_id: 'acme', since: '2', severity: 'INFO' });
    const upTo = (c: StreamClient, top: number) => c.sequences().filter((n) => n <= top);
    expect(upTo(globexReplay, globexTop)).toEqual(globex.map((r) => r.seq));
    expect(globexReplay.events.every((e) => e.tenant_id === 'globex')).toBe(true);
    expect(upTo(u1Replay, acmeTop)).toEqual(acme.filter((r) => r.user === 'u-1').map((r) => r.seq));
    expect(u1Replay.events.every((e) => e.tenant_id === 'acme' && e.user_id === 'u-1')).toBe(true);
    expect(upTo(platformReplay, acmeTop)).toEqual(acme.filter((r) => r.seq > 2).map((r) => r.seq));
    expect(globexReplay.frames[0]).toEqual({
      type: 'ready',
      tenant_id: 'globex',
      since: '0',
      filters: {},
      request_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    const live = globexReplay.frames.find((f) => f.type === 'live');
    expect(Number(live.since)).toBeGreaterThanOrEqual(globexTop);
    // Every event before `live` is history, every event after is live: together, one gapless run.
    expect(globexReplay.frames.indexOf(live)).toBe(
      globexReplay.sequences().filter((n) => n <= Number(live.since)).length + 1,
    );
  });

  it('records each subscription as a self-audit event, without the token', async () => {
    const token = await svc.token('acme', 'auditor', 'watcher');
    const watcher = await open(token, { action: 'VIEW', resource_type: 'audit_log', since: '0' }, true);
    const ready = watcher.frames[0];
    const own = await eventually(async () => watcher.events.find((e) => e.request_id === ready.request_id));
    expect(own).toMatchObject({
      tenant_id: 'acme',
      action: 'VIEW',
      resource_type: 'audit_log',
      user_id: 'watcher',
      severity: 'INFO',
      request_id: ready.request_id,
      metadata: {
        operation: 'stream',
        role: 'auditor',
        filters: { action: 'VIEW', resource_type: 'audit_log', since: '0' },
      },
    });
    expect(JSON.stringify(watcher.frames)).not.toContain(token);
    // Every subscription so far was recorded: the earlier acme ones by their subjects.
    const subjects = watcher.events.filter((e) => e.metadata?.operation === 'stream').map((e) => e.user_id);
    for (const sub of ['a1', 'a2', 'u-1', 'platform:root', 'watcher']) expect(subjects).toContain(sub);
    expect(subjects).not.toContain('g1');
  });
});
