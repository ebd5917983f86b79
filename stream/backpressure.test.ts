import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestService, type TestService } from '../test/harness.js';
import { createTenants, ingest, range, StreamClient } from './test-client.js';

/** A metric sample of this service, or 0 when it has not been observed yet. */
async function sample(svc: TestService, name: string, labels: string): Promise<number> {
  const text = await svc.ctx.metrics.registry.getSingleMetricAsString(name);
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('stream backpressure', () => {
  let svc: TestService;
  let writer: string;
  let reader: string;

  beforeAll(async () => {
    svc = await startTestService('all', {
      STREAM_MAX_BUFFERED_BYTES: '65536',
      STREAM_MAX_QUEUE: '256',
      // Long enough that the paused client is cut off for being slow, not for a missed pong.
      STREAM_HEARTBEAT_MS: '300000',
    });
    await createTenants(svc.url, await svc.token('*', 'admin', 'root'), ['acme']);
    writer = await svc.token('acme', 'admin', 'app');
    reader = await svc.token('acme', 'auditor', 'tail');
  });
  afterAll(async () => svc?.stop());

  it('cuts off a client that stops reading with 4008 and its resume point, while others keep up', async () => {
    const slow = await StreamClient.open(svc.url, reader, { since: '0' });
    const fast = await StreamClient.open(svc.url, reader, { since: '0' });
    const slowSocket = (slow.ws as any)._socket as import('node:net').Socket;
    slowSocket.pause();

    // Big events fill the kernel buffers quickly; keep posting until the server gives up on the
    // paused client (the operating system absorbs a few MB first, so the count is not fixed).
    const big = 'lorem ipsum dolor sit amet '.repeat(450);
    const posted: string[] = [];
    for (
      let batch = 0;
      (await sample(svc, 'auditlog_stream_disconnects_total', 'reason="slow_consumer"')) === 0;
      batch++
    ) {
      expect(batch).toBeLessThan(200);
      const events = Array.from({ length: 40 }, (_, i) => ({
        action: 'UPDATE',
        resource_type: 'order',
        resource_id: `o-${batch}-${i}`,
        message: big,
      }));
      posted.push(...(await ingest(svc.url, writer, events)));
      await fast.waitForIds(posted.slice(-1));
    }
    expect(fast.closed).toBeUndefined();

    // The slow client reads again: it gets everything queued before the cut-off, then the close.
    slowSocket.resume();
    const close = await slow.waitForClose();
    expect(close.code).toBe(4008);
    const reason = JSON.parse(close.reason);
    expect(reason).toEqual({ code: 'slow_consumer', since: String(slow.sequences().at(-1)) });
    expect(slow.sequences()).toEqual(range(1, slow.events.length));

    // The others never waited for it, and the pipeline kept going: a new batch still arrives.
    const after = await ingest(svc.url, writer, [{ action: 'VIEW', resource_type: 'marker' }]);
    await fast.waitForIds(after);
    expect(fast.closed).toBeUndefined();
    const last = Number(fast.events.at(-1)!.sequence);
    expect(fast.sequences()).toEqual(range(1, last));
    expect(await sample(svc, 'auditlog_stream_disconnects_total', 'reason="slow_consumer"')).toBe(1);

    // The slow client resumes from its reason's `since` with no gap and no duplicate.
    const resumed = await StreamClient.open(svc.url, reader, { since: reason.since });
    await resumed.waitForIds(after);
    const all = [...slow.sequences(), ...resumed.sequences()];
    expect(all.slice(0, last)).toEqual(range(1, last));
    await resumed.close();
    await fast.close();
    await eventually(async () =>
      (await sample(svc, 'auditlog_stream_connections', '')) === 0 ? true : undefined,
    );
  });
});
