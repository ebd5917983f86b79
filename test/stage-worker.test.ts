import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, http, startTestService, type TestService } from './harness.js';

/**
 * `all` with STAGE_WORKER=true (the default outside tests): the stages run in a worker thread with
 * their own context, and the daemon's `/metrics` merges the worker's series into its own.
 */
let svc: TestService;
let admin: string;

beforeAll(async () => {
  svc = await startTestService('all', { STAGE_WORKER: 'true' });
  await svc.createTenant('acme');
  admin = await svc.token('acme', 'admin', 'acme-admin');
}, 60_000);
afterAll(async () => {
  await svc?.stop();
});

/** Every sample line of a metric family, label set → value. */
async function samples(name: string): Promise<Map<string, number>> {
  const res = await http(svc.url, 'GET', '/metrics');
  expect(res.status).toBe(200);
  const out = new Map<string, number>();
  for (const line of res.text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

describe('stages in a worker thread', () => {
  it('persists what ingest accepted, and counts it in the daemon metrics', async () => {
    const events = Array.from({ length: 50 }, (_, i) => ({
      action: 'CREATE',
      resource_type: 'doc',
      resource_id: `d${i}`,
    }));
    const res = await http(svc.url, 'POST', '/api/v1/logs/bulk', { token: admin, body: { events } });
    expect(res.status).toBe(202);
    const found = await eventually(async () => {
      const r = await http(svc.url, 'GET', '/api/v1/logs?resource_type=doc&limit=100', { token: admin });
      return r.status === 200 && r.body.data.length === 50 ? r.body.data : undefined;
    });
    expect(found.map((e: { resource_id: string }) => e.resource_id).sort()).toEqual(
      events.map((e) => e.resource_id).sort(),
    );
    // Stage counters live in the worker's registry; /metrics shows them, once per stage.
    const persisted = await samples('auditlog_stage_events_in_total');
    const persist = [...persisted].filter(([labels]) => labels.includes('stage="persist"'));
    expect(persist).toHaveLength(1);
    expect(persist[0]![1]).toBeGreaterThanOrEqual(50);
    expect(persist[0]![0]).toContain('daemon="test"');
    // Main-thread series are still there, and process metrics are not doubled by the worker.
    expect((await samples('auditlog_ingest_events_total')).size).toBe(1);
    expect([...(await samples('process_cpu_user_seconds_total')).values()]).toHaveLength(1);
    // The main thread's own stage counters stay empty: no runner runs there.
    expect(svc.ctx.metrics.sources).toHaveLength(1);
    expect((await svc.ctx.metrics.eventsIn.get()).values).toEqual([]);
  });

  it.runIf(process.platform === 'linux')(
    'runs the stage thread at lower CPU priority than the HTTP thread',
    () => {
      const nice = (task: string) => {
        const stat = fs.readFileSync(`/proc/self/task/${task}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
      };
      const values = fs.readdirSync('/proc/self/task').map(nice);
      expect(nice(String(process.pid))).toBe(0);
      expect(values.filter((v) => v === 10)).toHaveLength(1);
    },
  );

  it('stops gracefully: the worker drains and ends with the daemon', async () => {
    const running = await startTestService('all', { STAGE_WORKER: 'true' });
    const started = Date.now();
    await running.stop();
    expect(Date.now() - started).toBeLessThan(15_000);
    await expect(running.ctx.pool.query('SELECT 1')).rejects.toThrow();
  });
});
