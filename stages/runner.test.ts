import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { pino } from 'pino';
import Type from 'typebox';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { configureFromEnv } from '../infra/config.js';
import { type Context, createContext } from '../infra/context.js';
import type { Batch } from '../infra/schema/batch.js';
import type { QueueName } from '../infra/transport/types.js';
import { createTestDatabase, eventually, tempDir, testEnv } from '../test/harness.js';
import { PART_EVENTS, type Runner, startRunner } from './runner.js';
import type { Stage } from './stage.js';

/** Tiny events: enough to prove ordering and routing without the real stages. */
const Item = Type.Object({ id: Type.String(), n: Type.Integer() }, { additionalProperties: false });
interface Item {
  id: string;
  n: number;
}

const MAX_ATTEMPTS = 3;
let ctx: Context;
let dataDir: string;
const runners: Runner[] = [];

beforeAll(async () => {
  dataDir = tempDir();
  const config = configureFromEnv(
    testEnv(await createTestDatabase(), dataDir, {
      QUEUE_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
      STAGE_RETRY_BASE_MS: '10',
      QUEUE_VISIBILITY_TIMEOUT_MS: '5000',
      STAGE_CONCURRENCY: '1',
    }),
  );
  ctx = await createContext(config, { daemon: 'runner-test', log: pino({ level: 'silent' }) });
});
afterEach(async () => {
  for (const r of runners.splice(0)) await r.stop(5000);
  await ctx.pool.query('TRUNCATE queue_messages, queue_dead_letters');
});
afterAll(async () => {
  await ctx?.close();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

function run(chain: Stage[]): Runner {
  const runner = startRunner(ctx, chain);
  runners.push(runner);
  return runner;
}

/** A fake stage whose behaviour the test controls; it records every batch it handled successfully. */
function fakeStage(
  input: QueueName,
  output: QueueName | undefined,
  behave: (batches: Batch<Item>[]) => Promise<void> | void = () => {},
  transform: (e: Item) => Item = (e) => e,
): Stage & { handled: string[]; calls: number } {
  const stage = {
    name: input as Stage['name'],
    input,
    output,
    inputEvent: Item,
    handled: [] as string[],
    calls: 0,
    async handle(batches: Batch<unknown>[]) {
      stage.calls++;
      const typed = batches as Batch<Item>[];
      await behave(typed);
      for (const b of typed) for (const e of b.events) stage.handled.push(e.id);
      return typed.map((b) => ({ ...b, events: b.events.map(transform) }));
    },
  };
  return stage;
}

async function send(queue: QueueName, tenant: string, ...ids: string[]): Promise<void> {
  await ctx.transport.send(queue, [
    {
      group: tenant,
      dedupId: randomUUID(),
      body: JSON.stringify({ v: 1, tenant_id: tenant, events: ids.map((id, n) => ({ id, n })) }),
    },
  ]);
}

async function deadLetteredCount(queue: QueueName): Promise<number> {
  const metric = await ctx.metrics.deadLettered.get();
  return metric.values.find((v) => v.labels.queue === queue)?.value ?? 0;
}

const drained = (queue: QueueName) =>
  eventually(async () => ((await ctx.transport.depth(queue)) === 0 ? true : undefined));

describe('startRunner', () => {
  it('runs fused stages in order, forwards the last output and acks the input', async () => {
    const first = fakeStage('mask', 'encrypt', undefined, (e) => ({ ...e, n: e.n + 100 }));
    const second = fakeStage('encrypt', 'persist', undefined, (e) => ({ ...e, id: `${e.id}!` }));
    run([first, second]);
    await send('mask', 'acme', 'a1', 'a2');
    await send('mask', 'globex', 'g1');
    await drained('mask');
    const out = await ctx.transport.receive('persist', { max: 10, waitMs: 0, visibilityMs: 5000 });
    const bodies = out.map((m) => JSON.parse(m.body)).sort((a, b) => a.tenant_id.localeCompare(b.tenant_id));
    expect(bodies).toEqual([
      {
        v: 1,
        tenant_id: 'acme',
        events: [
          { id: 'a1!', n: 100 },
          { id: 'a2!', n: 101 },
        ],
      },
      { v: 1, tenant_id: 'globex', events: [{ id: 'g1!', n: 100 }] },
    ]);
    expect(out.map((m) => m.group).sort()).toEqual(['acme', 'globex']);
    expect([...first.handled].sort()).toEqual(['a1', 'a2', 'g1']);
    // Nothing is left on the intermediate queue: fused stages hand over in memory.
    expect(await ctx.transport.depth('encrypt')).toBe(0);
  });

  it('refuses a chain of stages that are not consecutive', () => {
    expect(() => startRunner(ctx, [fakeStage('mask', 'encrypt'), fakeStage('persist', undefined)])).toThrow(
      'fused stages must be consecutive',
    );
    expect(() => startRunner(ctx, [])).toThrow('a runner needs at least one stage');
  });

  it(`retries a failing message, dead-letters it after ${MAX_ATTEMPTS} attempts and counts it`, async () => {
    const before = await deadLetteredCount('mask');
    const stage = fakeStage('mask', undefined, (batches) => {
      if (batches.some((b) => b.events.some((e) => e.id === 'poison'))) throw new Error('boom');
    });
    run([stage]);
    await send('mask', 'acme', 'poison');
    const dead = await eventually(async () => {
      const list = await ctx.transport.listDeadLetters('mask', 10);
      return list.length > 0 ? list : undefined;
    });
    expect(dead.map((d) => [d.group, d.attempts])).toEqual([['acme', MAX_ATTEMPTS]]);
    expect(JSON.parse(dead[0]!.body).events).toEqual([{ id: 'poison', n: 0 }]);
    expect(stage.calls).toBe(MAX_ATTEMPTS);
    expect(stage.handled).toEqual([]);
    expect(await deadLetteredCount('mask')).toBe(before + 1);
    expect(await ctx.transport.depth('mask')).toBe(0);
  });

  it('a failure holds back later messages of the same group, not other groups', async () => {
    const stage = fakeStage('mask', undefined, (batches) => {
      if (batches.some((b) => b.events.some((e) => e.id === 'a1'))) throw new Error('a1 always fails');
    });
    // All three are queued before the runner starts, so its first receive takes them together.
    await send('mask', 'acme', 'a1');
    await send('mask', 'acme', 'a2');
    await send('mask', 'globex', 'g1');
    run([stage]);

    await drained('mask');
    // g1 went through at once; a2 only after a1 was given up on, and a2 was never dead-lettered
    // although it was held back on each of a1's attempts.
    expect(stage.handled).toEqual(['g1', 'a2']);
    const dead = await ctx.transport.listDeadLetters('mask', 10);
    expect(dead.map((d) => JSON.parse(d.body).events[0].id)).toEqual(['a1']);
  });

  it('processes a group in order after transient failures', async () => {
    let failures = 2;
    const stage = fakeStage('mask', undefined, (batches) => {
      if (failures > 0 && batches.some((b) => b.events.some((e) => e.id === 'x1'))) {
        failures--;
        throw new Error('transient');
      }
    });
    await send('mask', 'acme', 'x1');
    await send('mask', 'acme', 'x2');
    await send('mask', 'acme', 'x3');
    run([stage]);
    await drained('mask');
    expect(stage.handled).toEqual(['x1', 'x2', 'x3']);
    expect(await ctx.transport.listDeadLetters('mask', 10)).toEqual([]);
  });

  it('dead-letters an unparsable message without blocking other groups', async () => {
    const stage = fakeStage('mask', undefined);
    await ctx.transport.send('mask', [
      { group: 'acme', dedupId: randomUUID(), body: '{"v":1,"tenant_id":"acme","events":[{"nope":true}]}' },
      { group: 'acme', dedupId: randomUUID(), body: 'not json' },
    ]);
    await send('mask', 'globex', 'ok1');
    run([stage]);
    await drained('mask');
    expect(stage.handled).toEqual(['ok1']);
    const dead = await ctx.transport.listDeadLetters('mask', 10);
    expect(dead.map((d) => [d.body, d.attempts])).toEqual([
      ['{"v":1,"tenant_id":"acme","events":[{"nope":true}]}', MAX_ATTEMPTS],
      ['not json', MAX_ATTEMPTS],
    ]);
  });

  /** Event ids of one message that makes a part of a pipelined receive on its own. */
  const ids = (prefix: string) => Array.from({ length: PART_EVENTS }, (_, i) => `${prefix}-${i}`);

  it('runs a large receive as a pipeline: part k+1 is in the first stage while part k is in the last', async () => {
    const firstSaw: string[] = [];
    let overlapped = false;
    const first = fakeStage('mask', 'encrypt', (batches) => {
      firstSaw.push(batches[0]!.events[0]!.id.split('-')[0]!);
    });
    const second = fakeStage('encrypt', undefined, async (batches) => {
      if (batches[0]!.events[0]!.id.startsWith('m1-')) {
        // Held until the first stage has started on the next part (or a second has passed).
        for (let i = 0; i < 100 && !firstSaw.includes('m2'); i++) await new Promise((r) => setTimeout(r, 10));
        overlapped = firstSaw.includes('m2');
      }
    });
    await send('mask', 'acme', ...ids('m1'));
    await send('mask', 'acme', ...ids('m2'));
    await send('mask', 'acme', ...ids('m3'));
    run([first, second]);
    await drained('mask');
    expect(overlapped).toBe(true);
    expect(firstSaw).toEqual(['m1', 'm2', 'm3']);
    expect(second.handled).toEqual([...ids('m1'), ...ids('m2'), ...ids('m3')]);
  });

  it('a failed part stops the parts after it: nothing of the group is handled out of order', async () => {
    let failures = 1;
    const first = fakeStage('mask', 'encrypt');
    const last = fakeStage('encrypt', undefined, (batches) => {
      if (failures > 0 && batches[0]!.events[0]!.id.startsWith('m2-')) {
        failures--;
        throw new Error('transient');
      }
    });
    await send('mask', 'acme', ...ids('m1'));
    await send('mask', 'acme', ...ids('m2'));
    await send('mask', 'acme', ...ids('m3'));
    run([first, last]);
    await drained('mask');
    // m1 was acknowledged as its own part and not handled again; m3 waited for m2's retry.
    expect(last.handled).toEqual([...ids('m1'), ...ids('m2'), ...ids('m3')]);
    expect(await ctx.transport.listDeadLetters('mask', 10)).toEqual([]);
  });

  it('graceful stop lets in-flight work finish and ack, and takes nothing new', async () => {
    let started!: () => void;
    const isStarted = new Promise<void>((r) => {
      started = r;
    });
    let finish!: () => void;
    const finishing = new Promise<void>((r) => {
      finish = r;
    });
    const stage = fakeStage('mask', undefined, async () => {
      started();
      await finishing;
    });
    const runner = run([stage]);
    await send('mask', 'acme', 'slow');
    await isStarted;

    let stopped = false;
    const stopping = runner.stop(30_000).then(() => {
      stopped = true;
    });
    // Stop must wait for the batch; it cannot have resolved while the handler is blocked.
    await new Promise((r) => setImmediate(r));
    expect(stopped).toBe(false);
    finish();
    await stopping;
    await runner.done;
    expect(stage.handled).toEqual(['slow']);
    expect(await ctx.transport.depth('mask')).toBe(0);

    // A message sent after the stop is left for the next worker.
    await send('mask', 'acme', 'later');
    expect(await ctx.transport.depth('mask')).toBe(1);
    expect(stage.calls).toBe(1);
  });

  it('stop releases work that outlives the timeout, uncounted, so another worker takes it at once', async () => {
    let release!: () => void;
    const hang = new Promise<void>((r) => {
      release = r;
    });
    let started!: () => void;
    const isStarted = new Promise<void>((r) => {
      started = r;
    });
    const stuck = fakeStage('mask', undefined, async () => {
      started();
      await hang;
      throw new Error('gave up');
    });
    const runner = run([stuck]);
    await send('mask', 'acme', 'stuck');
    await isStarted;
    await runner.stop(50);
    // Released: visible at once and this delivery not counted.
    const { rows } = await ctx.pool.query<{ attempts: number; visible: boolean }>(
      `SELECT attempts, visible_at <= now() AS visible FROM queue_messages WHERE queue = 'mask'`,
    );
    expect(rows).toEqual([{ attempts: 0, visible: true }]);
    const next = fakeStage('mask', undefined);
    run([next]);
    await eventually(async () => (next.handled.length > 0 ? true : undefined));
    expect(next.handled).toEqual(['stuck']);
    release();
    await runner.done;
  });
});
