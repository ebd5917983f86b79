import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SendMessageBatchCommandOutput,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type FauxqsServer, startFauxqs } from '../../test/fauxqs.js';
import { type Config, configureFromEnv } from '../config.js';
import { createSqsTransport, SQS_MAX_BODY_BYTES, SQS_MAX_MESSAGE_BYTES, SqsBatchError } from './sqs.js';
import type { OutgoingMessage, QueueName, ReceivedMessage, Transport } from './types.js';

let server: FauxqsServer;
const run = randomUUID().slice(0, 8);
let prefixes = 0;
const cleanup: Array<() => Promise<void>> = [];

beforeAll(async () => {
  server = await startFauxqs();
});
afterEach(async () => {
  for (const fn of cleanup.splice(0)) await fn();
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});
afterAll(async () => {
  await server?.stop();
});

/** Every transport gets its own queue prefix, so tests never see each other's messages. */
function configFor(env: Record<string, string> = {}): Config {
  return configureFromEnv({
    TRANSPORT: 'sqs',
    SQS_REGION: 'us-east-1',
    SQS_ENDPOINT: server.endpoint,
    SQS_QUEUE_PREFIX: `sqs-${run}-${++prefixes}`,
    SQS_CREATE_QUEUES: 'true',
    QUEUE_MAX_ATTEMPTS: '3',
    QUEUE_VISIBILITY_TIMEOUT_MS: '30000',
    ...env,
  });
}

function clientFor(config: Config): SQSClient {
  const client = new SQSClient({
    region: config.SQS_REGION,
    endpoint: config.SQS_ENDPOINT,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  cleanup.push(async () => client.destroy());
  return client;
}

async function setup(env: Record<string, string> = {}) {
  const config = configFor(env);
  const client = clientFor(config);
  const transport = await createSqsTransport(config, { client });
  cleanup.unshift(() => transport.close());
  return { config, client, transport };
}

const message = (group: string, i: number): OutgoingMessage => ({
  group,
  dedupId: `${group}-${i}`,
  body: JSON.stringify({ group, i }),
});

const receive = (t: Transport, queue: QueueName, visibilityMs = 30_000, max = 10) =>
  t.receive(queue, { max, waitMs: 0, visibilityMs });

const view = (m: ReceivedMessage) => ({ group: m.group, body: m.body, attempt: m.attempt });

/** Calls of one command type seen by a spied-on client. */
function callsOf(
  spy: { mock: { calls: unknown[][] } },
  type: abstract new (...args: never[]) => unknown,
): number {
  return spy.mock.calls.filter(([command]) => command instanceof type).length;
}

/**
 * Holds every ReceiveMessage response (the messages are already taken from the queue) until
 * `open()`, so a test can let the waiting call end first.
 */
function holdReceives(client: SQSClient): { open: () => void } {
  const realSend = client.send.bind(client) as (...args: unknown[]) => Promise<unknown>;
  let open = () => {};
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  vi.spyOn(client, 'send').mockImplementation((async (command: unknown, ...rest: unknown[]) => {
    const res = await realSend(command, ...rest);
    if (command instanceof ReceiveMessageCommand) await gate;
    return res;
  }) as never);
  return { open: () => open() };
}

/** SendMessageBatch calls seen by the client, as their entry counts. */
function batchSizes(spy: { mock: { calls: unknown[][] } }): number[] {
  return spy.mock.calls
    .map(([command]) => command)
    .filter((c): c is SendMessageBatchCommand => c instanceof SendMessageBatchCommand)
    .map((c) => c.input.Entries?.length ?? 0);
}

describe('sqs transport on fauxqs', () => {
  it('creates FIFO queues with a DLQ redrive policy, SSE, retention and visibility', async () => {
    const { config, client } = await setup({ QUEUE_MAX_ATTEMPTS: '4', QUEUE_VISIBILITY_TIMEOUT_MS: '2500' });
    const url = async (name: string) =>
      (await client.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl as string;
    const attrs = async (name: string) =>
      (
        await client.send(
          new GetQueueAttributesCommand({
            QueueUrl: await url(name),
            AttributeNames: ['All'],
          }),
        )
      ).Attributes ?? {};
    // fauxqs leaves SqsManagedSseEnabled out of 'All' but returns it when named.
    const sse = async (name: string) =>
      (
        await client.send(
          new GetQueueAttributesCommand({
            QueueUrl: await url(name),
            AttributeNames: ['SqsManagedSseEnabled'],
          }),
        )
      ).Attributes;
    const dlq = await attrs(`${config.SQS_QUEUE_PREFIX}-persist-dlq.fifo`);
    const main = await attrs(`${config.SQS_QUEUE_PREFIX}-persist.fifo`);
    expect(dlq).toMatchObject({
      FifoQueue: 'true',
      ContentBasedDeduplication: 'false',
      MessageRetentionPeriod: '1209600',
    });
    expect(main).toMatchObject({
      FifoQueue: 'true',
      ContentBasedDeduplication: 'false',
      MessageRetentionPeriod: '1209600',
      MaximumMessageSize: String(SQS_MAX_MESSAGE_BYTES),
      VisibilityTimeout: '3',
    });
    expect(await sse(`${config.SQS_QUEUE_PREFIX}-persist.fifo`)).toEqual({ SqsManagedSseEnabled: 'true' });
    expect(await sse(`${config.SQS_QUEUE_PREFIX}-persist-dlq.fifo`)).toEqual({
      SqsManagedSseEnabled: 'true',
    });
    expect(JSON.parse(main.RedrivePolicy ?? '{}')).toEqual({
      deadLetterTargetArn: dlq.QueueArn,
      maxReceiveCount: 4,
    });

    // Same config again: CreateQueue is idempotent. Changed config: attributes are updated.
    await (await createSqsTransport(config, { client })).close();
    await (await createSqsTransport({ ...config, QUEUE_MAX_ATTEMPTS: 7 }, { client })).close();
    const updated = await attrs(`${config.SQS_QUEUE_PREFIX}-persist.fifo`);
    expect(JSON.parse(updated.RedrivePolicy ?? '{}')).toEqual({
      deadLetterTargetArn: dlq.QueueArn,
      maxReceiveCount: 7,
    });
  });

  it('uses existing queues when SQS_CREATE_QUEUES is off, and refuses a queue without a DLQ', async () => {
    const { config, transport } = await setup();
    const reuse = await createSqsTransport(
      { ...config, SQS_CREATE_QUEUES: false },
      { client: clientFor(config) },
    );
    await reuse.send('mask', [message('t1', 1)]);
    expect((await receive(transport, 'mask')).map(view)).toEqual([
      { group: 't1', body: '{"group":"t1","i":1}', attempt: 1 },
    ]);
    await reuse.close();

    const bare = configFor({ SQS_CREATE_QUEUES: 'false' });
    const client = clientFor(bare);
    for (const hop of ['mask', 'mask-dlq']) {
      await client.send(new CreateQueueCommand({ QueueName: `${bare.SQS_QUEUE_PREFIX}-${hop}.fifo` }));
    }
    await expect(createSqsTransport(bare, { client })).rejects.toThrow(
      `SQS queue ${bare.SQS_QUEUE_PREFIX}-mask.fifo must have a RedrivePolicy`,
    );
    await expect(createSqsTransport(configFor({ SQS_CREATE_QUEUES: 'false' }), { client })).rejects.toThrow(
      /does not exist/,
    );
  });

  it('round-trips a message: send, receive, ack', async () => {
    const { transport } = await setup();
    const before = Date.now();
    await transport.send('mask', [{ group: 'acme', dedupId: 'd-1', body: '{"events":[1,2,3]}' }]);
    const after = Date.now();
    const got = await transport.receive('mask', { max: 10, waitMs: 1000, visibilityMs: 30_000 });
    expect(got.map(view)).toEqual([{ group: 'acme', body: '{"events":[1,2,3]}', attempt: 1 }]);
    const [first] = got;
    expect(first?.receipt).toEqual(expect.any(String));
    expect(first?.sentAt).toBeGreaterThanOrEqual(before);
    expect(first?.sentAt).toBeLessThanOrEqual(after);
    await transport.ack('mask', got);
    expect(await transport.depth('mask')).toBe(0);
    expect(await receive(transport, 'mask')).toEqual([]);
    // Queues are separate per hop.
    expect(await transport.depth('encrypt')).toBe(0);
  });

  it('delivers each group in send order and holds a group while one of its messages is in flight', async () => {
    const { transport } = await setup();
    const sent = [
      message('a', 0),
      message('b', 0),
      message('a', 1),
      message('a', 2),
      message('b', 1),
      message('a', 3),
      message('b', 2),
      message('a', 4),
    ];
    await transport.send('encrypt', sent);
    const seen: Record<string, number[]> = { a: [], b: [] };
    for (let round = 0; round < 20; round++) {
      const got = await receive(transport, 'encrypt');
      if (got.length === 0) break;
      // While these are in flight, nothing more of their groups may be handed out.
      const held = new Set(got.map((m) => m.group));
      const more = await receive(transport, 'encrypt');
      expect(more.filter((m) => held.has(m.group))).toEqual([]);
      await transport.release('encrypt', more);
      for (const m of got) seen[m.group]?.push((JSON.parse(m.body) as { i: number }).i);
      await transport.ack('encrypt', got);
    }
    expect(seen).toEqual({ a: [0, 1, 2, 3, 4], b: [0, 1, 2] });
    expect(await transport.depth('encrypt')).toBe(0);
  });

  it('hides a message while in flight; retry(0) and release show it again, retry(delay) after the delay', async () => {
    const { transport } = await setup({ QUEUE_MAX_ATTEMPTS: '10' });
    await transport.send('mask', [message('t', 1)]);
    const first = await receive(transport, 'mask');
    expect(first.map(view)).toEqual([{ group: 't', body: '{"group":"t","i":1}', attempt: 1 }]);
    expect(await receive(transport, 'mask')).toEqual([]);
    expect(await transport.depth('mask')).toBe(1);

    await transport.retry('mask', first, 0);
    const second = await receive(transport, 'mask');
    expect(second.map(view)).toEqual([{ group: 't', body: '{"group":"t","i":1}', attempt: 2 }]);

    await transport.release('mask', second);
    const third = await receive(transport, 'mask');
    expect(third.map(view)).toEqual([{ group: 't', body: '{"group":"t","i":1}', attempt: 3 }]);

    const start = Date.now();
    await transport.retry('mask', third, 1000);
    expect(await receive(transport, 'mask')).toEqual([]);
    const fourth = await transport.receive('mask', { max: 10, waitMs: 3000, visibilityMs: 30_000 });
    expect(fourth.map(view)).toEqual([{ group: 't', body: '{"group":"t","i":1}', attempt: 4 }]);
    expect(Date.now() - start).toBeGreaterThanOrEqual(950);
    await transport.ack('mask', fourth);

    // Releasing an acknowledged message is a no-op; extending one is an error.
    await transport.release('mask', fourth);
    await expect(transport.extend('mask', fourth, 5000)).rejects.toBeInstanceOf(SqsBatchError);
  });

  it('extend keeps a message hidden past its original visibility timeout', async () => {
    const { transport } = await setup();
    await transport.send('index', [message('x', 1), message('y', 1)]);
    const start = Date.now();
    const got = await receive(transport, 'index', 2000);
    expect(got.map((m) => m.group).sort()).toEqual(['x', 'y']);
    const x = got.filter((m) => m.group === 'x');
    await sleep(1000);
    await transport.extend('index', x, 3000); // now hidden until ~4 s after start

    await sleep(2600 - (Date.now() - start));
    // y was not extended and is back; x is still hidden.
    expect((await receive(transport, 'index')).map(view)).toEqual([
      { group: 'y', body: '{"group":"y","i":1}', attempt: 2 },
    ]);
    await sleep(Math.max(0, 4400 - (Date.now() - start)));
    expect((await receive(transport, 'index')).map(view)).toEqual([
      { group: 'x', body: '{"group":"x","i":1}', attempt: 2 },
    ]);
  });

  it('stores a message once per dedup id', async () => {
    const { transport } = await setup();
    const longId = `${'not an SQS id: spaces and ü '.repeat(8)}!`; // > 128 chars, outside the charset
    await transport.send('persist', [{ group: 'g', dedupId: 'same', body: 'first' }]);
    await transport.send('persist', [
      { group: 'g', dedupId: 'same', body: 'second' },
      { group: 'g', dedupId: longId, body: 'third' },
      { group: 'g', dedupId: longId, body: 'fourth' },
    ]);
    await transport.send('persist', [{ group: 'g', dedupId: 'same', body: 'fifth' }]);
    expect(await transport.depth('persist')).toBe(2);
    const bodies: string[] = [];
    for (
      let got = await receive(transport, 'persist');
      got.length > 0;
      got = await receive(transport, 'persist')
    ) {
      bodies.push(...got.map((m) => m.body));
      await transport.ack('persist', got);
    }
    expect(bodies).toEqual(['first', 'third']);
  });

  it('dead-letters after QUEUE_MAX_ATTEMPTS deliveries, lists and redrives', async () => {
    const { transport } = await setup({ QUEUE_MAX_ATTEMPTS: '2' });
    const before = Date.now();
    await transport.send('mask', [
      { group: 'g1', dedupId: 'p1', body: 'poison-1' },
      { group: 'g2', dedupId: 'p2', body: 'poison-2' },
    ]);
    for (const attempt of [1, 2]) {
      const got = await receive(transport, 'mask');
      expect(got.map((m) => [m.body, m.attempt]).sort()).toEqual([
        ['poison-1', attempt],
        ['poison-2', attempt],
      ]);
      await transport.retry('mask', got, 0);
    }
    // The third receive finds both over the limit and moves them instead of delivering them.
    expect(await receive(transport, 'mask')).toEqual([]);
    expect(await transport.depth('mask')).toBe(0);

    const dead = (await transport.listDeadLetters('mask', 10)).sort((p, q) => p.group.localeCompare(q.group));
    expect(dead.map(({ id: _id, sentAt: _s, deadAt: _d, ...rest }) => rest)).toEqual([
      { queue: 'mask', group: 'g1', body: 'poison-1', attempts: 2 },
      { queue: 'mask', group: 'g2', body: 'poison-2', attempts: 2 },
    ]);
    for (const d of dead) {
      expect(d.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(d.sentAt).toBeGreaterThanOrEqual(before);
      expect(d.deadAt).toBeGreaterThanOrEqual(d.sentAt);
    }
    const [g1, g2] = dead;
    // Listing does not consume or hide them; the limit is honoured.
    expect((await transport.listDeadLetters('mask', 10)).map((d) => d.id).sort()).toEqual(
      [g1?.id, g2?.id].sort(),
    );
    expect(await transport.listDeadLetters('mask', 1)).toHaveLength(1);

    // Redrive only g1.
    expect(await transport.redrive('mask', [g1?.id as string])).toBe(1);
    expect((await transport.listDeadLetters('mask', 10)).map((d) => d.id)).toEqual([g2?.id]);
    const back = await receive(transport, 'mask');
    expect(back.map(view)).toEqual([{ group: 'g1', body: 'poison-1', attempt: 1 }]);
    expect(back[0]?.sentAt).toBe(g1?.sentAt); // first send time survives the DLQ round trip
    await transport.ack('mask', back);

    // Redrive the rest; an unknown id moves nothing.
    expect(await transport.redrive('mask', ['no-such-id'])).toBe(0);
    expect(await transport.redrive('mask')).toBe(1);
    expect(await transport.listDeadLetters('mask', 10)).toEqual([]);
    expect((await receive(transport, 'mask')).map(view)).toEqual([
      { group: 'g2', body: 'poison-2', attempt: 1 },
    ]);
    expect(await transport.redrive('mask')).toBe(0);
  });

  it('reports depth as waiting plus in-flight messages', async () => {
    const { transport } = await setup();
    expect(await transport.depth('persist')).toBe(0);
    await transport.send('persist', [message('a', 1), message('b', 1), message('c', 1)]);
    expect(await transport.depth('persist')).toBe(3);
    const got = await receive(transport, 'persist', 30_000, 1);
    expect(got).toHaveLength(1);
    expect(await transport.depth('persist')).toBe(3);
    await transport.ack('persist', got);
    expect(await transport.depth('persist')).toBe(2);
  });

  it('splits large sends into SendMessageBatch calls of at most 10 entries, in order', async () => {
    const { client, transport } = await setup();
    const spy = vi.spyOn(client, 'send');
    const sent = Array.from({ length: 25 }, (_, i) => message('bulk', i));
    await transport.send('mask', sent);
    expect(batchSizes(spy)).toEqual([10, 10, 5]);
    expect(await transport.depth('mask')).toBe(25);
    const order: number[] = [];
    for (let got = await receive(transport, 'mask'); got.length > 0; got = await receive(transport, 'mask')) {
      order.push(...got.map((m) => (JSON.parse(m.body) as { i: number }).i));
      await transport.ack('mask', got);
    }
    expect(order).toEqual(Array.from({ length: 25 }, (_, i) => i));
  });

  it('splits batches by size and accepts a message of SQS_MAX_BODY_BYTES, rejecting larger ones', async () => {
    const { client, transport } = await setup();
    const spy = vi.spyOn(client, 'send');
    const big = (i: number) => ({
      group: `big${i}`,
      dedupId: `big-${i}`,
      body: String(i).repeat(400 * 1024),
    });
    await transport.send('encrypt', [big(1), big(2), big(3)]);
    expect(batchSizes(spy)).toEqual([2, 1]); // 1.2 MiB does not fit one 1 MiB batch

    const max = { group: 'max', dedupId: 'max', body: 'm'.repeat(SQS_MAX_BODY_BYTES) };
    await transport.send('encrypt', [max]);
    spy.mockClear();
    await expect(
      transport.send('encrypt', [
        message('ok', 1),
        { ...max, dedupId: 'max+1', body: `${max.body}${'m'.repeat(64)}` },
      ]),
    ).rejects.toThrow(/exceeds the queue's 1048576-byte limit/);
    expect(batchSizes(spy)).toEqual([]); // nothing was sent

    const got = await receive(transport, 'encrypt');
    expect(got.map((m) => [m.group, m.body.length]).sort()).toEqual([
      ['big1', 400 * 1024],
      ['big2', 400 * 1024],
      ['big3', 400 * 1024],
      ['max', SQS_MAX_BODY_BYTES],
    ]);
    expect(got.find((m) => m.group === 'max')?.body).toBe(max.body);
  });

  it('rejects a group SQS cannot take', async () => {
    const { transport } = await setup();
    await expect(transport.send('mask', [{ group: 'has space', dedupId: 'x', body: 'b' }])).rejects.toThrow(
      /MessageGroupId/,
    );
    await expect(
      transport.send('mask', [{ group: 'g'.repeat(129), dedupId: 'x', body: 'b' }]),
    ).rejects.toThrow(/MessageGroupId/);
  });

  it('retries entries that failed server-side and throws on sender faults', async () => {
    const { client, transport } = await setup();
    const realSend = client.send.bind(client) as (c: unknown) => Promise<unknown>;
    let injected = 0;
    vi.spyOn(client, 'send').mockImplementation((async (command: unknown) => {
      if (command instanceof SendMessageBatchCommand && injected === 0) {
        injected++;
        // Store all but the last entry, and report that one as a transient server error.
        const entries = command.input.Entries ?? [];
        const last = entries[entries.length - 1];
        const res = (await realSend(
          new SendMessageBatchCommand({ ...command.input, Entries: entries.slice(0, -1) }),
        )) as SendMessageBatchCommandOutput;
        return {
          ...res,
          Failed: [{ Id: last?.Id, SenderFault: false, Code: 'InternalError', Message: 'boom' }],
        };
      }
      return realSend(command);
    }) as never);
    await transport.send('mask', [message('r', 0), message('r', 1), message('r', 2)]);
    expect(injected).toBe(1);
    const order: number[] = [];
    for (let got = await receive(transport, 'mask'); got.length > 0; got = await receive(transport, 'mask')) {
      order.push(...got.map((m) => (JSON.parse(m.body) as { i: number }).i));
      await transport.ack('mask', got);
    }
    expect(order).toEqual([0, 1, 2]);

    vi.mocked(client.send).mockClear();
    vi.mocked(client.send).mockImplementation((async (command: unknown) => {
      if (command instanceof SendMessageBatchCommand) {
        return {
          Successful: [],
          Failed: [{ Id: '0', SenderFault: true, Code: 'InvalidMessageContents', Message: 'bad' }],
        };
      }
      return realSend(command);
    }) as never);
    const error = await transport.send('mask', [message('r', 9)]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SqsBatchError);
    expect((error as SqsBatchError).failures).toEqual([
      { Id: '0', SenderFault: true, Code: 'InvalidMessageContents', Message: 'bad' },
    ]);
    expect(
      vi.mocked(client.send).mock.calls.filter(([c]) => c instanceof SendMessageBatchCommand),
    ).toHaveLength(1);
  });

  it('ends a long poll early when the signal aborts', async () => {
    const { transport } = await setup();
    const controller = new AbortController();
    const start = Date.now();
    setTimeout(() => controller.abort(), 200);
    const got = await transport.receive('mask', {
      max: 10,
      waitMs: 10_000,
      visibilityMs: 30_000,
      signal: controller.signal,
    });
    expect(got).toEqual([]);
    expect(Date.now() - start).toBeLessThan(3000);
    expect(
      await transport.receive('mask', { max: 1, waitMs: 0, visibilityMs: 1000, signal: controller.signal }),
    ).toEqual([]);
  });

  it('builds and destroys its own client from config when none is given, and leaves a given one alone', async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
    const config = configFor();
    const own = await createSqsTransport(config);
    expect(own.kind).toBe('sqs');
    await own.send('index', [message('own', 1)]);
    expect((await receive(own, 'index')).map(view)).toEqual([
      { group: 'own', body: '{"group":"own","i":1}', attempt: 1 },
    ]);
    await own.close();

    const client = clientFor(config);
    const shared = await createSqsTransport(config, { client });
    await shared.close();
    const res = await client.send(
      new GetQueueUrlCommand({ QueueName: `${config.SQS_QUEUE_PREFIX}-index.fifo` }),
    );
    expect(res.QueueUrl).toContain(`${config.SQS_QUEUE_PREFIX}-index.fifo`);
  });
});

describe('sqs transport receiving through sqs-consumer', () => {
  it('deletes nothing until ack, and a consumer does not poll again while its batch is unsettled', async () => {
    const { client, transport } = await setup();
    await transport.send('mask', [message('a', 1)]);
    const spy = vi.spyOn(client, 'send');
    const deletes = () => callsOf(spy, DeleteMessageBatchCommand) + callsOf(spy, DeleteMessageCommand);
    const got = await receive(transport, 'mask');
    expect(got.map(view)).toEqual([{ group: 'a', body: '{"group":"a","i":1}', attempt: 1 }]);
    const polls = callsOf(spy, ReceiveMessageCommand);
    await sleep(300);
    expect(callsOf(spy, ReceiveMessageCommand)).toBe(polls);
    await transport.extend('mask', got, 5000);
    expect(deletes()).toBe(0);

    // Released, the same message comes back: sqs-consumer did not delete it when the batch settled.
    await transport.release('mask', got);
    const again = await receive(transport, 'mask');
    expect(again.map(view)).toEqual([{ group: 'a', body: '{"group":"a","i":1}', attempt: 2 }]);
    expect(deletes()).toBe(0);
    await transport.ack('mask', again);
    expect(deletes()).toBe(1);
    expect(await transport.depth('mask')).toBe(0);
  });

  it('serves concurrent calls from separate consumers without splitting a group', async () => {
    const { transport } = await setup();
    await transport.send('persist', [message('a', 0), message('a', 1), message('b', 0)]);
    const [one, two] = await Promise.all([
      receive(transport, 'persist', 30_000, 1),
      receive(transport, 'persist', 30_000, 1),
    ]);
    expect(one).toHaveLength(1);
    expect(two).toHaveLength(1);
    expect([...(one ?? []), ...(two ?? [])].map(view).sort((p, q) => p.group.localeCompare(q.group))).toEqual(
      [
        { group: 'a', body: '{"group":"a","i":0}', attempt: 1 },
        { group: 'b', body: '{"group":"b","i":0}', attempt: 1 },
      ],
    );
    // a1 waits behind a0, which is in flight.
    expect(await receive(transport, 'persist')).toEqual([]);
    await transport.ack('persist', [...(one ?? []), ...(two ?? [])]);
    expect((await receive(transport, 'persist')).map(view)).toEqual([
      { group: 'a', body: '{"group":"a","i":1}', attempt: 1 },
    ]);
  });

  it('releases buffered messages on close, so they are neither lost nor kept hidden', async () => {
    const { config, client, transport } = await setup();
    await transport.send('mask', [message('a', 1), message('b', 1)]);
    const held = holdReceives(client);
    // The consumer's response arrives after the call gave up, so nobody claims it.
    expect(await transport.receive('mask', { max: 10, waitMs: 100, visibilityMs: 30_000 })).toEqual([]);
    held.open();
    await sleep(50);
    await transport.close();

    // Back at once, not after the 30 s visibility timeout.
    const other = await createSqsTransport(config, { client: clientFor(config) });
    cleanup.unshift(() => other.close());
    const back = await receive(other, 'mask');
    expect(back.map(view).sort((p, q) => p.group.localeCompare(q.group))).toEqual([
      { group: 'a', body: '{"group":"a","i":1}', attempt: 2 },
      { group: 'b', body: '{"group":"b","i":1}', attempt: 2 },
    ]);
    await expect(receive(transport, 'mask')).rejects.toThrow(/closed/);
  });

  it('resolves an aborted call at once and releases what its poll brings afterwards', async () => {
    const { client, transport } = await setup();
    await transport.send('mask', [message('a', 1)]);
    const held = holdReceives(client);
    const controller = new AbortController();
    const pending = transport.receive('mask', {
      max: 10,
      waitMs: 10_000,
      visibilityMs: 30_000,
      signal: controller.signal,
    });
    controller.abort();
    expect(await pending).toEqual([]);
    held.open();
    await sleep(50);
    // Released, not kept for a caller that is gone: the next call gets it as a new delivery.
    const again = await transport.receive('mask', { max: 10, waitMs: 5000, visibilityMs: 30_000 });
    expect(again.map(view)).toEqual([{ group: 'a', body: '{"group":"a","i":1}', attempt: 2 }]);
  });

  it('rejects the waiting call when a receive fails, and receives again afterwards', async () => {
    const { client, transport } = await setup();
    const realSend = client.send.bind(client) as (...args: unknown[]) => Promise<unknown>;
    vi.spyOn(client, 'send').mockImplementation((async (command: unknown, ...rest: unknown[]) => {
      if (command instanceof ReceiveMessageCommand) throw new Error('boom');
      return realSend(command, ...rest);
    }) as never);
    await expect(receive(transport, 'mask')).rejects.toThrow(/boom/);
    vi.mocked(client.send).mockRestore();
    await transport.send('mask', [message('a', 1)]);
    expect((await receive(transport, 'mask')).map(view)).toEqual([
      { group: 'a', body: '{"group":"a","i":1}', attempt: 1 },
    ]);
  });
});
