import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { checkout, withTransaction } from '../db/pool.js';
import { openBody, sealBody } from './sealed-body.js';
import type {
  DeadLetter,
  OutgoingMessage,
  QueueName,
  ReceivedMessage,
  ReceiveOptions,
  Transport,
} from './types.js';

const CHANNEL = 'auditlog_queue';
/** Messages of one group handed out by one receive; keeps one tenant from filling every batch. */
const PER_GROUP = 10;
/**
 * Receives look at the oldest messages only, so a receive costs the same with a deep backlog.
 * The oldest N by id contain a prefix of every group's messages, so ordering still holds; a group
 * whose first message is beyond the window waits until older messages drain.
 */
const SCAN_WINDOW = 5000;
/**
 * Plaintext body bytes one receive takes at most (beyond its first message): bounds a batch's
 * memory. Counted from `body_bytes`, not the stored length, which is compressed.
 */
const RECEIVE_BYTES = 8 * 1024 * 1024;
/** Messages per INSERT statement (four parameters each; PostgreSQL allows 65,535). */
const MAX_SEND_ROWS = 1000;
/** Fallback poll interval when no NOTIFY arrives (e.g. a missed notification after a reconnect). */
const POLL_MS = 1000;

/**
 * One receive: the eligible messages (every earlier message of their group visible, at most
 * PER_GROUP of a group) whole group by whole group, oldest group first, cut at `max` messages or
 * once RECEIVE_BYTES of bodies are taken (at least one message). Filling by group, not by id,
 * matters when receives run concurrently: taken by id, the first receive holds a few messages of
 * every tenant and the others find every group in flight and wait, so one receive loop works and
 * the rest idle. Filled by group, each takes its own tenants (measured: 8 tenants, two loops, the
 * backlog drained at 6.1k → 7.0k events/s, 1.3 → 1.6 cores busy).
 */
const RECEIVE_SQL = `WITH heads AS (
           SELECT id FROM (
             SELECT id, len, sum(len) OVER (ORDER BY head, id) AS upto
               FROM (
                 SELECT id, len, head FROM (
                   SELECT id, coalesce(body_bytes, octet_length(body)) AS len,
                          bool_and(visible_at <= now()) OVER w AS prefix_visible,
                          row_number() OVER w AS rn,
                          min(id) OVER (PARTITION BY group_id) AS head
                     FROM (SELECT id, group_id, visible_at, body, body_bytes FROM queue_messages WHERE queue = $1
                            ORDER BY id LIMIT $5) oldest
                   WINDOW w AS (PARTITION BY group_id ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
                 ) s
                 WHERE prefix_visible AND rn <= $3
                 ORDER BY head, id LIMIT $2
               ) eligible
           ) counted
           WHERE upto - len < $6)
         UPDATE queue_messages m
            SET visible_at = now() + $4 * interval '1 millisecond',
                attempts = attempts + 1,
                receipt = gen_random_uuid()
           FROM heads WHERE m.id = heads.id
         RETURNING m.id, m.group_id, m.body, m.attempts, m.sent_at, m.receipt`;

interface Row {
  id: string;
  group_id: string;
  body: Buffer;
  attempts: number;
  sent_at: Date;
  receipt: string;
}

/**
 * The zero-setup durable queue: rows in the same PostgreSQL as the events. `send` commits before
 * it resolves, so an acknowledged batch survives any crash. Receivers are woken by NOTIFY.
 * Receives of one queue are serialized by a transaction-level advisory lock; that is what makes
 * "no message of a group while an earlier one is in flight" hold across processes.
 */
export class EmbeddedTransport implements Transport {
  readonly kind = 'embedded' as const;
  private listener: pg.Client | undefined;
  private listening: Promise<void> | undefined;
  /** Receives waiting for a notification, by queue (a notification's payload is its queue). */
  private readonly waiters = new Map<string, Set<() => void>>();
  /** Wake-ups in flight by queue; `again` asks for one more once it is done. */
  private readonly waking = new Map<QueueName, { again: boolean }>();
  private closed = false;

  constructor(
    private readonly pool: pg.Pool,
    /** AES-256 key for message bodies: raw events are never on disk in clear. */
    private readonly bodyKey: Buffer,
    private readonly maxAttempts: number,
    private readonly listenUrl?: string,
  ) {}

  private aad(queue: QueueName, group: string): Buffer {
    return Buffer.from(`${queue}\u0000${group}`);
  }

  async send(queue: QueueName, messages: OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    if (messages.length <= MAX_SEND_ROWS) await this.insert(this.pool, queue, messages);
    else {
      // Larger sends are several statements in one transaction: all of them are stored, or none.
      await withTransaction(this.pool, async (client) => {
        for (let i = 0; i < messages.length; i += MAX_SEND_ROWS) {
          await this.insert(client, queue, messages.slice(i, i + MAX_SEND_ROWS));
        }
      });
    }
    this.wake(queue);
  }

  /**
   * One INSERT of up to MAX_SEND_ROWS messages. One parameter per body, not a bytea[]:
   * node-postgres sends a Buffer parameter in binary, while an array of them is hex-encoded in JS
   * and hex-decoded by the server.
   */
  private async insert(
    db: pg.Pool | pg.ClientBase,
    queue: QueueName,
    messages: OutgoingMessage[],
  ): Promise<void> {
    const params: unknown[] = [queue];
    const rows: string[] = [];
    for (const m of messages) {
      const plain = Buffer.from(m.body);
      const sealed = sealBody(this.bodyKey, plain, this.aad(queue, m.group));
      const n = params.push(m.group, m.dedupId, sealed, plain.length);
      rows.push(`($1, $${n - 3}, $${n - 2}, $${n - 1}::bytea, $${n}::int)`);
    }
    await db.query(
      `INSERT INTO queue_messages (queue, group_id, dedup_id, body, body_bytes)
       VALUES ${rows.join(', ')}
       ON CONFLICT (queue, dedup_id) DO NOTHING`,
      params,
    );
  }

  /**
   * Wakes the receivers of `queue` after a send has committed, without the sender waiting. The
   * wake-up is not part of the send's transaction on purpose: PostgreSQL serializes the commits
   * of every notifying transaction (a database-wide lock from pre-commit until the commit record
   * is flushed), so a NOTIFY in the INSERT made each ingest acknowledgement queue behind every
   * other notifying commit, the persist stage's large ones included. Measured at 10,000
   * events/s offered (`npm run bench -- ingest`, 500-event bulks): the INSERTs spent as many
   * samples waiting on that lock as on the CPU; three alternating runs gave HTTP p99 241, 648
   * and 374 ms with the NOTIFY in the INSERT, 166, 171 and 214 ms with this. A lost wake-up
   * (crash, lost connection) costs at most POLL_MS; wake-ups asked for while one is in flight are
   * merged into one more after it.
   */
  private wake(queue: QueueName): void {
    if (this.closed) return;
    const state = this.waking.get(queue);
    if (state) {
      state.again = true;
      return;
    }
    const next = { again: false };
    this.waking.set(queue, next);
    this.pool
      .query('SELECT pg_notify($1, $2)', [CHANNEL, queue])
      .catch(() => {})
      .finally(() => {
        this.waking.delete(queue);
        if (next.again) this.wake(queue);
      });
  }

  async receive(queue: QueueName, options: ReceiveOptions): Promise<ReceivedMessage[]> {
    await this.listen();
    const deadline = Date.now() + options.waitMs;
    for (;;) {
      const got = await this.tryReceive(queue, options.max, options.visibilityMs);
      if (got.length > 0 || this.closed || options.signal?.aborted) return got;
      const remaining = deadline - Date.now();
      if (remaining <= 0) return [];
      await this.wait(queue, Math.min(remaining, POLL_MS), options.signal);
    }
  }

  /** Its statements are named, so each connection plans them once (about 1 ms each time). */
  private async tryReceive(queue: QueueName, max: number, visibilityMs: number): Promise<ReceivedMessage[]> {
    const rows = await this.claim(queue, max, visibilityMs);
    rows.sort((a, b) => Number(a.id) - Number(b.id));
    const received: ReceivedMessage[] = [];
    for (const r of rows) {
      // Opening is ~0.4 ms per 250 kB body: let waiting requests in between two (see slices.ts).
      if (received.length > 0) await nextTurn();
      received.push({
        receipt: `${r.id}:${r.receipt}`,
        group: r.group_id,
        body: openBody(this.bodyKey, r.body, this.aad(queue, r.group_id)),
        attempt: r.attempts,
        sentAt: r.sent_at.getTime(),
      });
    }
    return received;
  }

  /** Claims the next eligible messages in one transaction (see RECEIVE_SQL). */
  private async claim(queue: QueueName, max: number, visibilityMs: number): Promise<Row[]> {
    const client = await checkout(this.pool);
    try {
      await client.query('BEGIN');
      await client.query(`SELECT pg_advisory_xact_lock(hashtext('auditlog-queue:' || $1))`, [queue]);
      // A visible message that has used up its attempts moves to the dead-letter table, which
      // unblocks its group.
      await client.query({
        name: 'queue-dead-letter-sweep',
        text: `WITH dead AS (
           DELETE FROM queue_messages WHERE queue = $1 AND visible_at <= now() AND attempts >= $2
           RETURNING id, queue, group_id, dedup_id, body, body_bytes, attempts, sent_at)
         INSERT INTO queue_dead_letters (id, queue, group_id, dedup_id, body, body_bytes, attempts, sent_at)
         SELECT * FROM dead`,
        values: [queue, this.maxAttempts],
      });
      // Many small messages make one batch; a few large ones do not exhaust memory.
      const { rows } = await client.query<Row>({
        name: 'queue-receive',
        text: RECEIVE_SQL,
        values: [queue, max, PER_GROUP, visibilityMs, SCAN_WINDOW, RECEIVE_BYTES],
      });
      await client.query('COMMIT');
      return rows;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  private receipts(messages: ReceivedMessage[]): [string[], string[]] {
    const ids: string[] = [];
    const receipts: string[] = [];
    for (const m of messages) {
      const [id, receipt] = m.receipt.split(':');
      ids.push(id!);
      receipts.push(receipt!);
    }
    return [ids, receipts];
  }

  async ack(_queue: QueueName, messages: ReceivedMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const [ids, receipts] = this.receipts(messages);
    // Matching the receipt means a message redelivered to someone else after our visibility
    // expired is not deleted out from under them.
    await this.pool.query(
      `DELETE FROM queue_messages m USING unnest($1::bigint[], $2::uuid[]) AS t(id, receipt)
        WHERE m.id = t.id AND m.receipt = t.receipt`,
      [ids, receipts],
    );
  }

  async extend(_queue: QueueName, messages: ReceivedMessage[], visibilityMs: number): Promise<void> {
    await this.setVisibility(messages, visibilityMs, false);
  }

  async retry(queue: QueueName, messages: ReceivedMessage[], delayMs: number): Promise<void> {
    await this.setVisibility(messages, delayMs, true);
    this.wake(queue);
  }

  async release(queue: QueueName, messages: ReceivedMessage[]): Promise<void> {
    await this.setVisibility(messages, 0, true, true);
    this.wake(queue);
  }

  private async setVisibility(
    messages: ReceivedMessage[],
    ms: number,
    release: boolean,
    uncount = false,
  ): Promise<void> {
    if (messages.length === 0) return;
    const [ids, receipts] = this.receipts(messages);
    await this.pool.query(
      `UPDATE queue_messages m
          SET visible_at = now() + $3 * interval '1 millisecond',
              receipt = CASE WHEN $4 THEN NULL ELSE m.receipt END,
              attempts = CASE WHEN $5 THEN greatest(m.attempts - 1, 0) ELSE m.attempts END
         FROM unnest($1::bigint[], $2::uuid[]) AS t(id, receipt)
        WHERE m.id = t.id AND m.receipt = t.receipt`,
      [ids, receipts, ms, release, uncount],
    );
  }

  async depth(queue: QueueName): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>(
      'SELECT count(*) AS n FROM queue_messages WHERE queue = $1',
      [queue],
    );
    return Number(rows[0]?.n ?? 0);
  }

  async listDeadLetters(queue: QueueName, limit: number): Promise<DeadLetter[]> {
    const { rows } = await this.pool.query<Row & { dead_at: Date }>(
      `SELECT id, group_id, body, attempts, sent_at, dead_at FROM queue_dead_letters
        WHERE queue = $1 ORDER BY id LIMIT $2`,
      [queue, limit],
    );
    return rows.map((r) => ({
      id: String(r.id),
      queue,
      group: r.group_id,
      body: openBody(this.bodyKey, r.body, this.aad(queue, r.group_id)),
      attempts: r.attempts,
      sentAt: r.sent_at.getTime(),
      deadAt: r.dead_at.getTime(),
    }));
  }

  async redrive(queue: QueueName, ids?: string[]): Promise<number> {
    const { rowCount } = await this.pool.query(
      `WITH moved AS (
         DELETE FROM queue_dead_letters WHERE queue = $1 AND ($2::bigint[] IS NULL OR id = ANY($2))
         RETURNING group_id, dedup_id, body, body_bytes, sent_at, id)
       INSERT INTO queue_messages (queue, group_id, dedup_id, body, body_bytes, sent_at)
       SELECT $1, group_id, 'redrive-' || id || '-' || dedup_id, body, body_bytes, sent_at FROM moved ORDER BY id
       ON CONFLICT (queue, dedup_id) DO NOTHING`,
      [queue, ids ?? null],
    );
    this.wake(queue);
    return rowCount ?? 0;
  }

  /** One LISTEN connection per transport; wakes every waiting receive on any queue's send. */
  private listen(): Promise<void> {
    if (!this.listenUrl) return Promise.resolve();
    this.listening ??= (async () => {
      const client = new pg.Client({ connectionString: this.listenUrl, application_name: 'auditlog-listen' });
      client.on('error', () => {
        // Lost the LISTEN connection: receives fall back to polling; reconnect on next receive.
        this.listener = undefined;
        this.listening = undefined;
      });
      client.on('notification', (n) => {
        for (const wake of this.waiters.get(n.payload ?? '') ?? []) wake();
      });
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      this.listener = client;
    })().catch(() => {
      this.listening = undefined;
    });
    return this.listening;
  }

  private async wait(queue: QueueName, ms: number, signal?: AbortSignal): Promise<void> {
    const ac = new AbortController();
    const wake = () => ac.abort();
    let waiting = this.waiters.get(queue);
    if (!waiting) {
      waiting = new Set();
      this.waiters.set(queue, waiting);
    }
    waiting.add(wake);
    const onAbort = () => ac.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await sleep(ms, undefined, { signal: ac.signal });
    } catch {
      // woken early
    } finally {
      waiting.delete(wake);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const waiting of this.waiters.values()) for (const wake of waiting) wake();
    await this.listener?.end().catch(() => {});
    this.listener = undefined;
  }
}
