// The receive side of the SQS adapter, on sqs-consumer. sqs-consumer pushes: each `Consumer` long
// polls, hands a response's messages to `handleMessageBatch` and polls again only once that
// resolves. `Transport.receive` pulls. `SqsReceiver` joins the two for one queue: a `receive` call
// waits; consumers are started for waiting calls (one per call not served by a running consumer,
// as a consumer holds one batch at a time) and stopped when nobody waits. A batch goes to the
// longest-waiting call, or is buffered for the next one, and `handleMessageBatch` resolves only
// once the caller has settled every message of it through ack, retry or release (`settled`), so
// a consumer never polls while its batch is being worked on. sqs-consumer deletes nothing: the
// handler acknowledges no message and deleting is `ack`'s job, once the work is durable downstream.
import { randomUUID } from 'node:crypto';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import type {
  Message,
  MessageSystemAttributeName,
  ReceiveMessageCommandInput,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { Logger } from 'pino';
import { Consumer } from 'sqs-consumer';
import type { ReceivedMessage, ReceiveOptions } from './types.js';

/** ReceiveMessage returns at most 10 messages and long polls for at most 20 s. */
const MAX_BATCH = 10;
const MAX_WAIT_SECONDS = 20;
/** Visibility timeouts range from 0 s to 12 h. */
const MAX_VISIBILITY_SECONDS = 43_200;
/**
 * Buffered messages nobody claimed go back to the queue once this share of their visibility
 * timeout has passed, so a caller always gets at least the rest (the runner extends at a third).
 */
const UNCLAIMED_SHARE = 0.5;
/** How long `close` waits for a consumer's last poll to end, and how often it looks. */
const CLOSE_WAIT_MS = 10_000;
const CLOSE_CHECK_MS = 5;

export interface SqsReceiverOptions {
  client: SQSClient;
  queueUrl: string;
  /** Attributes every received message carries (for `toReceived`). */
  systemAttributes: MessageSystemAttributeName[];
  messageAttributes: string[];
  /** The transport's form of a message; if it throws, the message stays hidden until it times out. */
  toReceived(message: Message): ReceivedMessage;
  /** Makes messages visible again at once; ones no longer in flight are not an error. */
  release(receipts: string[]): Promise<void>;
  log: Logger;
}

/** Receive parameters of one consumer, from the `receive` call it was started for. */
interface PollParams {
  batchSize: number;
  waitSeconds: number;
  visibilityMs: number;
}

interface Slot {
  consumer: Consumer;
  params: PollParams;
  /** Number of the consumer's latest ReceiveMessage call (see `SqsReceiver.polls`). */
  poll: number;
  /** Inside `handleMessageBatch`: its batch is not settled yet, so it cannot poll. */
  holding: boolean;
}

interface Waiter {
  max: number;
  waitMs: number;
  params: PollParams;
  /** ReceiveMessage calls started before this one came. */
  since: number;
  resolve(messages: ReceivedMessage[]): void;
  reject(err: unknown): void;
  cleanup(): void;
}

/** One ReceiveMessage response, from `handleMessageBatch` until all of it is settled. */
interface Delivery {
  /** Not handed to a caller yet, in receive order. */
  unclaimed: ReceivedMessage[];
  /** Receipts not settled yet, claimed or not. */
  pending: Set<string>;
  receivedAt: number;
  visibilityMs: number;
  /** When SQS makes its unsettled messages visible again (later after `extended`). */
  expiresAt: number;
  timer?: NodeJS.Timeout;
  /** Resolves `handleMessageBatch`, letting its consumer poll again. */
  done(): void;
}

/**
 * Receives from one SQS queue through sqs-consumer consumers, pull style (see the top of this
 * file). Group order holds as with plain ReceiveMessage calls: SQS FIFO hands out nothing of a
 * group while a message of it is in flight, and buffered messages are in flight; a batch goes to
 * one caller whole, or, if it exceeds the caller's `max`, later messages of a group it hands out
 * are given back instead of going to another caller.
 */
export class SqsReceiver {
  private readonly slots: Slot[] = [];
  private readonly waiters: Waiter[] = [];
  /** Deliveries with unclaimed messages, oldest first. */
  private readonly ready: Delivery[] = [];
  private readonly owners = new Map<string, Delivery>();
  /** `giveBack` calls in progress, which `close` waits for before the client may go. */
  private readonly releasing = new Set<Promise<void>>();
  /** ReceiveMessage calls started so far, to tell which polls a waiting call has seen. */
  private polls = 0;
  /** The last waiting call was aborted: its caller is gone, so late batches go straight back. */
  private abandoned = false;
  private closed = false;
  private closing?: Promise<void>;

  constructor(private readonly options: SqsReceiverOptions) {
    addReceiveAttemptIds(options.client);
  }

  /**
   * Resolves with the oldest buffered batch, or the next one a consumer receives, within
   * `waitMs`; with `waitMs` 0, after one look at the queue (a poll sent after the call, or a long
   * poll coming back empty). Aborting `signal` resolves it with no messages at once; a batch
   * received for it afterwards is released.
   */
  receive(options: ReceiveOptions): Promise<ReceivedMessage[]> {
    if (this.closed) return Promise.reject(new Error('SQS transport is closed'));
    const { signal } = options;
    if (signal?.aborted) return Promise.resolve([]);
    this.abandoned = false;
    const max = Math.max(1, Math.floor(options.max));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        max,
        waitMs: options.waitMs,
        params: {
          batchSize: Math.min(MAX_BATCH, max),
          waitSeconds: toSeconds(options.waitMs, MAX_WAIT_SECONDS),
          visibilityMs: options.visibilityMs,
        },
        since: this.polls,
        resolve,
        reject,
        cleanup: () => {},
      };
      this.waiters.push(waiter);
      this.dispatch();
      if (!this.waiters.includes(waiter)) return;
      const timer =
        options.waitMs > 0 ? setTimeout(() => this.finish(waiter, []), options.waitMs) : undefined;
      const onAbort = () => this.abort(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      waiter.cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      this.demand();
    });
  }

  /** Messages acked, retried or released (successfully or not): their caller is done with them. */
  settled(receipts: string[]): void {
    for (const receipt of receipts) {
      const delivery = this.owners.get(receipt);
      if (!delivery) continue;
      this.owners.delete(receipt);
      delivery.pending.delete(receipt);
      if (delivery.pending.size === 0) {
        clearTimeout(delivery.timer);
        this.unready(delivery);
        delivery.done();
      }
    }
  }

  /** Messages whose visibility was extended: their consumer keeps waiting for them that long. */
  extended(receipts: string[], visibilityMs: number): void {
    const until = Date.now() + visibilityMs;
    for (const receipt of receipts) {
      const delivery = this.owners.get(receipt);
      if (delivery) delivery.expiresAt = Math.max(delivery.expiresAt, until);
    }
  }

  /**
   * Stops every consumer (aborting polls in progress: a message SQS hands to an aborted poll
   * reappears after its visibility timeout), releases buffered messages and waits for the
   * consumers to finish. Messages handed to callers stay theirs; they reappear when their
   * visibility runs out unless settled. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    for (const waiter of [...this.waiters]) this.finish(waiter, []);
    for (const { consumer } of this.slots) {
      if (consumer.status.isRunning) consumer.stop({ abort: true });
      else if (consumer.status.isPolling) consumer.abortController.abort();
    }
    await Promise.all([...this.ready].map((d) => this.giveBack(d, d.unclaimed)));
    for (const delivery of new Set(this.owners.values())) this.forget(delivery);
    await Promise.all(this.slots.map((slot) => this.stopped(slot)));
    await Promise.all(this.releasing);
    for (const slot of [...this.slots]) this.drop(slot);
  }

  /** Hands buffered batches to waiting calls, oldest to oldest. */
  private dispatch(): void {
    for (let d = this.ready[0], w = this.waiters[0]; d && w; d = this.ready[0], w = this.waiters[0]) {
      this.finish(w, this.claim(d, w.max));
    }
  }

  /**
   * Takes up to `max` messages of a delivery. Later messages of a group taken must not go to
   * another caller while it works on the earlier ones: they go back to the queue, where FIFO keeps
   * them behind the one in flight.
   */
  private claim(delivery: Delivery, max: number): ReceivedMessage[] {
    const taken = delivery.unclaimed.slice(0, max);
    const groups = new Set(taken.map((m) => m.group));
    const rest = delivery.unclaimed.slice(max);
    delivery.unclaimed = rest.filter((m) => !groups.has(m.group));
    if (delivery.unclaimed.length === 0) this.unready(delivery);
    void this.giveBack(
      delivery,
      rest.filter((m) => groups.has(m.group)),
    );
    return taken;
  }

  /** Releases unclaimed messages of a delivery (visibility 0) and settles them. */
  private giveBack(delivery: Delivery, messages: ReceivedMessage[]): Promise<void> {
    if (messages.length === 0) return Promise.resolve();
    const receipts = messages.map((m) => m.receipt);
    const back = new Set(receipts);
    delivery.unclaimed = delivery.unclaimed.filter((m) => !back.has(m.receipt));
    if (delivery.unclaimed.length === 0) this.unready(delivery);
    const released = this.options
      .release(receipts)
      .catch((err: unknown) =>
        this.options.log.warn(
          { err, queueUrl: this.options.queueUrl, messages: receipts.length },
          'releasing unclaimed SQS messages failed; they reappear when their visibility timeout ends',
        ),
      )
      .then(() => {
        this.releasing.delete(released);
        this.settled(receipts);
      });
    this.releasing.add(released);
    return released;
  }

  /** Settles a delivery's messages without touching SQS (they are or will be visible anyway). */
  private forget(delivery: Delivery): void {
    this.settled([...delivery.pending]);
  }

  private unready(delivery: Delivery): void {
    const i = this.ready.indexOf(delivery);
    if (i >= 0) this.ready.splice(i, 1);
  }

  private finish(waiter: Waiter, messages: ReceivedMessage[]): void {
    if (!this.unwait(waiter)) return;
    waiter.resolve(messages);
  }

  private fail(waiter: Waiter, err: unknown): void {
    if (!this.unwait(waiter)) return;
    waiter.reject(err);
  }

  private unwait(waiter: Waiter): boolean {
    const i = this.waiters.indexOf(waiter);
    if (i < 0) return false;
    this.waiters.splice(i, 1);
    waiter.cleanup();
    return true;
  }

  /** The caller gave up; if nobody else waits, buffered messages have no taker and go back. */
  private abort(waiter: Waiter): void {
    this.finish(waiter, []);
    if (this.waiters.length > 0) return;
    this.abandoned = true;
    for (const delivery of [...this.ready]) void this.giveBack(delivery, delivery.unclaimed);
  }

  /** Consumers that are running and free to poll. */
  private pollers(): number {
    return this.slots.filter((s) => s.consumer.status.isRunning && !s.holding).length;
  }

  /** Starts a consumer for each waiting call beyond the running, free ones. */
  private demand(): void {
    if (this.closed) return;
    for (let pollers = this.pollers(); pollers < this.waiters.length; pollers++) {
      this.start(this.waiters[pollers]!.params);
    }
  }

  /**
   * Stops a consumer after a poll or batch if no call needs it, or if it short polls (waitMs 0)
   * and the remaining calls wait longer, so it would spin; starts what they need instead.
   */
  private trim(slot: Slot): void {
    if (this.closed || !slot.consumer.status.isRunning) return;
    const surplus = this.pollers() > this.waiters.length;
    const spinning = slot.params.waitSeconds === 0 && !this.waiters.some((w) => w.waitMs === 0);
    if (!surplus && !spinning) return;
    slot.consumer.stop();
    this.demand();
  }

  /** Starts an idle consumer with these parameters, or a new one. */
  private start(params: PollParams): void {
    const idle = this.slots.filter((s) => !s.consumer.status.isRunning && !s.consumer.status.isPolling);
    let slot = idle.find((s) => s.params.waitSeconds === params.waitSeconds);
    if (slot) {
      slot.consumer.updateOption('batchSize', params.batchSize);
      slot.consumer.updateOption('visibilityTimeout', toSeconds(params.visibilityMs, MAX_VISIBILITY_SECONDS));
      slot.params = params;
    } else {
      // The long-poll time cannot be updated to 0: replace an idle consumer rather than reuse it.
      const stale = idle[0];
      if (stale) this.drop(stale);
      slot = this.create(params);
    }
    slot.consumer.start();
  }

  private create(params: PollParams): Slot {
    let slot!: Slot;
    const consumer = Consumer.create({
      queueUrl: this.options.queueUrl,
      sqs: this.options.client,
      batchSize: params.batchSize,
      waitTimeSeconds: params.waitSeconds,
      visibilityTimeout: toSeconds(params.visibilityMs, MAX_VISIBILITY_SECONDS),
      messageSystemAttributeNames: this.options.systemAttributes,
      messageAttributeNames: this.options.messageAttributes,
      // Deleting is `ack`'s job, after the work is durable downstream; the handler also returns [].
      shouldDeleteMessages: false,
      // Group order is kept by handing each response to one caller whole (see SqsReceiver).
      suppressFifoWarning: true,
      preReceiveMessageCallback: async () => {
        slot.poll = ++this.polls;
      },
      handleMessageBatch: (messages) => this.handle(slot, messages),
    });
    consumer.on('empty', () => this.onEmpty(slot));
    // Batch handler failures come as 'error' too; 'processing_error' is for single-message handlers.
    consumer.on('error', (err) => this.onError(slot, err));
    consumer.on('processing_error', (err) => this.onError(slot, err));
    slot = { consumer, params, poll: 0, holding: false };
    this.slots.push(slot);
    return slot;
  }

  private drop(slot: Slot): void {
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    slot.consumer.removeAllListeners();
  }

  /** `handleMessageBatch`: resolves once the batch is settled, acknowledging nothing. */
  private async handle(slot: Slot, messages: Message[]): Promise<Message[]> {
    const received = messages.map((m) => this.options.toReceived(m));
    slot.holding = true;
    try {
      await this.deliver(slot, received);
    } finally {
      slot.holding = false;
    }
    // Whoever settled the batch usually asks for more right away: let them before deciding.
    await nextTurn();
    this.trim(slot);
    return [];
  }

  /** Buffers a batch and hands it out; resolves once all of it is settled. */
  private deliver(slot: Slot, messages: ReceivedMessage[]): Promise<void> {
    return new Promise((done) => {
      const now = Date.now();
      const delivery: Delivery = {
        unclaimed: messages,
        pending: new Set(messages.map((m) => m.receipt)),
        receivedAt: now,
        visibilityMs: slot.params.visibilityMs,
        expiresAt: now + slot.params.visibilityMs,
        done,
      };
      for (const receipt of delivery.pending) this.owners.set(receipt, delivery);
      this.watch(delivery);
      if (this.closed || (this.abandoned && this.waiters.length === 0)) {
        void this.giveBack(delivery, messages);
        return;
      }
      this.ready.push(delivery);
      this.dispatch();
    });
  }

  /** Arms the delivery's timer for its next deadline: unclaimed messages, then expiry. */
  private watch(delivery: Delivery): void {
    const at = Math.min(claimBy(delivery), delivery.expiresAt);
    delivery.timer = setTimeout(() => this.expire(delivery), Math.max(0, at - Date.now()));
    delivery.timer.unref();
  }

  /**
   * Unclaimed messages go back before their visibility runs low. Once the visibility of the
   * claimed ones has run out, SQS redelivers them anyway: a caller that never settled them (a
   * failed ack and retry) must not keep the consumer waiting forever.
   */
  private expire(delivery: Delivery): void {
    const now = Date.now();
    if (now >= claimBy(delivery)) void this.giveBack(delivery, delivery.unclaimed);
    if (now >= delivery.expiresAt) this.forget(delivery);
    else if (delivery.pending.size > 0) this.watch(delivery);
  }

  /** A poll came back empty: calls that asked not to wait have had their look. */
  private onEmpty(slot: Slot): void {
    for (const waiter of [...this.waiters]) {
      const looked = slot.params.waitSeconds > 0 || slot.poll > waiter.since;
      if (waiter.waitMs === 0 && looked) this.finish(waiter, []);
    }
    this.trim(slot);
  }

  /** A poll (or the handler) failed: the longest-waiting call gets the error, else it is logged. */
  private onError(slot: Slot, err: Error): void {
    if (this.closed) {
      this.options.log.debug({ err, queueUrl: this.options.queueUrl }, 'SQS consumer stopped');
      return;
    }
    const waiter = this.waiters[0];
    if (waiter) this.fail(waiter, err);
    else this.options.log.warn({ err, queueUrl: this.options.queueUrl }, 'SQS consumer failed');
    this.trim(slot);
  }

  /** Waits for a stopped consumer's last poll and handler to end. */
  private async stopped(slot: Slot): Promise<void> {
    const deadline = Date.now() + CLOSE_WAIT_MS;
    while (slot.consumer.status.isPolling) {
      if (Date.now() > deadline) {
        this.options.log.warn({ queueUrl: this.options.queueUrl }, 'SQS consumer did not stop in time');
        return;
      }
      await sleep(CLOSE_CHECK_MS);
    }
  }
}

/** When a delivery's unclaimed messages go back to the queue (never, if there are none). */
function claimBy(delivery: Delivery): number {
  return delivery.unclaimed.length > 0
    ? delivery.receivedAt + delivery.visibilityMs * UNCLAIMED_SHARE
    : Infinity;
}

/** Milliseconds to whole seconds, rounded up so a wait or timeout is never shorter than asked. */
function toSeconds(ms: number, max: number): number {
  return Math.min(max, Math.max(0, Math.ceil(ms / 1000)));
}

const withAttemptIds = new WeakSet<SQSClient>();

/**
 * sqs-consumer sends ReceiveMessage without a ReceiveRequestAttemptId. With one, the SDK's retry of
 * a receive whose response was lost gets the same messages back instead of leaving them (and their
 * FIFO groups) locked until their visibility timeout ends. Added to the client once; an id set by
 * the caller (the DLQ reads) is kept, and standard queues ignore it.
 */
function addReceiveAttemptIds(client: SQSClient): void {
  if (withAttemptIds.has(client)) return;
  withAttemptIds.add(client);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'ReceiveMessageCommand') return next(args);
      const input = args.input as ReceiveMessageCommandInput;
      return next({
        ...args,
        input: { ...input, ReceiveRequestAttemptId: input.ReceiveRequestAttemptId ?? randomUUID() },
      });
    },
    { step: 'initialize', name: 'receiveRequestAttemptId' },
  );
}
