import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../infra/auth/sign.js';
import { startTestService, type TestService } from '../test/harness.js';
import { createTenants, StreamClient } from './test-client.js';

/** Heartbeats, idle close and token expiry, with intervals shortened so the test runs in seconds. */
describe('stream housekeeping', () => {
  let svc: TestService;
  let reader: string;

  beforeAll(async () => {
    svc = await startTestService(['ingest', 'mask', 'encrypt', 'persist', 'query', 'stream'], {
      STREAM_HEARTBEAT_MS: '200',
      STREAM_IDLE_TIMEOUT_MS: '1500',
    });
    await createTenants(svc.url, await svc.token('*', 'admin', 'root'), ['acme']);
    reader = await svc.token('acme', 'auditor', 'tail');
  });
  afterAll(async () => svc?.stop());

  it('closes an idle connection with 4000 and its resume point', async () => {
    // A filter nothing matches: no event is ever sent, and the client says nothing.
    const client = await StreamClient.open(svc.url, reader, { resource_type: 'nothing' });
    const close = await client.waitForClose();
    expect(close.code).toBe(4000);
    const reason = JSON.parse(close.reason);
    expect(reason.code).toBe('idle_timeout');
    expect(reason.since).toMatch(/^[0-9]+$/);
    expect(BigInt(reason.since)).toBeGreaterThanOrEqual(BigInt(client.frames[0].since));
  });

  it('keeps a client that sends application pings, and answers each with pong', async () => {
    const client = await StreamClient.open(svc.url, reader, { resource_type: 'nothing' });
    for (let i = 1; i <= 8; i++) {
      client.send({ type: 'ping' });
      await client.waitForFrame(() => client.frames.filter((f) => f.type === 'pong').length >= i);
      await new Promise((r) => setTimeout(r, 300));
    }
    // 2.4 s of pings at 0.3 s intervals, well past the 1.5 s idle timeout.
    expect(client.closed).toBeUndefined();
    await client.close();
  });

  it('terminates a client that stops answering pings', async () => {
    const client = await StreamClient.open(svc.url, reader, {});
    const socket = (client.ws as any)._socket as import('node:net').Socket;
    socket.pause();
    const text = async () =>
      svc.ctx.metrics.registry.getSingleMetricAsString('auditlog_stream_disconnects_total');
    await new Promise((r) => setTimeout(r, 1000));
    socket.resume();
    const close = await client.waitForClose();
    // Terminated without a close frame: the client sees an abnormal closure.
    expect(close.code).toBe(1006);
    expect(await text()).toContain('auditlog_stream_disconnects_total{reason="heartbeat",daemon="test"} 1');
  });

  it('closes with 4001 when the token expires', async () => {
    const token = await signToken(
      svc.config.DATA_DIR,
      svc.config,
      { tenant: 'acme', role: 'auditor', sub: 's' },
      1,
    );
    const client = await StreamClient.open(svc.url, token, {});
    const close = await client.waitForClose();
    expect(close.code).toBe(4001);
    expect(JSON.parse(close.reason).code).toBe('token_expired');
  });
});
