import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import type { Context } from '../infra/context.js';
import { type Batch, batchParser } from '../infra/schema/batch.js';
import { MAX_BODY_BYTES, toMessages } from '../infra/transport/split.js';
import type { ReceivedMessage } from '../infra/transport/types.js';
import { runPipelined, type Step, splitIntoParts } from './parts.js';
import type { Stage } from './stage.js';

/**
 * Events per part of a receive when it runs as a pipeline (see `parts.ts`): large enough that a
 * part's fixed costs (a persist transaction, a send, an ack) stay small per event, small enough
 * that an 8 MiB receive becomes several parts that overlap, and that the first events of a full
 * receive commit without waiting for the rest. Measured under `npm run bench -- stream` (5,000
 * events/s, 50-event bulks, so a receive holds up to 2,500 events): ack→delivery p99 over four
 * alternating runs 0.27–0.99 s with 1,000, 0.40–2.0 s with 2,000; `npm run bench -- ingest`
 * drained as fast with either (bulk 500: 9,837 vs 8,363 events/s, within the run-to-run noise).
 */
export const PART_EVENTS = 1000;

/** Long-poll wait per receive; also bounds how long `stop()` waits for an idle loop. */
const RECEIVE_WAIT_MS = 2000;
const MAX_RETRY_DELAY_MS = 60_000;

export interface Runner {
  /** Resolves when every loop has stopped. */
  readonly done: Promise<void>;
  /**
   * Stops receiving, lets in-flight batches finish for up to `timeoutMs`, then releases what is
   * left so another worker can take it at once. Idempotent.
   */
  stop(timeoutMs?: number): Promise<void>;
}

interface Parsed {
  message: ReceivedMessage;
  batch: Batch<unknown>;
}

/**
 * The one stage runner, shared by every stage and every transport. `chain` is one stage or
 * several consecutive ones fused in one process (e.g. mask→encrypt→persist): the runner consumes
 * the first stage's queue, passes batches through each handler in memory and forwards the last
 * stage's output to its queue. Messages are acknowledged only after that output (or the database
 * commit inside persist) is durable, so a crash at any point means redelivery, never loss;
 * persist's idempotency on event id turns redelivery into exactly-once.
 */
export function startRunner(ctx: Context, chain: Stage[]): Runner {
  const first = chain[0];
  const last = chain[chain.length - 1];
  if (!first || !last) throw new Error('a runner needs at least one stage');
  for (let i = 1; i < chain.length; i++) {
    if (chain[i - 1]!.output !== chain[i]!.input) throw new Error('fused stages must be consecutive');
  }
  const { config, transport, metrics, log } = ctx;
  const queue = first.input;
  const parse = batchParser(first.inputEvent);
  const visibilityMs = config.QUEUE_VISIBILITY_TIMEOUT_MS;
  const abort = new AbortController();
  const inFlight = new Set<ReceivedMessage[]>();
  let stopping = false;

  const retryDelay = (attempt: number) => {
    const base = config.STAGE_RETRY_BASE_MS * 2 ** Math.max(0, attempt - 1);
    return Math.min(MAX_RETRY_DELAY_MS, Math.round(base * (0.5 + Math.random())));
  };

  async function runStage(stage: Stage, batches: Batch<unknown>[]): Promise<Batch<unknown>[]> {
    const events = batches.reduce((n, b) => n + b.events.length, 0);
    metrics.eventsIn.inc({ stage: stage.name }, events);
    metrics.batchSize.observe({ stage: stage.name }, events);
    const end = metrics.stageDuration.startTimer({ stage: stage.name });
    let out: Batch<unknown>[];
    try {
      out = await stage.handle(batches, ctx);
    } catch (err) {
      metrics.eventsFailed.inc({ stage: stage.name }, events);
      throw err;
    } finally {
      end();
    }
    metrics.eventsOut.inc(
      { stage: stage.name },
      out.reduce((n, b) => n + b.events.length, 0),
    );
    return out;
  }

  /** Sends the last stage's output to its queue; resolves once it is durable there. */
  async function forward(batches: Batch<unknown>[]): Promise<void> {
    if (!last!.output || batches.length === 0) return;
    const out = last!.output;
    const messages = batches.flatMap((b) =>
      toMessages(out, b as Batch<{ id: string }>, MAX_BODY_BYTES[transport.kind]),
    );
    await transport.send(out, messages);
  }

  /**
   * Runs one receive through the chain in parts (see `runPipelined`): each stage, then forwarding
   * and acknowledging, is a step, so a part's messages are acknowledged as soon as its output is
   * durable, while later parts are still in earlier stages. Returns what did not finish, in
   * receive order, for the failure path.
   */
  async function runInParts(parsed: Parsed[]): Promise<{ rest: Parsed[]; err?: unknown }> {
    const parts = splitIntoParts(parsed, (p) => p.batch.events.length, PART_EVENTS);
    const steps: Step<Parsed, Batch<unknown>[]>[] = chain.map(
      (stage) => (batches) => runStage(stage, batches),
    );
    steps.push(async (batches, part) => {
      await forward(batches);
      await transport.ack(
        queue,
        part.map((p) => p.message),
      );
      return batches;
    });
    const { finished, err } = await runPipelined(parts, (part) => part.map((p) => p.batch), steps);
    return { rest: parts.slice(finished).flat(), err };
  }

  async function fail(messages: ReceivedMessage[], err: unknown): Promise<void> {
    if (messages.length === 0) return;
    const attempt = Math.max(...messages.map((m) => m.attempt));
    for (const m of messages) {
      if (m.attempt >= config.QUEUE_MAX_ATTEMPTS) metrics.deadLettered.inc({ queue });
    }
    // The error may quote event content; log the error class and message only at debug level.
    log.warn(
      { stage: first!.name, attempt, messages: messages.length, err: (err as Error).name },
      'batch failed',
    );
    log.debug({ err }, 'batch failure detail');
    await transport.retry(queue, messages, retryDelay(attempt));
  }

  /** Processes messages one at a time; a failure holds back the rest of that group (ordering). */
  async function isolate(items: Parsed[], unparsable: ReceivedMessage[]): Promise<void> {
    const blocked = new Set(unparsable.map((m) => m.group));
    const held: ReceivedMessage[] = [];
    for (const item of items) {
      if (blocked.has(item.message.group)) {
        held.push(item.message);
        continue;
      }
      const { rest, err } = await runInParts([item]);
      if (rest.length > 0) {
        blocked.add(item.message.group);
        await fail([item.message], err);
      }
    }
    // Later messages of a failed group were not attempted: hand them back uncounted, so they
    // keep FIFO order behind the failed head and do not follow it to the dead-letter queue.
    if (held.length > 0) await transport.release(queue, held);
  }

  async function processMessages(messages: ReceivedMessage[]): Promise<void> {
    const now = Date.now();
    for (const m of messages) metrics.queueLag.observe({ queue }, Math.max(0, now - m.sentAt) / 1000);
    const heartbeat = setInterval(
      () => {
        transport
          .extend(queue, messages, visibilityMs)
          .catch((err) => log.warn({ err }, 'visibility extend failed'));
      },
      Math.floor(visibilityMs / 3),
    );
    try {
      const parsed: Parsed[] = [];
      const unparsable: ReceivedMessage[] = [];
      for (const [i, message] of messages.entries()) {
        // A message is up to a few MB of JSON: let waiting requests in between two (see slices.ts).
        if (i > 0) await nextTurn();
        try {
          parsed.push({ message, batch: parse(message.body) });
        } catch (err) {
          unparsable.push(message);
          await fail([message], err);
        }
      }
      if (unparsable.length === 0) {
        const { rest, err } = await runInParts(parsed);
        if (rest.length === 0) return;
        if (rest.length === 1) {
          await fail(
            rest.map((p) => p.message),
            err,
          );
          return;
        }
        await isolate(rest, []);
        return;
      }
      await isolate(parsed, unparsable);
    } finally {
      clearInterval(heartbeat);
    }
  }

  async function loop(): Promise<void> {
    while (!stopping) {
      let messages: ReceivedMessage[];
      try {
        messages = await transport.receive(queue, {
          max: config.STAGE_RECEIVE_MAX,
          waitMs: RECEIVE_WAIT_MS,
          visibilityMs,
          signal: abort.signal,
        });
      } catch (err) {
        if (stopping) break;
        log.warn({ err, stage: first!.name }, 'receive failed');
        await sleep(500);
        continue;
      }
      if (messages.length === 0) continue;
      inFlight.add(messages);
      try {
        await processMessages(messages);
      } catch (err) {
        // Only transport errors reach here (ack/retry failed); visibility expiry redelivers.
        log.error({ err, stage: first!.name }, 'batch bookkeeping failed');
      } finally {
        inFlight.delete(messages);
      }
    }
  }

  const done = Promise.all(Array.from({ length: config.STAGE_CONCURRENCY }, loop)).then(() => {});
  let stopped: Promise<void> | undefined;

  return {
    done,
    stop(timeoutMs = 20_000) {
      stopped ??= (async () => {
        stopping = true;
        abort.abort();
        const timer = sleep(timeoutMs).then(() => 'timeout' as const);
        if ((await Promise.race([done, timer])) === 'timeout') {
          // In-flight work did not finish in time: hand it back so it is redelivered promptly.
          await Promise.all([...inFlight].map((ms) => transport.release(queue, ms).catch(() => {})));
        }
      })();
      return stopped;
    },
  };
}
