import { randomBytes, randomUUID } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, eventually } from '../../test/harness.js';
import { createPool } from '../db/pool.js';
import { EmbeddedTransport } from './embedded.js';
import type { OutgoingMessage, QueueName, ReceivedMessage, ReceiveOptions } from './types.js';

const MAX_ATTEMPTS = 3;
let url: string;
let pool: pg.Pool;
let transport: EmbeddedTransport;
const key = randomBytes(32);
const extra: EmbeddedTransport[] = [];

beforeAll(async () => {
  url = await createTestDatabase();
  pool = createPool(url, 8, 'embedded-transport-test');
  transport = new EmbeddedTransport(pool, key, MAX_ATTEMPTS, url);
});
afterAll(async () => {
  for (const t of extra) await t.close();
  await transport?.close();
  await pool?.end();
});

/**
 * Every test uses its own queue rows: the queue names are fixed, so tests empty the tables first.
 * Tests in this file run sequentially.
 */
async function reset(): Promise<void> {
  await pool.query('TRUNCATE queue_messages, queue_dead_letters');
}

const msg = (group: string, body: string, dedupId: string = randomUUID()): OutgoingMessage => ({
  group,
  dedupId,
  body,
});
const opts = (o: Partial<ReceiveOptions> = {}): ReceiveOptions => ({
  max: 10,
  waitMs: 0,
  visibilityMs: 30_000,
  ...o,
});

async function receiveAll(queue: QueueName, o: Partial<ReceiveOptions> = {}): Promise<ReceivedMessage[]> {
  return transport.receive(queue, opts(o));
}

async function rows(queue: QueueName) {
  const { rows } = await pool.query<{ group_id: string; attempts: number; receipt: string | null }>(
    'SELECT group_id, attempts, receipt FROM queue_messages WHERE queue = $1 ORDER BY id',
    [queue],
  );
  return rows;
}

describe('EmbeddedTransport', () => {
  it('stops a receive at 8 MiB of bodies, but always hands out at least one message', async () => {
    await reset();
    const big = (c: string) => c.repeat(4_500_000);
    await transport.send('mask', [msg('g1', big('a')), msg('g2', big('b')), msg('g3', big('c'))]);
    const first = await receiveAll('mask', { max: 10 });
    expect(first.map((m) => m.body[0])).toEqual(['a', 'b']);
    await transport.ack('mask', first);
    const second = await receiveAll('mask', { max: 10 });
    expect(second.map((m) => m.body[0])).toEqual(['c']);
    await transport.ack('mask', second);
    await transport.send('mask', [msg('g1', big('d').repeat(2))]); // 9 MB: alone over the budget
    expect((await receiveAll('mask', { max: 10 })).map((m) => m.body.length)).toEqual([9_000_000]);
  });

  it('stores a send larger than one statement whole, in order, and a resend not again', async () => {
    await reset();
    const messages = Array.from({ length: 2_345 }, (_, i) => msg(`g${i % 7}`, `body ${i}`, `big-${i}`));
    await transport.send('mask', messages);
    await transport.send('mask', messages);
    const { rows: stored } = await pool.query<{ dedup_id: string }>(
      `SELECT dedup_id FROM queue_messages WHERE queue = 'mask' ORDER BY id`,
    );
    expect(stored.map((r) => r.dedup_id)).toEqual(messages.map((m) => m.dedupId));
    // A receive fills from the oldest group first: g0's first three, in send order.
    const got = await receiveAll('mask', { max: 3 });
    expect(got.map((m) => m.body)).toEqual(['body 0', 'body 7', 'body 14']);
  });

  it('delivers in send order, marks the first delivery attempt 1 and acks by receipt', async () => {
    await reset();
    await transport.send('mask', [msg('a', 'one'), msg('a', 'two'), msg('b', 'three')]);
    expect(await transport.depth('mask')).toBe(3);
    const got = await receiveAll('mask');
    expect(got.map((m) => [m.group, m.body, m.attempt])).toEqual([
      ['a', 'one', 1],
      ['a', 'two', 1],
      ['b', 'three', 1],
    ]);
    // In flight: a second receive gets nothing, and the messages still count as depth.
    expect(await receiveAll('mask')).toEqual([]);
    expect(await transport.depth('mask')).toBe(3);
    await transport.ack('mask', got);
    expect(await transport.depth('mask')).toBe(0);
  });

  it('keeps queues apart', async () => {
    await reset();
    await transport.send('encrypt', [msg('a', 'for-encrypt')]);
    expect(await receiveAll('mask')).toEqual([]);
    expect((await receiveAll('encrypt')).map((m) => m.body)).toEqual(['for-encrypt']);
  });

  it('redelivers a message whose visibility timeout expired, as attempt 2', async () => {
    await reset();
    await transport.send('mask', [msg('a', 'lost-worker')]);
    const first = await receiveAll('mask', { visibilityMs: 200 });
    expect(first.map((m) => m.attempt)).toEqual([1]);
    const second = await eventually(async () => {
      const got = await receiveAll('mask', { visibilityMs: 30_000 });
      return got.length > 0 ? got : undefined;
    });
    expect(second.map((m) => [m.body, m.attempt])).toEqual([['lost-worker', 2]]);
    // The first worker's late ack must not delete the message the second worker now holds.
    await transport.ack('mask', first);
    expect(await transport.depth('mask')).toBe(1);
    await transport.ack('mask', second);
    expect(await transport.depth('mask')).toBe(0);
  });

  it('extend keeps an in-flight message invisible past its original timeout', async () => {
    await reset();
    await transport.send('mask', [msg('a', 'long-job')]);
    const got = await receiveAll('mask', { visibilityMs: 1000 });
    await transport.extend('mask', got, 60_000);
    const { rows: vis } = await pool.query<{ secs: number }>(
      `SELECT extract(epoch FROM visible_at - now())::float8 AS secs FROM queue_messages WHERE queue = 'mask'`,
    );
    expect(vis[0]!.secs).toBeGreaterThan(30);
    expect(await receiveAll('mask')).toEqual([]);
  });

  it('never hands out a message of a group while an earlier one is in flight, even to concurrent receivers', async () => {
    await reset();
    const groups = ['g1', 'g2', 'g3'];
    const perGroup = 12;
    const out: OutgoingMessage[] = [];
    for (let i = 0; i < perGroup; i++) for (const g of groups) out.push(msg(g, `${g}:${i}`));
    await transport.send('persist', out);

    // Several transports (separate pools, as separate processes would have) receive concurrently,
    // one message at a time, and record what they hold and in which order each group completes.
    const receivers = [transport];
    for (let i = 0; i < 3; i++) {
      const p = createPool(url, 2, `receiver-${i}`);
      const t = new EmbeddedTransport(p, key, MAX_ATTEMPTS, url);
      extra.push(t);
      const close = t.close.bind(t);
      t.close = async () => {
        await close();
        await p.end();
      };
      receivers.push(t);
    }
    const holding = new Map<string, string>();
    const completed = new Map<string, number[]>(groups.map((g) => [g, []]));
    const violations: string[] = [];
    let remaining = out.length;
    await Promise.all(
      receivers.map(async (t) => {
        while (remaining > 0) {
          const got = await t.receive('persist', opts({ max: 2, waitMs: 200 }));
          // One receive may carry consecutive messages of a group; another receiver may not.
          for (const m of got) {
            const held = holding.get(m.group);
            if (held !== undefined) violations.push(`${m.body} delivered while ${held} in flight`);
          }
          for (const m of got) holding.set(m.group, m.body);
          // Yield so the other receivers get a turn while these are in flight.
          await new Promise((r) => setTimeout(r, 5));
          for (const m of got) {
            holding.delete(m.group);
            completed.get(m.group)!.push(Number(m.body.split(':')[1]));
          }
          await t.ack('persist', got);
          remaining -= got.length;
        }
      }),
    );
    expect(violations).toEqual([]);
    for (const g of groups) expect(completed.get(g)).toEqual(Array.from({ length: perGroup }, (_, i) => i));
    expect(await transport.depth('persist')).toBe(0);
  });

  it('hands out at most the first messages of a group in one receive, in order', async () => {
    await reset();
    await transport.send(
      'mask',
      Array.from({ length: 15 }, (_, i) => msg('big', `m${i}`)),
    );
    await transport.send('mask', [msg('small', 's0')]);
    const got = await receiveAll('mask', { max: 100 });
    // Ten per group per receive keeps one tenant from filling every batch.
    expect(got.map((m) => m.body)).toEqual([...Array.from({ length: 10 }, (_, i) => `m${i}`), 's0']);
    // The rest of "big" waits until the first ten are done.
    expect(await receiveAll('mask', { max: 100 })).toEqual([]);
    await transport.ack('mask', got);
    expect((await receiveAll('mask', { max: 100 })).map((m) => m.body)).toEqual([
      'm10',
      'm11',
      'm12',
      'm13',
      'm14',
    ]);
  });

  it('fills a receive group by group, oldest first, so concurrent receivers take different groups', async () => {
    await reset();
    // Sent interleaved: g1 has the oldest message, then g2, g3, g4.
    const out: OutgoingMessage[] = [];
    for (let i = 0; i < 4; i++) for (const g of ['g1', 'g2', 'g3', 'g4']) out.push(msg(g, `${g}:${i}`));
    await transport.send('mask', out);
    const first = await receiveAll('mask', { max: 8 });
    // Taken by id this would be two messages of every group, and a second receiver would find
    // all four groups in flight.
    const g12 = ['g1:0', 'g2:0', 'g1:1', 'g2:1', 'g1:2', 'g2:2', 'g1:3', 'g2:3'];
    expect(first.map((m) => m.body)).toEqual(g12);
    const second = await receiveAll('mask', { max: 8 });
    expect(new Set(second.map((m) => m.group))).toEqual(new Set(['g3', 'g4']));
    expect(second).toHaveLength(8);
  });

  it('retry counts an attempt and delays redelivery; the message keeps its place in the group', async () => {
    await reset();
    await transport.send('mask', [msg('a', 'head'), msg('a', 'next')]);
    const [head] = await receiveAll('mask', { max: 1 });
    expect(head!.body).toBe('head');
    await transport.retry('mask', [head!], 300);
    // While the head waits out its delay, nothing of the group is delivered.
    expect(await receiveAll('mask')).toEqual([]);
    const again = await eventually(async () => {
      const got = await receiveAll('mask', { max: 1 });
      return got.length > 0 ? got : undefined;
    });
    expect(again.map((m) => [m.body, m.attempt])).toEqual([['head', 2]]);
  });

  it('release hands a message back at once without counting the attempt', async () => {
    await reset();
    await transport.send('mask', [msg('a', 'held')]);
    for (let i = 0; i < MAX_ATTEMPTS + 2; i++) {
      const got = await receiveAll('mask');
      expect(got.map((m) => [m.body, m.attempt])).toEqual([['held', 1]]);
      await transport.release('mask', got);
    }
    expect(await rows('mask')).toEqual([{ group_id: 'a', attempts: 0, receipt: null }]);
    expect(await transport.listDeadLetters('mask', 10)).toEqual([]);
  });

  it(`dead-letters a message after ${MAX_ATTEMPTS} failed attempts, which unblocks its group`, async () => {
    await reset();
    await transport.send('encrypt', [msg('a', 'poison'), msg('a', 'after-poison'), msg('b', 'other')]);
    const other = await receiveAll('encrypt');
    expect(other.map((m) => m.body)).toEqual(['poison', 'after-poison', 'other']);
    await transport.ack(
      'encrypt',
      other.filter((m) => m.body === 'other'),
    );
    await transport.release(
      'encrypt',
      other.filter((m) => m.body === 'after-poison'),
    );
    await transport.retry(
      'encrypt',
      other.filter((m) => m.body === 'poison'),
      0,
    );
    for (let attempt = 2; attempt <= MAX_ATTEMPTS; attempt++) {
      const got = await receiveAll('encrypt');
      expect(got.map((m) => [m.body, m.attempt])).toEqual([
        ['poison', attempt],
        ['after-poison', 1],
      ]);
      await transport.release('encrypt', [got[1]!]);
      await transport.retry('encrypt', [got[0]!], 0);
    }
    // The next receive moves the exhausted head to the dead letters and delivers what followed it.
    const next = await receiveAll('encrypt');
    expect(next.map((m) => [m.body, m.attempt])).toEqual([['after-poison', 1]]);
    const dead = await transport.listDeadLetters('encrypt', 10);
    expect(dead.map((d) => [d.queue, d.group, d.body, d.attempts])).toEqual([
      ['encrypt', 'a', 'poison', MAX_ATTEMPTS],
    ]);
    expect(dead[0]!.deadAt).toBeGreaterThanOrEqual(dead[0]!.sentAt);
    expect(await transport.listDeadLetters('mask', 10)).toEqual([]);
  });

  it('redrives dead letters (all, or by id) back into the queue with fresh attempts', async () => {
    await reset();
    await transport.send('index', [msg('a', 'd1'), msg('b', 'd2')]);
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      const got = await receiveAll('index');
      expect(got).toHaveLength(2);
      await transport.retry('index', got, 0);
    }
    expect(await receiveAll('index')).toEqual([]);
    const dead = await transport.listDeadLetters('index', 10);
    expect(dead.map((d) => d.body)).toEqual(['d1', 'd2']);

    expect(await transport.redrive('index', [dead[1]!.id])).toBe(1);
    expect((await transport.listDeadLetters('index', 10)).map((d) => d.body)).toEqual(['d1']);
    const one = await receiveAll('index');
    expect(one.map((m) => [m.body, m.attempt])).toEqual([['d2', 1]]);
    await transport.ack('index', one);

    expect(await transport.redrive('index')).toBe(1);
    expect(await transport.listDeadLetters('index', 10)).toEqual([]);
    const rest = await receiveAll('index');
    expect(rest.map((m) => [m.body, m.attempt])).toEqual([['d1', 1]]);
    expect(await transport.redrive('index')).toBe(0);
  });

  it('stores a message once per dedup id while it is queued', async () => {
    await reset();
    await transport.send('mask', [msg('a', 'first', 'same-id'), msg('a', 'second', 'same-id')]);
    await transport.send('mask', [msg('a', 'third', 'same-id')]);
    // Dedup ids are per queue.
    await transport.send('encrypt', [msg('a', 'elsewhere', 'same-id')]);
    expect((await receiveAll('mask')).map((m) => m.body)).toEqual(['first']);
    expect((await receiveAll('encrypt')).map((m) => m.body)).toEqual(['elsewhere']);
    expect(await transport.depth('mask')).toBe(1);
  });

  it('encrypts bodies at rest: the plaintext is nowhere in the stored row or dead letter', async () => {
    await reset();
    const secret = `{"message":"card 4111111111111111 for jane.doe@example.com ${randomUUID()}"}`;
    await transport.send('mask', [msg('tenant-x', secret)]);
    const { rows: stored } = await pool.query<{ body: Buffer; body_bytes: number; row: string }>(
      `SELECT body, body_bytes, queue_messages::text AS row FROM queue_messages WHERE queue = 'mask'`,
    );
    expect(stored).toHaveLength(1);
    const body = stored[0]!.body;
    // IV and tag, then the compressed plaintext; body_bytes is the plaintext's length.
    expect(body.length).toBeGreaterThan(28);
    expect(stored[0]!.body_bytes).toBe(Buffer.byteLength(secret));
    for (const needle of ['4111111111111111', 'jane.doe', 'message']) {
      expect(body.includes(Buffer.from(needle))).toBe(false);
      expect(stored[0]!.row).not.toContain(needle);
    }
    // Another key cannot open it: the body really is ciphertext, not an encoding.
    const wrongKey = new EmbeddedTransport(pool, randomBytes(32), MAX_ATTEMPTS);
    await expect(wrongKey.receive('mask', opts())).rejects.toThrow();
    // The right key still reads it.
    await pool.query(`UPDATE queue_messages SET visible_at = now(), receipt = NULL, attempts = 0`);
    const [got] = await receiveAll('mask');
    expect(got!.body).toBe(secret);

    // Dead letters keep the ciphertext as it was.
    await pool.query(`UPDATE queue_messages SET attempts = $1, visible_at = now()`, [MAX_ATTEMPTS]);
    expect(await receiveAll('mask')).toEqual([]);
    const { rows: dead } = await pool.query<{ body: Buffer }>('SELECT body FROM queue_dead_letters');
    expect(dead).toHaveLength(1);
    expect(dead[0]!.body.includes(Buffer.from('4111111111111111'))).toBe(false);
    expect((await transport.listDeadLetters('mask', 1))[0]!.body).toBe(secret);
  });

  it('receives a message stored before bodies were compressed (sealed plaintext, no body_bytes)', async () => {
    await reset();
    const { seal } = await import('../crypto/aead.js');
    const legacy = '{"v":1,"tenant_id":"old","events":[]}';
    const sealed = seal(key, Buffer.from(legacy), Buffer.from('mask\u0000old'));
    await pool.query(
      `INSERT INTO queue_messages (queue, group_id, dedup_id, body) VALUES ('mask', 'old', 'legacy', $1)`,
      [sealed],
    );
    await transport.send('mask', [msg('new', 'after the upgrade')]);
    const got = await receiveAll('mask');
    expect(got.map((m) => [m.group, m.body])).toEqual([
      ['old', legacy],
      ['new', 'after the upgrade'],
    ]);
    const { rows: stored } = await pool.query<{ body_bytes: number | null }>(
      'SELECT body_bytes FROM queue_messages ORDER BY id',
    );
    expect(stored.map((r) => r.body_bytes)).toEqual([null, Buffer.byteLength('after the upgrade')]);
  });

  it('binds a ciphertext to its queue and group: a body moved elsewhere fails to open', async () => {
    await reset();
    await transport.send('mask', [msg('a', 'bound')]);
    await pool.query(`UPDATE queue_messages SET group_id = 'b'`);
    await expect(receiveAll('mask')).rejects.toThrow();
  });

  it('wakes a long-polling receiver when a message is sent', async () => {
    await reset();
    const pending = transport.receive('persist', opts({ waitMs: 20_000 }));
    await new Promise((r) => setTimeout(r, 100));
    await transport.send('persist', [msg('a', 'wake-up')]);
    expect((await pending).map((m) => m.body)).toEqual(['wake-up']);
  });

  it('sends its wake-up only after the send committed, one per burst of sends at least', async () => {
    await reset();
    const { default: pg } = await import('pg');
    const listener = new pg.Client({ connectionString: url });
    await listener.connect();
    try {
      // What a woken receiver would find: the queue's rows as another connection sees them then.
      const seen: number[] = [];
      listener.on('notification', (n) => {
        if (n.payload !== 'persist') return;
        seen.push(-1);
        const slot = seen.length - 1;
        pool
          .query<{ n: number }>(`SELECT count(*)::int AS n FROM queue_messages WHERE queue = 'persist'`)
          .then((r) => {
            seen[slot] = r.rows[0]!.n;
          });
      });
      await listener.query('LISTEN auditlog_queue');
      await Promise.all(Array.from({ length: 20 }, (_, i) => transport.send('persist', [msg('a', `m${i}`)])));
      await eventually(async () => expect(seen.length).toBeGreaterThan(0));
      await eventually(async () => expect(seen.every((n) => n >= 0)).toBe(true));
      expect(seen[0]).toBeGreaterThan(0);
      // Wake-ups asked for while one is in flight are merged, but the last one comes after the
      // last send: the final notification's reader sees all 20.
      await eventually(async () => expect(seen.at(-1)).toBe(20));
      expect(seen.length).toBeLessThanOrEqual(20);
    } finally {
      await listener.end();
    }
  });

  it("wakes a waiting receive only for its own queue's messages", async () => {
    await reset();
    const spy = vi.spyOn(transport as unknown as { tryReceive: () => Promise<unknown> }, 'tryReceive');
    try {
      const pending = transport.receive('persist', opts({ waitMs: 20_000 }));
      await new Promise((r) => setTimeout(r, 100));
      expect(spy).toHaveBeenCalledTimes(1);
      // A send to another queue does not make the persist receiver query again (the fallback
      // poll is a second away).
      await transport.send('mask', [msg('a', 'elsewhere')]);
      await new Promise((r) => setTimeout(r, 200));
      expect(spy).toHaveBeenCalledTimes(1);
      await transport.send('persist', [msg('a', 'mine')]);
      expect((await pending).map((m) => m.body)).toEqual(['mine']);
      expect(spy).toHaveBeenCalledTimes(2);
    } finally {
      spy.mockRestore();
    }
  });

  it('returns an empty receive when the signal aborts', async () => {
    await reset();
    const ac = new AbortController();
    const pending = transport.receive('persist', opts({ waitMs: 20_000, signal: ac.signal }));
    ac.abort();
    expect(await pending).toEqual([]);
  });
});
