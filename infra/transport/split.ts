import { createHash } from 'node:crypto';
import type { Batch } from '../schema/batch.js';
import { fitsUtf8 } from '../utf8.js';
import type { OutgoingMessage, QueueName, Transport } from './types.js';

/**
 * Largest message body per adapter. SQS FIFO takes 1 MiB per message (since 2025; it was 256 KiB);
 * we keep headroom for attributes. The embedded queue could take more, but a message is parsed in
 * one synchronous step (a 2 MiB body blocks the event loop for tens of ms, holding up requests
 * served by the same process), and a receive takes many messages anyway (up to 8 MiB), so its
 * messages stay small.
 */
export const MAX_BODY_BYTES: Record<Transport['kind'], number> = {
  embedded: 512 * 1024,
  sqs: 1024 * 1024 - 16 * 1024,
};

// Ingest caps an event at LIMITS.eventBytes (64 KiB), far below every adapter's message size, so
// a single validated event always fits one message and splitting never fails after a 2xx.
/** Content-derived deduplication id: the same batch sent twice is stored once. */
export function dedupIdFor(queue: QueueName, batch: Batch<{ id: string }>): string {
  const h = createHash('sha256').update(queue).update('\u0000').update(batch.tenant_id);
  for (const e of batch.events) h.update('\u0000').update(e.id);
  return h.digest('base64url');
}

export class EventTooLargeError extends Error {
  override name = 'EventTooLargeError';
}

/**
 * Serializes a batch into one or more messages no larger than `maxBytes`, splitting the event
 * list in order. Throws `EventTooLargeError` if a single event cannot fit.
 */
export function toMessages<E extends { id: string }>(
  queue: QueueName,
  batch: Batch<E>,
  maxBytes: number,
): OutgoingMessage[] {
  const body = JSON.stringify(batch);
  if (fitsUtf8(body, maxBytes)) {
    return [{ group: batch.tenant_id, dedupId: dedupIdFor(queue, batch), body }];
  }
  if (batch.events.length === 1) {
    throw new EventTooLargeError(`event ${batch.events[0]!.id} does not fit in one queue message`);
  }
  const mid = Math.ceil(batch.events.length / 2);
  return [
    ...toMessages(queue, { ...batch, events: batch.events.slice(0, mid) }, maxBytes),
    ...toMessages(queue, { ...batch, events: batch.events.slice(mid) }, maxBytes),
  ];
}
