import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startDaemons } from '../bin/compose.js';
import { configureFromEnv } from '../infra/config.js';
import { createContext } from '../infra/context.js';
import { http, startTestService, type TestService, testEnv } from '../test/harness.js';
import { createTenants, ingest, range, StreamClient } from './test-client.js';

/** Posts small batches back to back until stopped; resolves to the ids it posted. */
function continuousIngest(svc: TestService, token: string) {
  let stopping = false;
  let batch = 0;
  const done = (async () => {
    const ids: string[] = [];
    while (!stopping) {
      const events = Array.from({ length: 10 }, (_, i) => ({
        action: 'UPDATE',
        resource_type: 'order',
        resource_id: `o-${batch}-${i}`,
        metadata: { batch },
      }));
      ids.push(...(await ingest(svc.url, token, events)));
      batch++;
      await new Promise((r) => setTimeout(r, 20));
    }
    return ids;
  })();
  return {
    async stop() {
      stopping = true;
      return done;
    },
  };
}

/** The close reason as sent: `{"code", "since"}`. */
function reasonOf(close: { reason: string }): { code: string; since: string } {
  return JSON.parse(close.reason);
}

describe('stream resume and multiple instances', () => {
  let svc: TestService;
  let writer: string;
  let reader: string;

  beforeAll(async () => {
    svc = await startTestService();
    await createTenants(svc.url, await svc.token('*', 'admin', 'root'), ['acme']);
    writer = await svc.token('acme', 'admin', 'app');
    reader = await svc.token('acme', 'auditor', 'tail');
  });
  afterAll(async () => svc?.stop());

  it('resumes across disconnects during continuous ingest with exact sequence continuity', async () => {
    const received: number[] = [];
    let replayed = 0;
    let client = await StreamClient.open(svc.url, reader, { since: '0' });
    const load = continuousIngest(svc, writer);
    for (let round = 0; round < 4; round++) {
      const start = client.events.length;
      // At least 25 events and past the seam: the backlog replayed may itself exceed 25 events.
      await client.waitForFrame(
        () => client.events.length >= start + 25 && client.frames.some((f) => f.type === 'live'),
      );
      await client.close();
      received.push(...client.sequences());
      if (round > 0) {
        // The seam really was crossed: this connection replayed history, then went live.
        const ready = client.frames.find((f) => f.type === 'ready');
        const live = client.frames.find((f) => f.type === 'live');
        expect(BigInt(live.since)).toBeGreaterThan(BigInt(ready.since));
        replayed += Number(live.since) - Number(ready.since);
      }
      // Ingest goes on while nobody listens; the next connection must replay exactly that.
      await new Promise((r) => setTimeout(r, 150));
      client = await StreamClient.connect(svc.url, reader, { since: String(received.at(-1)) });
    }
    const posted = await load.stop();
    const [marker] = await ingest(svc.url, writer, [{ action: 'VIEW', resource_type: 'marker' }]);
    await client.waitForIds([marker]);
    received.push(...client.sequences());
    await client.close();

    const last = Number(client.events.find((e) => e.id === marker)!.sequence);
    // Every event of the tenant (posted ones and the subscriptions' own audit events) exactly once.
    expect(received.slice(0, last)).toEqual(range(1, last));
    expect(received.length).toBeGreaterThanOrEqual(posted.length + 1);
    expect(posted.length).toBeGreaterThanOrEqual(100);
    expect(replayed).toBeGreaterThanOrEqual(3);
  });

  it('resumes after a search cursor', async () => {
    const watcher = await StreamClient.open(svc.url, reader, {});
    const at = (minutesAgo: number) => new Date(Date.now() - minutesAgo * 60_000).toISOString();
    const ids = await ingest(svc.url, writer, [
      { action: 'CREATE', resource_type: 'cursor', resource_id: 'c-0', occurred_at: at(3) },
      { action: 'CREATE', resource_type: 'cursor', resource_id: 'c-1', occurred_at: at(2) },
      { action: 'CREATE', resource_type: 'cursor', resource_id: 'c-2', occurred_at: at(1) },
    ]);
    await watcher.waitForIds(ids);
    await watcher.close();
    // Newest first, one per page: the second page's cursor points at c-1.
    const first = await http(svc.url, 'GET', '/api/v1/logs?limit=1&resource_type=cursor', { token: reader });
    const second = await http(
      svc.url,
      'GET',
      `/api/v1/logs?limit=1&resource_type=cursor&cursor=${first.body.next_cursor}`,
      { token: reader },
    );
    expect(
      second.body.data.map((e: { id: string }) => e.id),
      second.text,
    ).toEqual([ids[1]]);
    const cursorSeq = Number(second.body.data[0].sequence);
    const client = await StreamClient.open(svc.url, reader, { since: second.body.next_cursor });
    expect(client.frames[0].since).toBe(String(cursorSeq));
    expect(client.sequences()[0]).toBe(cursorSeq + 1);
    expect(client.events[0]!.id).toBe(ids[2]);
    expect(client.sequences()).toEqual(range(cursorSeq + 1, cursorSeq + client.events.length));
    await client.close();
  });

  it('delivers the same events from two stream instances, and hands over on shutdown', async () => {
    const config2 = configureFromEnv(testEnv(svc.config.DATABASE_URL!, svc.config.DATA_DIR));
    const ctx2 = await createContext(config2, { daemon: 'stream2', log: pino({ level: 'silent' }) });
    let second: Running | undefined;
    try {
      second = await startDaemons(ctx2, ['stream']);
      const a = await StreamClient.open(svc.url, reader, { resource_type: 'order' });
      const b = await StreamClient.open(second.url, reader, { resource_type: 'order' });
      const ids = await ingest(
        svc.url,
        writer,
        Array.from({ length: 50 }, (_, i) => ({
          action: 'CREATE',
          resource_type: 'order',
          resource_id: `two-${i}`,
        })),
      );
      await a.waitForIds(ids);
      await b.waitForIds(ids);
      expect(a.events.map((e) => e.id)).toEqual(ids);
      expect(b.events).toEqual(a.events);
      await a.close();

      // The second instance stops during ingest: its client gets 1001 with its resume point and
      // continues on the first instance without a gap or a duplicate.
      const tail = await StreamClient.open(second.url, reader, {});
      const load = continuousIngest(svc, writer);
      await tail.waitForFrame(() => tail.events.length >= 20);
      await second.stop();
      second = undefined;
      const close = await tail.waitForClose();
      expect(close.code).toBe(1001);
      const reason = reasonOf(close);
      expect(reason).toEqual({ code: 'going_away', since: String(tail.sequences().at(-1)) });
      const resumed = await StreamClient.connect(svc.url, reader, { since: reason.since });
      await resumed.waitForFrame(() => resumed.events.length >= 20);
      await load.stop();
      const [marker] = await ingest(svc.url, writer, [{ action: 'VIEW', resource_type: 'marker' }]);
      await resumed.waitForIds([marker]);
      const all = [...tail.sequences(), ...resumed.sequences()];
      const first = all[0]!;
      const last = Number(resumed.events.find((e) => e.id === marker)!.sequence);
      expect(all.slice(0, last - first + 1)).toEqual(range(first, last));
      await resumed.close();
    } finally {
      await second?.stop();
    }
  });
});
