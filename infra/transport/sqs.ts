// AWS SQS FIFO adapter. Receiving goes through sqs-consumer: `Transport` is pull-based so the one
// stage runner drives every adapter alike, and `SqsReceiver` (sqs-receiver.ts, one per hop queue,
// made on the first `receive`) turns sqs-consumer's push-style consumers into `receive` calls,
// holding each consumer until the runner has settled its batch. sqs-consumer never deletes:
// `ack` does, after the downstream hop or commit is durable, and `ack`, `retry` and `release`
// tell the receiver that messages are settled. Everything else (send, ack, visibility, depth,
// the dead-letter queue) is one SQS API call family per method, on the SDK directly.
import { createHash, randomUUID } from 'node:crypto';
import {
  type BatchResultErrorEntry,
  ChangeMessageVisibilityBatchCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  type Message,
  type MessageSystemAttributeName,
  type QueueAttributeName,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SetQueueAttributesCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { type Logger, pino } from 'pino';
import type { Config } from '../config.js';
import { SqsReceiver } from './sqs-receiver.js';
import {
  type DeadLetter,
  type OutgoingMessage,
  QUEUES,
  type QueueName,
  type ReceivedMessage,
  type ReceiveOptions,
  type Transport,
} from './types.js';

/**
 * Largest message SQS accepts, counting the body and message attributes: 1 MiB (1,048,576 bytes)
 * since August 2025, 256 KiB before. fauxqs 1.9.2 enforces the same. A queue's own
 * `MaximumMessageSize` can be lower (queues created before 2025); `send` checks that too.
 */
export const SQS_MAX_MESSAGE_BYTES = 1_048_576;

/** Bytes this adapter adds to every message as attributes (`sentAt`), with room to spare. */
const ATTRIBUTE_RESERVE_BYTES = 64;

/** Largest `OutgoingMessage.body` (UTF-8 bytes) that fits in one SQS message; split above it. */
export const SQS_MAX_BODY_BYTES = SQS_MAX_MESSAGE_BYTES - ATTRIBUTE_RESERVE_BYTES;

/** Send/Delete/ChangeMessageVisibility batches and ReceiveMessage take at most 10 entries. */
const MAX_BATCH_ENTRIES = 10;
/** SendMessageBatch: the sum of its messages' sizes may not exceed the single-message limit. */
const MAX_BATCH_BYTES = SQS_MAX_MESSAGE_BYTES;
/** Visibility timeouts range from 0 s to 12 h. */
const MAX_VISIBILITY_SECONDS = 43_200;
/** Longest retention SQS allows: 14 days. */
const RETENTION_SECONDS = 1_209_600;
/** MessageGroupId and MessageDeduplicationId: 1–128 alphanumeric or punctuation characters. */
const SQS_ID = /^[\x21-\x7e]{1,128}$/;

/** Entry-level failures of a batch call (the call itself is retried by the SDK). */
const ENTRY_ATTEMPTS = 4;
const ENTRY_BACKOFF_MS = 50;
/** DLQ inspection hides what it reads only this long, in case releasing them afterwards fails. */
const DLQ_PEEK_VISIBILITY_SECONDS = 5;
/** Time to copy a dead letter to its main queue and delete it before it could be read again. */
const REDRIVE_VISIBILITY_SECONDS = 30;
/** Long poll of DLQ reads: a short poll may miss messages, and the final empty read waits this. */
const DLQ_WAIT_SECONDS = 1;

const SENT_AT = 'sentAt';
const SYSTEM_ATTRIBUTES: MessageSystemAttributeName[] = [
  'ApproximateReceiveCount',
  'SentTimestamp',
  'MessageGroupId',
];
/** Failures meaning the message is no longer in flight, i.e. already visible again or gone. */
const NOT_IN_FLIGHT = new Set(['ReceiptHandleIsInvalid', 'MessageNotInflight']);
const notInFlight = (f: BatchResultErrorEntry) => NOT_IN_FLIGHT.has(f.Code ?? '');

/** One or more entries of an SQS batch call failed for good. */
export class SqsBatchError extends Error {
  override name = 'SqsBatchError';
  readonly failures: BatchResultErrorEntry[];

  constructor(action: string, failures: BatchResultErrorEntry[]) {
    const detail = failures.map((f) => `${f.Code ?? 'Error'}: ${f.Message ?? ''}`).join('; ');
    super(`SQS ${action}: ${failures.length} entr${failures.length === 1 ? 'y' : 'ies'} failed (${detail})`);
    this.failures = failures;
  }
}

interface Hop {
  url: string;
  dlqUrl: string;
  /** Per-message and per-batch byte limit of the main queue. */
  maxMessageBytes: number;
  /** Deliveries before SQS moves a message to the DLQ (the queue's RedrivePolicy). */
  maxReceiveCount: number;
}

interface Outgoing {
  group: string;
  dedupId: string;
  body: string;
  sentAt: number;
}

/**
 * Creates the SQS FIFO transport: one `<prefix>-<hop>.fifo` queue per hop, dead-lettering to
 * `<prefix>-<hop>-dlq.fifo` after `QUEUE_MAX_ATTEMPTS` deliveries. Queue URLs are resolved once
 * here; with `SQS_CREATE_QUEUES` the queues are created (or updated) first.
 *
 * Pass `options.client` to share a client; otherwise one is built from `SQS_REGION` and
 * `SQS_ENDPOINT` with the default credential chain, and `close()` destroys it. `options.log`
 * receives consumer errors no `receive` call is waiting for (default: a logger at `LOG_LEVEL`).
 */
export async function createSqsTransport(
  config: Config,
  options: { client?: SQSClient; log?: Logger } = {},
): Promise<Transport> {
  const client =
    options.client ??
    new SQSClient({
      region: config.SQS_REGION,
      ...(config.SQS_ENDPOINT ? { endpoint: config.SQS_ENDPOINT } : {}),
    });
  const owned = options.client === undefined;
  try {
    const hops = new Map<QueueName, Hop>();
    for (const queue of QUEUES) hops.set(queue, await resolveHop(client, config, queue));
    const log = options.log ?? pino({ level: config.LOG_LEVEL, base: { component: 'sqs-transport' } });
    return new SqsTransport(client, owned, hops, log);
  } catch (err) {
    if (owned) client.destroy();
    throw err;
  }
}

async function resolveHop(client: SQSClient, config: Config, queue: QueueName): Promise<Hop> {
  const name = `${config.SQS_QUEUE_PREFIX}-${queue}.fifo`;
  const dlqName = `${config.SQS_QUEUE_PREFIX}-${queue}-dlq.fifo`;
  let url: string;
  let dlqUrl: string;
  if (config.SQS_CREATE_QUEUES) {
    const common: Record<string, string> = {
      FifoQueue: 'true',
      ContentBasedDeduplication: 'false',
      SqsManagedSseEnabled: 'true',
      MessageRetentionPeriod: String(RETENTION_SECONDS),
      MaximumMessageSize: String(SQS_MAX_MESSAGE_BYTES),
    };
    dlqUrl = await ensureQueue(client, dlqName, common);
    const dlqArn = await queueArn(client, dlqUrl);
    url = await ensureQueue(client, name, {
      ...common,
      VisibilityTimeout: String(toSeconds(config.QUEUE_VISIBILITY_TIMEOUT_MS)),
      RedrivePolicy: JSON.stringify({
        deadLetterTargetArn: dlqArn,
        maxReceiveCount: config.QUEUE_MAX_ATTEMPTS,
      }),
    });
  } else {
    url = await queueUrl(client, name);
    dlqUrl = await queueUrl(client, dlqName);
  }
  // Queues made elsewhere (infrastructure code) must dead-letter into the DLQ we read, or
  // `listDeadLetters`/`redrive` would look at the wrong place and failures would loop forever.
  const attrs = await attributes(client, url, ['MaximumMessageSize', 'RedrivePolicy']);
  const policy = parseRedrivePolicy(attrs.RedrivePolicy);
  const dlqArn = await queueArn(client, dlqUrl);
  if (!policy || policy.deadLetterTargetArn !== dlqArn) {
    throw new Error(`SQS queue ${name} must have a RedrivePolicy targeting ${dlqArn}`);
  }
  const queueMax = Number(attrs.MaximumMessageSize);
  return {
    url,
    dlqUrl,
    maxMessageBytes:
      Number.isFinite(queueMax) && queueMax > 0
        ? Math.min(queueMax, SQS_MAX_MESSAGE_BYTES)
        : SQS_MAX_MESSAGE_BYTES,
    maxReceiveCount: policy.maxReceiveCount,
  };
}

/**
 * CreateQueue is idempotent only when every attribute matches; after a config change it fails with
 * QueueNameExists, and we update the attributes instead (FifoQueue cannot change).
 */
async function ensureQueue(client: SQSClient, name: string, attrs: Record<string, string>): Promise<string> {
  try {
    const res = await withoutRejectedSse(attrs, (a) =>
      client.send(new CreateQueueCommand({ QueueName: name, Attributes: a })),
    );
    if (!res.QueueUrl) throw new Error(`SQS CreateQueue ${name} returned no QueueUrl`);
    return res.QueueUrl;
  } catch (err) {
    if (!isSqsError(err, 'QueueNameExists')) throw err;
    const url = await queueUrl(client, name);
    const { FifoQueue: _fifo, ...settable } = attrs;
    await withoutRejectedSse(settable, (a) =>
      client.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: a })),
    );
    return url;
  }
}

/**
 * Emulators may not know `SqsManagedSseEnabled` (fauxqs 1.9.2 stores it on CreateQueue but rejects
 * it on SetQueueAttributes). Encryption at rest is AWS's job, so retry without it there.
 */
async function withoutRejectedSse<T>(
  attrs: Record<string, string>,
  call: (attrs: Record<string, string>) => Promise<T>,
): Promise<T> {
  try {
    return await call(attrs);
  } catch (err) {
    const rejected =
      (isSqsError(err, 'InvalidAttributeName') || isSqsError(err, 'InvalidAttributeValue')) &&
      /SqsManagedSseEnabled/.test((err as Error).message);
    if (!rejected) throw err;
    const { SqsManagedSseEnabled: _sse, ...rest } = attrs;
    return call(rest);
  }
}

/**
 * Matches an SQS error by shape name. The SDK names errors after the legacy query code that SQS
 * sends in a header; AWS's codes map to the modeled classes, but fauxqs sends codes such as
 * `AWS.SimpleQueueService.QueueNameExists` (AWS: `QueueAlreadyExists`), which leave a generic
 * error named after that code. The JSON body's `__type` names the shape in both cases.
 */
function isSqsError(err: unknown, shape: string): boolean {
  const e = err as { name?: unknown; __type?: unknown } | undefined;
  return e?.name === shape || (typeof e?.__type === 'string' && e.__type.endsWith(`#${shape}`));
}

async function queueUrl(client: SQSClient, name: string): Promise<string> {
  const res = await client.send(new GetQueueUrlCommand({ QueueName: name }));
  if (!res.QueueUrl) throw new Error(`SQS GetQueueUrl ${name} returned no QueueUrl`);
  return res.QueueUrl;
}

async function attributes(
  client: SQSClient,
  url: string,
  names: QueueAttributeName[],
): Promise<Partial<Record<QueueAttributeName, string>>> {
  const res = await client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: names }));
  return res.Attributes ?? {};
}

async function queueArn(client: SQSClient, url: string): Promise<string> {
  const arn = (await attributes(client, url, ['QueueArn'])).QueueArn;
  if (!arn) throw new Error(`SQS queue ${url} has no QueueArn`);
  return arn;
}

function parseRedrivePolicy(
  raw: string | undefined,
): { deadLetterTargetArn: string; maxReceiveCount: number } | undefined {
  if (!raw) return undefined;
  try {
    const policy = JSON.parse(raw) as { deadLetterTargetArn?: unknown; maxReceiveCount?: unknown };
    const maxReceiveCount = Number(policy.maxReceiveCount);
    if (typeof policy.deadLetterTargetArn !== 'string' || !(maxReceiveCount >= 1)) return undefined;
    return { deadLetterTargetArn: policy.deadLetterTargetArn, maxReceiveCount };
  } catch {
    return undefined;
  }
}

/** Milliseconds to whole seconds, rounded up so a delay is never shorter than asked. */
function toSeconds(ms: number, max = MAX_VISIBILITY_SECONDS): number {
  return Math.min(max, Math.max(0, Math.ceil(ms / 1000)));
}

/** Dedup ids outside the SQS charset or length are hashed; only equality matters for them. */
function dedupIdFor(id: string): string {
  return SQS_ID.test(id) ? id : `sha256:${createHash('sha256').update(id).digest('hex')}`;
}

/** Size as SQS counts it: body plus each attribute's name, data type and value. */
function messageBytes(m: Outgoing): number {
  return Buffer.byteLength(m.body, 'utf8') + SENT_AT.length + 'Number'.length + String(m.sentAt).length;
}

function sentAtOf(m: Message): number {
  const own = Number(m.MessageAttributes?.[SENT_AT]?.StringValue);
  return Number.isFinite(own) && own > 0 ? own : Number(m.Attributes?.SentTimestamp ?? 0);
}

/** A received message in the transport's form; `attempt` is SQS's receive count. */
function toReceived(m: Message): ReceivedMessage {
  return {
    receipt: required(m.ReceiptHandle, 'ReceiptHandle'),
    group: required(m.Attributes?.MessageGroupId, 'MessageGroupId'),
    body: m.Body ?? '',
    attempt: Number(m.Attributes?.ApproximateReceiveCount ?? 1),
    sentAt: sentAtOf(m),
  };
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs a batch call, retrying entries that failed on the server side with backoff. Sender faults
 * (invalid input, handle no longer valid) will not heal and throw at once unless `ignore` accepts them.
 */
async function settle<E extends { Id: string }>(
  action: string,
  entries: E[],
  call: (entries: E[]) => Promise<BatchResultErrorEntry[] | undefined>,
  ignore: (failure: BatchResultErrorEntry) => boolean = () => false,
): Promise<void> {
  let pending = entries;
  for (let attempt = 1; ; attempt++) {
    const failed = ((await call(pending)) ?? []).filter((f) => !ignore(f));
    if (failed.length === 0) return;
    const permanent = failed.filter((f) => f.SenderFault);
    if (permanent.length > 0) throw new SqsBatchError(action, permanent);
    if (attempt >= ENTRY_ATTEMPTS) throw new SqsBatchError(action, failed);
    const ids = new Set(failed.map((f) => f.Id));
    pending = pending.filter((e) => ids.has(e.Id));
    await sleep(ENTRY_BACKOFF_MS * 2 ** (attempt - 1) * (1 + Math.random()));
  }
}

class SqsTransport implements Transport {
  readonly kind = 'sqs' as const;
  private readonly receivers = new Map<QueueName, SqsReceiver>();
  private closing?: Promise<void>;

  constructor(
    private readonly client: SQSClient,
    private readonly owned: boolean,
    private readonly hops: Map<QueueName, Hop>,
    private readonly log: Logger,
  ) {}

  /**
   * Sends in order. Batches go out one after another (never in parallel) so a group's messages
   * keep their order across batches; a batch's failed entries are retried before the next batch.
   * A server-side failure of one entry while a later entry of the same group in that batch
   * succeeds can still reorder them; SQS offers no way to prevent that short of batches of one.
   */
  async send(queue: QueueName, messages: OutgoingMessage[]): Promise<void> {
    const now = Date.now();
    await this.sendTo(
      this.hop(queue),
      messages.map((m) => ({ group: m.group, dedupId: m.dedupId, body: m.body, sentAt: now })),
    );
  }

  private async sendTo(hop: Hop, messages: Outgoing[]): Promise<void> {
    // Validate everything first so a bad message fails the call before anything is sent.
    for (const m of messages) {
      if (!SQS_ID.test(m.group)) {
        throw new Error(
          `SQS MessageGroupId must be 1-128 ASCII letters, digits or punctuation: ${JSON.stringify(m.group)}`,
        );
      }
      const bytes = messageBytes(m);
      if (bytes > hop.maxMessageBytes) {
        throw new Error(
          `SQS message of ${bytes} bytes exceeds the queue's ${hop.maxMessageBytes}-byte limit; split it`,
        );
      }
    }
    let batch: Outgoing[] = [];
    let batchBytes = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      await this.sendBatch(hop.url, batch);
      batch = [];
      batchBytes = 0;
    };
    for (const m of messages) {
      const bytes = messageBytes(m);
      if (
        batch.length === MAX_BATCH_ENTRIES ||
        batchBytes + bytes > Math.min(MAX_BATCH_BYTES, hop.maxMessageBytes)
      ) {
        await flush();
      }
      batch.push(m);
      batchBytes += bytes;
    }
    await flush();
  }

  private async sendBatch(url: string, batch: Outgoing[]): Promise<void> {
    const entries = batch.map((m, i) => ({
      Id: String(i),
      MessageBody: m.body,
      MessageGroupId: m.group,
      MessageDeduplicationId: dedupIdFor(m.dedupId),
      MessageAttributes: { [SENT_AT]: { DataType: 'Number', StringValue: String(m.sentAt) } },
    }));
    await settle('SendMessageBatch', entries, async (pending) => {
      const res = await this.client.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: pending }));
      return res.Failed;
    });
  }

  /**
   * The next batch sqs-consumer receives from the hop's queue (long polling for up to `waitMs`,
   * in whole seconds, at most 20; `waitMs` 0 is one look), received with `visibilityMs`. When
   * `signal` aborts, resolves with no messages at once; a batch received for the aborted call is
   * released. Receive failures reject the call waiting longest.
   */
  async receive(queue: QueueName, options: ReceiveOptions): Promise<ReceivedMessage[]> {
    return this.receiver(queue).receive(options);
  }

  /** The hop's receiver, made on first use; its consumers start when a `receive` waits. */
  private receiver(queue: QueueName): SqsReceiver {
    let receiver = this.receivers.get(queue);
    if (receiver) return receiver;
    if (this.closing) throw new Error('SQS transport is closed');
    const url = this.hop(queue).url;
    receiver = new SqsReceiver({
      client: this.client,
      queueUrl: url,
      systemAttributes: SYSTEM_ATTRIBUTES,
      messageAttributes: [SENT_AT],
      toReceived,
      release: (receipts) => this.setVisibility(url, receipts, 0, notInFlight),
      log: this.log,
    });
    this.receivers.set(queue, receiver);
    return receiver;
  }

  /**
   * Runs `call` on the hop's queue URL and the messages' receipts, then tells the hop's receiver
   * the caller is done with these messages, whether the call worked or not.
   */
  private async settling(
    queue: QueueName,
    messages: ReceivedMessage[],
    call: (url: string, receipts: string[]) => Promise<void>,
  ): Promise<void> {
    const receipts = messages.map((m) => m.receipt);
    try {
      await call(this.hop(queue).url, receipts);
    } finally {
      this.receivers.get(queue)?.settled(receipts);
    }
  }

  /** ReceiveMessage on the SDK directly, for the dead-letter queues. */
  private async receiveFrom(
    url: string,
    max: number,
    waitSeconds: number,
    visibilitySeconds: number,
  ): Promise<Message[]> {
    const res = await this.client.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: Math.min(MAX_BATCH_ENTRIES, Math.max(1, Math.floor(max))),
        WaitTimeSeconds: waitSeconds,
        VisibilityTimeout: visibilitySeconds,
        MessageSystemAttributeNames: SYSTEM_ATTRIBUTES,
        MessageAttributeNames: [SENT_AT],
        // If the response is lost, the SDK's retry carries the same id and gets the same
        // messages back instead of leaving them (and their groups) locked until they time out.
        ReceiveRequestAttemptId: randomUUID(),
      }),
    );
    return res.Messages ?? [];
  }

  /** Deletes the messages; throws `SqsBatchError` if some could not be deleted. */
  async ack(queue: QueueName, messages: ReceivedMessage[]): Promise<void> {
    await this.settling(queue, messages, (url, receipts) => this.deleteFrom(url, receipts));
  }

  private async deleteFrom(url: string, receipts: string[]): Promise<void> {
    for (const part of chunks(receipts, MAX_BATCH_ENTRIES)) {
      const entries = part.map((receipt, i) => ({ Id: String(i), ReceiptHandle: receipt }));
      await settle('DeleteMessageBatch', entries, async (pending) => {
        const res = await this.client.send(
          new DeleteMessageBatchCommand({ QueueUrl: url, Entries: pending }),
        );
        return res.Failed;
      });
    }
  }

  /** Throws `SqsBatchError` for messages no longer in flight (their visibility already ran out). */
  async extend(queue: QueueName, messages: ReceivedMessage[], visibilityMs: number): Promise<void> {
    const receipts = messages.map((m) => m.receipt);
    await this.setVisibility(this.hop(queue).url, receipts, toSeconds(visibilityMs));
    this.receivers.get(queue)?.extended(receipts, visibilityMs);
  }

  /** Visible again after `delayMs`, rounded up to whole seconds; `0` releases them at once. */
  async retry(queue: QueueName, messages: ReceivedMessage[], delayMs: number): Promise<void> {
    await this.settling(queue, messages, (url, receipts) =>
      this.setVisibility(url, receipts, toSeconds(delayMs)),
    );
  }

  private async setVisibility(
    url: string,
    receipts: string[],
    seconds: number,
    ignore?: (failure: BatchResultErrorEntry) => boolean,
  ): Promise<void> {
    for (const part of chunks(receipts, MAX_BATCH_ENTRIES)) {
      const entries = part.map((receipt, i) => ({
        Id: String(i),
        ReceiptHandle: receipt,
        VisibilityTimeout: seconds,
      }));
      await settle(
        'ChangeMessageVisibilityBatch',
        entries,
        async (pending) => {
          const res = await this.client.send(
            new ChangeMessageVisibilityBatchCommand({ QueueUrl: url, Entries: pending }),
          );
          return res.Failed;
        },
        ignore,
      );
    }
  }

  /**
   * Visible again at once. SQS cannot take back the receive, so `attempt` still counts it (and
   * it still counts toward the redrive policy's maxReceiveCount). Messages whose visibility
   * already ran out are visible anyway and are not an error.
   */
  async release(queue: QueueName, messages: ReceivedMessage[]): Promise<void> {
    await this.settling(queue, messages, (url, receipts) =>
      this.setVisibility(url, receipts, 0, notInFlight),
    );
  }

  /** Visible plus in-flight messages, as SQS approximates them. */
  async depth(queue: QueueName): Promise<number> {
    const attrs = await attributes(this.client, this.hop(queue).url, [
      'ApproximateNumberOfMessages',
      'ApproximateNumberOfMessagesNotVisible',
    ]);
    return (
      Number(attrs.ApproximateNumberOfMessages ?? 0) +
      Number(attrs.ApproximateNumberOfMessagesNotVisible ?? 0)
    );
  }

  /**
   * Reads dead letters without consuming them: they are received, then made visible again.
   * A FIFO DLQ hides the rest of a group while its first message is held, so this sees the head
   * of each group only (fauxqs: exactly one per group; AWS: up to a receive's worth).
   *
   * `attempts` is the redrive policy's maxReceiveCount, the deliveries that preceded the move: the
   * message's own receive count also counts the move and every inspection. `sentAt` is the first
   * send (our `sentAt` attribute). `deadAt` is the DLQ's SentTimestamp: AWS resets the enqueue
   * time of FIFO messages moved to a DLQ, while fauxqs keeps the original, so there it equals sentAt.
   */
  async listDeadLetters(queue: QueueName, limit: number): Promise<DeadLetter[]> {
    const hop = this.hop(queue);
    const seen = new Map<string, Message>();
    try {
      while (seen.size < limit) {
        const batch = await this.receiveFrom(
          hop.dlqUrl,
          limit - seen.size,
          DLQ_WAIT_SECONDS,
          DLQ_PEEK_VISIBILITY_SECONDS,
        );
        let fresh = 0;
        for (const m of batch) {
          const id = required(m.MessageId, 'MessageId');
          if (!seen.has(id)) fresh++;
          seen.set(id, m); // the newest receipt handle is the valid one
        }
        if (fresh === 0) break;
      }
    } finally {
      await this.unhold(hop.dlqUrl, [...seen.values()]);
    }
    return [...seen.values()].slice(0, limit).map((m) => {
      const sentAt = sentAtOf(m);
      return {
        id: required(m.MessageId, 'MessageId'),
        queue,
        group: required(m.Attributes?.MessageGroupId, 'MessageGroupId'),
        body: m.Body ?? '',
        attempts: hop.maxReceiveCount,
        sentAt,
        deadAt: Math.max(sentAt, Number(m.Attributes?.SentTimestamp ?? 0)),
      };
    });
  }

  /**
   * Moves dead letters (all, or those whose id is in `ids`) back to the main queue: each is sent
   * with its group, body and original `sentAt` under dedup id `redrive-<id>` (so a redrive
   * interrupted between send and delete does not duplicate it), then deleted from the DLQ.
   * With `ids`, a skipped message at the head of a group hides the rest of that group (FIFO).
   */
  async redrive(queue: QueueName, ids?: string[]): Promise<number> {
    const hop = this.hop(queue);
    const wanted = ids ? new Set(ids) : undefined;
    const skipped = new Map<string, Message>();
    let moved = 0;
    try {
      while (!wanted || wanted.size > 0) {
        const batch = await this.receiveFrom(
          hop.dlqUrl,
          MAX_BATCH_ENTRIES,
          DLQ_WAIT_SECONDS,
          REDRIVE_VISIBILITY_SECONDS,
        );
        if (batch.length === 0) break;
        const move: Message[] = [];
        let progress = false;
        for (const m of batch) {
          const id = required(m.MessageId, 'MessageId');
          if (!wanted || wanted.has(id)) {
            move.push(m);
            wanted?.delete(id);
            progress = true;
          } else {
            if (!skipped.has(id)) progress = true;
            skipped.set(id, m);
          }
        }
        if (move.length > 0) {
          await this.sendTo(
            hop,
            move.map((m) => ({
              group: required(m.Attributes?.MessageGroupId, 'MessageGroupId'),
              dedupId: `redrive-${m.MessageId}`,
              body: m.Body ?? '',
              sentAt: sentAtOf(m),
            })),
          );
          await this.deleteFrom(
            hop.dlqUrl,
            move.map((m) => required(m.ReceiptHandle, 'ReceiptHandle')),
          );
          moved += move.length;
        }
        if (!progress) break;
      }
    } finally {
      await this.unhold(hop.dlqUrl, [...skipped.values()]);
    }
    return moved;
  }

  /**
   * Makes held DLQ messages visible again; ones whose hold already ran out need nothing. Best
   * effort: if it fails they reappear when their short hold expires, and the caller's result or
   * error matters more.
   */
  private async unhold(url: string, messages: Message[]): Promise<void> {
    const receipts = messages.flatMap((m) => (m.ReceiptHandle ? [m.ReceiptHandle] : []));
    await this.setVisibility(url, receipts, 0, notInFlight).catch(() => {});
  }

  /**
   * Stops every hop's consumers and waits for them (buffered messages are released first), then
   * destroys the client if it is ours. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.receivers.values()].map((r) => r.close()));
      if (this.owned) this.client.destroy();
    })();
    return this.closing;
  }

  private hop(queue: QueueName): Hop {
    const hop = this.hops.get(queue);
    if (!hop) throw new Error(`unknown queue ${JSON.stringify(queue)}`);
    return hop;
  }
}

function required<T>(value: T | undefined, field: string): T {
  if (value === undefined) throw new Error(`SQS response is missing ${field}`);
  return value;
}
