import { MAX_BODY_BYTES, type SerializedBatch, type SerializedEvent, serializedMessages } from './split.js';
import type { Transport } from './types.js';

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * Group commit into the `mask` queue, for the ingest edge and self-audit events (`ctx.enqueue`). Requests that arrive while earlier sends are in flight are
 * merged per tenant into one queue message and sent together, so a thousand single-event POSTs
 * cost a handful of queue writes instead of a thousand. At low load a request is sent at once
 * (no added latency). Every request resolves only after the send that carries it is durable;
 * if that send fails, every request in it fails and none was acknowledged.
 */
export class GroupCommit {
  private pending = new Map<string, SerializedEvent[]>();
  private waiters: Waiter[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly transport: Transport,
    /** Concurrent sends; more overlap queue round-trips, fewer make bigger batches. */
    private readonly maxInFlight = 4,
  ) {}

  /**
   * Resolves when every event of `batches` is durably in the `mask` queue. Each event's JSON must
   * be a `StagedEvent` (the mask stage validates it).
   */
  enqueue(batches: SerializedBatch[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      for (const b of batches) {
        const list = this.pending.get(b.tenant_id);
        if (list) list.push(...b.events);
        else this.pending.set(b.tenant_id, [...b.events]);
      }
      this.waiters.push({ resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight || this.waiters.length === 0) return;
    this.scheduled = true;
    // setImmediate gathers everything that arrived in the same event-loop turn.
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.waiters.length === 0 || this.inFlight >= this.maxInFlight) return;
    const pending = this.pending;
    const waiters = this.waiters;
    this.pending = new Map();
    this.waiters = [];
    this.inFlight++;
    const maxBytes = MAX_BODY_BYTES[this.transport.kind];
    Promise.resolve()
      .then(() => {
        const messages = [...pending].flatMap(([tenant_id, events]) =>
          serializedMessages('mask', { tenant_id, events }, maxBytes),
        );
        return this.transport.send('mask', messages);
      })
      .then(
        () => {
          for (const w of waiters) w.resolve();
        },
        (err) => {
          for (const w of waiters) w.reject(err);
        },
      )
      .finally(() => {
        this.inFlight--;
        this.schedule();
      });
  }
}
