import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../test/harness.js';
import { createTenants, ingest, refusal, StreamClient } from './test-client.js';

/** Events keyed by resource_id, so expectations name them by hand. */
const SET_A = [
  {
    resource_id: 'a1',
    action: 'CREATE',
    severity: 'INFO',
    resource_type: 'doc',
    user_id: 'u-1',
    request_id: 'req-1',
  },
  {
    resource_id: 'a2',
    action: 'UPDATE',
    severity: 'WARNING',
    resource_type: 'doc',
    user_id: 'u-2',
    request_id: 'req-1',
  },
  {
    resource_id: 'a3',
    action: 'DELETE',
    severity: 'ERROR',
    resource_type: 'doc',
    user_id: 'u-2',
    request_id: 'req-2',
  },
  {
    resource_id: 'a4',
    action: 'UPDATE',
    severity: 'CRITICAL',
    resource_type: 'file',
    user_id: 'u-1',
    request_id: 'req-2',
  },
  { resource_id: 'a5', action: 'CREATE', severity: 'CRITICAL', resource_type: 'doc', user_id: 'u-3' },
  {
    resource_id: 'a6',
    action: 'UPDATE',
    severity: 'WARNING',
    resource_type: 'doc',
    user_id: 'u-3',
    request_id: 'req-1',
  },
  {
    resource_id: 'a7',
    action: 'LOGIN',
    severity: 'INFO',
    resource_type: 'session',
    user_id: 'u-2',
    request_id: 'req-3',
  },
];
const SET_B = [
  { resource_id: 'b1', action: 'CREATE', severity: 'INFO', resource_type: 'doc' },
  { resource_id: 'b2', action: 'UPDATE', severity: 'CRITICAL', resource_type: 'doc' },
  { resource_id: 'b3', action: 'DELETE', severity: 'CRITICAL', resource_type: 'file' },
  { resource_id: 'b4', action: 'CREATE', severity: 'CRITICAL', resource_type: 'doc' },
];

describe('stream filters', () => {
  let svc: TestService;
  let auditor: string;
  let writer: string;
  const clients: StreamClient[] = [];

  beforeAll(async () => {
    svc = await startTestService();
    await createTenants(svc.url, await svc.token('*', 'admin', 'root'), ['acme']);
    auditor = await svc.token('acme', 'auditor', 'filter-watcher');
    writer = await svc.token('acme', 'admin', 'app');
  });
  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await svc?.stop();
  });

  const open = async (query: Record<string, string>) => {
    const client = await StreamClient.open(svc.url, auditor, query);
    clients.push(client);
    return client;
  };
  /** The events' resource_ids, leaving out the subscriptions' own self-audit events. */
  const keys = (c: StreamClient) =>
    c.events.filter((e) => e.resource_type !== 'audit_log').map((e) => e.resource_id);

  it('applies connect-time filters and subscribe messages exactly like search', async () => {
    const byAction = await open({ action: 'CREATE,DELETE' });
    const bySeverity = await open({ severity: 'ERROR,CRITICAL' });
    const byResource = await open({ resource_type: 'doc', resource_id: 'a3' });
    const byUser = await open({ user_id: 'u-2' });
    const byRequest = await open({ request_id: 'req-1' });
    const combined = await open({ action: 'UPDATE', severity: 'WARNING', resource_type: 'doc' });
    const changer = await open({ action: 'CREATE' });
    const everything = await open({});

    const idsA = await ingest(svc.url, writer, SET_A);
    await everything.waitForIds(idsA);
    // The fan-out is synchronous per event: every subscriber has now considered all of set A.
    changer.send({ type: 'subscribe', filters: { severity: 'CRITICAL', resource_type: 'doc' } });
    const ack = await changer.waitForFrame((f) => f.type === 'subscribed');
    const lastA = Math.max(
      ...everything.events.filter((e) => idsA.includes(e.id)).map((e) => Number(e.sequence)),
    );
    expect(ack).toEqual({
      type: 'subscribed',
      since: expect.any(String),
      filters: { severity: 'CRITICAL', resource_type: 'doc' },
    });
    expect(Number(ack.since)).toBeGreaterThanOrEqual(lastA);

    const idsB = await ingest(svc.url, writer, SET_B);
    await everything.waitForIds(idsB);

    expect(keys(byAction)).toEqual(['a1', 'a3', 'a5', 'b1', 'b3', 'b4']);
    expect(keys(bySeverity)).toEqual(['a3', 'a4', 'a5', 'b2', 'b3', 'b4']);
    expect(keys(byResource)).toEqual(['a3']);
    expect(keys(byUser)).toEqual(['a2', 'a3', 'a7']);
    expect(keys(byRequest)).toEqual(['a1', 'a2', 'a6']);
    expect(keys(combined)).toEqual(['a2', 'a6']);
    expect(keys(changer)).toEqual(['a1', 'a5', 'b2', 'b4']);
    expect(keys(everything)).toEqual([...SET_A, ...SET_B].map((e) => e.resource_id));
    // The filter clients never saw the audit events either: they do not match their filters.
    for (const c of [byAction, bySeverity, byResource, byUser, byRequest, combined]) {
      expect(c.events.every((e) => e.resource_type !== 'audit_log')).toBe(true);
    }

    // A replay applies the same filters in SQL.
    const replay = await open({ since: '0', action: 'DELETE' });
    expect(keys(replay)).toEqual(['a3', 'b3']);
  });

  it('answers bad messages with an error frame and keeps the subscription', async () => {
    const client = await open({ action: 'DELETE' });
    const errors = () => client.frames.filter((f) => f.type === 'error');
    const expectError = async (n: number) => {
      await client.waitForFrame(() => errors().length >= n);
      return errors()[n - 1];
    };
    client.send('not json');
    expect(await expectError(1)).toEqual({
      type: 'error',
      error: { code: 'invalid_json', message: 'message is not valid JSON' },
    });
    client.send({ type: 'subscribe', filters: { severity: 'LOUD' } });
    const bad = await expectError(2);
    expect(bad.error.code).toBe('validation_failed');
    expect(bad.error.details).toEqual([
      {
        path: 'message/filters/severity',
        message: 'must match pattern "^(INFO|WARNING|ERROR|CRITICAL)(,(INFO|WARNING|ERROR|CRITICAL))*$"',
      },
    ]);
    client.send({ type: 'subscribe', filters: { tenant_id: 'globex' } });
    expect((await expectError(3)).error.details).toEqual([
      { path: 'message/filters/tenant_id', message: 'unknown parameter' },
    ]);
    client.send({ type: 'subscribe' });
    expect((await expectError(4)).error.details).toEqual([
      { path: 'message/filters', message: 'is required' },
    ]);
    client.send({ type: 'unsubscribe' });
    expect((await expectError(5)).error.code).toBe('invalid_message');
    client.send('null');
    expect((await expectError(6)).error.code).toBe('invalid_message');
    client.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    expect((await expectError(7)).error).toEqual({
      code: 'invalid_message',
      message: 'messages must be JSON text frames',
    });
    client.send({ type: 'ping' });
    await client.waitForFrame((f) => f.type === 'pong');
    expect(client.closed).toBeUndefined();

    // The original filter still holds.
    const ids = await ingest(svc.url, writer, [
      { action: 'CREATE', resource_type: 'doc', resource_id: 'c1' },
      { action: 'DELETE', resource_type: 'doc', resource_id: 'c2' },
    ]);
    await client.waitForIds([ids[1]]);
    expect(keys(client)).toEqual(['c2']);
  });

  it('refuses invalid filters before the upgrade and closes on oversized messages', async () => {
    const res = await refusal(svc.url, { severity: 'LOUD' }, { authorization: `Bearer ${auditor}` });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    expect(res.body.error.details[0].path).toBe('querystring/severity');

    const client = await open({});
    client.send({ type: 'subscribe', filters: { resource_id: 'x'.repeat(20_000) } });
    expect((await client.waitForClose()).code).toBe(1009);
  });
});
