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
export function dedupIdFor(queue: QueueName, tenantId: string, ids: readonly string[]): string {
  const h = createHash('sha256').update(queue).update('\u0000').update(tenantId);
  for (const id of ids) h.update('\u0000').update(id);
  return h.digest('base64url');
}

export class EventTooLargeError extends Error {
  override name = 'EventTooLargeError';
}

/** An event already serialized as JSON, with its id (for the deduplication id). */
export interface SerializedEvent {
  id: string;
  json: string;
}

/** One tenant's serialized events on their way into a queue (see `serializedMessages`). */
export interface SerializedBatch {
  tenant_id: string;
  events: SerializedEvent[];
}

/** Serializes each event on its own, for `serializedMessages`. */
export function serializeEvents<E extends { id: string }>(events: readonly E[]): SerializedEvent[] {
  return events.map((e) => ({ id: e.id, json: JSON.stringify(e) }));
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
  return split(queue, batch.tenant_id, batch.events, maxBytes, (events) =>
    JSON.stringify({ ...batch, events }),
  );
}

/**
 * `toMessages` for events serialized beforehand (the ingest edge has each event's JSON from
 * validation): the body is the same `Batch` JSON, joined from the pieces instead of serialized
 * again.
 */
export function serializedMessages(
  queue: QueueName,
  batch: SerializedBatch,
  maxBytes: number,
): OutgoingMessage[] {
  const head = `{"v":1,"tenant_id":${JSON.stringify(batch.tenant_id)},"events":[`;
  return split(queue, batch.tenant_id, batch.events, maxBytes, (events) => {
    const parts = events.map((e) => e.json);
    parts[0] = head + parts[0];
    parts[parts.length - 1] += ']}';
    return parts.join(',');
  });
}

/** Renders `events` as one body, or halves them (in order) until each part fits `maxBytes`. */
function split<E extends { id: string }>(
  queue: QueueName,
  tenantId: string,
  events: readonly E[],
  maxBytes: number,
  render: (events: readonly E[]) => string,
): OutgoingMessage[] {
  const body = render(events);
  if (fitsUtf8(body, maxBytes)) {
    const ids = events.map((e) => e.id);
    return [{ group: tenantId, dedupId: dedupIdFor(queue, tenantId, ids), body }];
  }
  if (events.length === 1) {
    throw new EventTooLargeError(`event ${events[0]!.id} does not fit in one queue message`);
  }
  const mid = Math.ceil(events.length / 2);
  return [
    ...split(queue, tenantId, events.slice(0, mid), maxBytes, render),
    ...split(queue, tenantId, events.slice(mid), maxBytes, render),
  ];
}
