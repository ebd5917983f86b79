/**
 * The queue between stages. Two adapters implement it: `embedded` (PostgreSQL-backed, the
 * zero-setup default) and `sqs` (AWS SQS FIFO). The stage runner (`stages/runner.ts`) is the
 * only consumer; nothing stage-specific lives in an adapter.
 *
 * Semantics both adapters guarantee:
 * - `send` resolves only once the messages are durable.
 * - Messages of one group (the tenant) are delivered in send order, and none of a group is
 *   delivered while an earlier one of the same group is in flight.
 * - A received message stays invisible until `ack`, `retry`, or its visibility timeout expires.
 * - A message received more than `maxAttempts` times goes to the queue's dead-letter store.
 */

/** The hops of the pipeline; each has its own queue (and dead-letter queue). */
export const QUEUES = ['mask', 'encrypt', 'persist', 'index'] as const;
export type QueueName = (typeof QUEUES)[number];

export interface OutgoingMessage {
  /** Ordering and fairness key: the tenant id. */
  group: string;
  /** Derived from the content, so a retried send is stored once. */
  dedupId: string;
  /** Serialized batch (JSON). Adapters encrypt or rely on server-side encryption. */
  body: string;
}

export interface ReceivedMessage {
  /** Adapter-specific handle for ack/extend/retry. */
  receipt: string;
  group: string;
  body: string;
  /** 1 on first delivery. */
  attempt: number;
  /** When the message was first sent (ms since epoch), for queue-lag metrics. */
  sentAt: number;
}

export interface ReceiveOptions {
  max: number;
  /** How long to long-poll when the queue is empty, in ms. */
  waitMs: number;
  visibilityMs: number;
  signal?: AbortSignal;
}

export interface DeadLetter {
  id: string;
  queue: QueueName;
  group: string;
  body: string;
  attempts: number;
  sentAt: number;
  deadAt: number;
}

export interface Transport {
  readonly kind: 'embedded' | 'sqs';
  send(queue: QueueName, messages: OutgoingMessage[]): Promise<void>;
  receive(queue: QueueName, options: ReceiveOptions): Promise<ReceivedMessage[]>;
  /** Deletes messages whose work is durable downstream. */
  ack(queue: QueueName, messages: ReceivedMessage[]): Promise<void>;
  /** Keeps in-flight messages invisible for another `visibilityMs`. */
  extend(queue: QueueName, messages: ReceivedMessage[], visibilityMs: number): Promise<void>;
  /** Makes messages visible again after `delayMs` (a failed attempt). */
  retry(queue: QueueName, messages: ReceivedMessage[], delayMs: number): Promise<void>;
  /**
   * Hands messages back at once without counting this delivery as a failed attempt: used at
   * shutdown and for messages held behind a failed one of the same group. (SQS cannot un-count a
   * receive, so there it is a visibility reset.)
   */
  release(queue: QueueName, messages: ReceivedMessage[]): Promise<void>;
  /** Messages waiting in the queue (approximate for SQS). */
  depth(queue: QueueName): Promise<number>;
  /** Dead-letter inspection and redrive, for the `dlq` command. */
  listDeadLetters(queue: QueueName, limit: number): Promise<DeadLetter[]>;
  redrive(queue: QueueName, ids?: string[]): Promise<number>;
  close(): Promise<void>;
}
