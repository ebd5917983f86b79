import { Worker } from 'node:worker_threads';
import { open, sealAadText } from '../infra/crypto/aead.js';
import { workerBootstrap } from '../infra/worker-bootstrap.js';

/** One sealed value to open: the ciphertext, its data key and the event it belongs to (the AAD). */
export interface SealedItem {
  sealed: Buffer;
  key: Buffer;
  tenantId: string;
  eventId: string;
}

/**
 * A request to a decrypt thread. Only typed arrays, all transferred: `data` holds each item's AAD
 * then its ciphertext, item after item, and `ends` the offsets where each AAD and each ciphertext
 * ends (two per item). Strings in the message cost more to clone than the decryption.
 */
export interface OpenRequest {
  id: number;
  keys: Uint8Array<ArrayBuffer>[];
  keyIndex: Uint16Array<ArrayBuffer>;
  data: Uint8Array<ArrayBuffer>;
  ends: Uint32Array<ArrayBuffer>;
}

/** The plaintexts end to end, `ends[i]` where item i's ends. */
export interface Opened {
  id: number;
  data: Uint8Array<ArrayBuffer>;
  ends: Uint32Array<ArrayBuffer>;
}

/** A decrypt thread's answer: the plaintexts, or why the request failed. */
export type OpenReply = Opened | { id: number; error: string };

interface Pending {
  resolve(opened: Opened): void;
  reject(err: Error): void;
}

/** A thread and the requests it has not answered yet. */
interface Thread {
  worker: Worker;
  pending: Map<number, Pending>;
}

/**
 * Opens sealed values on `size` worker threads, so an export's AES-GCM (a quarter of the query
 * process's busy time when done inline, one `createDecipheriv` per row) runs beside the event
 * loop that parses and formats the rows. Threads start on first use and are unref'd (an idle
 * pool never keeps the process up); one that dies fails its pending requests and is replaced
 * on the next. Requests go round robin; each resolves with its plaintexts in item order.
 */
export class DecryptThreads {
  readonly #threads: (Thread | undefined)[];
  #next = 0;
  #ids = 0;
  #closed = false;

  constructor(size: number) {
    this.#threads = new Array<Thread | undefined>(size).fill(undefined);
  }

  /** Resolves with the plaintexts of `items`, in item order. */
  async open(items: SealedItem[]): Promise<string[]> {
    const opened = await this.openRequest(toRequest(this.#ids++, items));
    return texts(opened.data, opened.ends);
  }

  /**
   * Opens a packed request (see `OpenRequest`; its buffers are transferred, so it must not be
   * used after) on the next thread. Its `id` is replaced with this pool's own.
   */
  openRequest(request: OpenRequest): Promise<Opened> {
    if (this.#closed) return Promise.reject(new Error('decrypt threads closed'));
    const slot = this.#next;
    this.#next = (slot + 1) % this.#threads.length;
    const thread = this.#threads[slot] ?? this.#start(slot);
    request.id = this.#ids++;
    return new Promise((resolve, reject) => {
      thread.pending.set(request.id, { resolve, reject });
      thread.worker.postMessage(request, [
        request.data.buffer,
        request.ends.buffer,
        request.keyIndex.buffer,
        ...request.keys.map((k) => k.buffer),
      ]);
    });
  }

  /** Ends the threads; requests still pending fail. */
  async close(): Promise<void> {
    this.#closed = true;
    const threads = this.#threads.filter((t) => t !== undefined);
    this.#threads.fill(undefined);
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }

  #start(slot: number): Thread {
    const worker = new Worker(workerBootstrap(import.meta.url, 'decrypt-thread'), {
      eval: true,
      // Small heaps: a request's buffers are transferred, and the plaintexts live only until sent.
      resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 32 },
    });
    worker.unref();
    const thread: Thread = { worker, pending: new Map() };
    this.#threads[slot] = thread;
    const fail = (err: Error) => {
      if (this.#threads[slot] === thread) this.#threads[slot] = undefined;
      for (const p of thread.pending.values()) p.reject(err);
      thread.pending.clear();
    };
    worker.on('message', (reply: OpenReply) => {
      const p = thread.pending.get(reply.id);
      if (!p) return;
      thread.pending.delete(reply.id);
      if ('error' in reply) p.reject(new Error(reply.error));
      else p.resolve(reply);
    });
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`decrypt thread exited (code ${code})`)));
    return thread;
  }
}

function toRequest(id: number, items: SealedItem[]): OpenRequest {
  const keys: Uint8Array<ArrayBuffer>[] = [];
  const known: Buffer[] = [];
  const keyIndex = new Uint16Array(items.length);
  const aads: string[] = new Array(items.length);
  let size = 0;
  let lastKey: Buffer | undefined;
  let lastIndex = 0;
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    if (item.key !== lastKey) {
      lastKey = item.key;
      lastIndex = known.indexOf(item.key);
      if (lastIndex < 0) {
        lastIndex = known.push(item.key) - 1;
        keys.push(new Uint8Array(item.key)); // a copy: a view would clone the pool slab around it
      }
    }
    keyIndex[i] = lastIndex;
    const aad = sealAadText(item.tenantId, item.eventId);
    aads[i] = aad;
    size += Buffer.byteLength(aad) + item.sealed.length;
  }
  // Its own ArrayBuffer (never a slice of Node's shared pool), so it can be transferred.
  const data = Buffer.from(new ArrayBuffer(size));
  const ends = new Uint32Array(items.length * 2);
  let at = 0;
  for (let i = 0; i < items.length; i++) {
    at += data.write(aads[i]!, at);
    ends[2 * i] = at;
    at += items[i]!.sealed.copy(data, at);
    ends[2 * i + 1] = at;
  }
  return { id, keys, keyIndex, data: new Uint8Array(data.buffer), ends };
}

function texts(data: Uint8Array, ends: Uint32Array): string[] {
  const buffer = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out: string[] = new Array(ends.length);
  let start = 0;
  for (let i = 0; i < ends.length; i++) {
    out[i] = buffer.toString('utf8', start, ends[i]);
    start = ends[i]!;
  }
  return out;
}

/**
 * Opens every item of `req` (what a decrypt thread does with a request; also used inline) and
 * returns the plaintexts end to end in one buffer of their own. Throws if any does not
 * authenticate.
 */
export function openPacked(req: OpenRequest): Opened {
  const keys = req.keys.map((k) => Buffer.from(k.buffer, k.byteOffset, k.byteLength));
  const data = Buffer.from(req.data.buffer, req.data.byteOffset, req.data.byteLength);
  const count = req.keyIndex.length;
  const parts: Buffer[] = new Array(count);
  const ends = new Uint32Array(count);
  let start = 0;
  let total = 0;
  for (let i = 0; i < count; i++) {
    const aadEnd = req.ends[2 * i]!;
    const end = req.ends[2 * i + 1]!;
    const plaintext = open(keys[req.keyIndex[i]!]!, data.subarray(aadEnd, end), data.subarray(start, aadEnd));
    parts[i] = plaintext;
    total += plaintext.length;
    ends[i] = total;
    start = end;
  }
  // Its own ArrayBuffer (never a slice of Node's shared pool), so it can be transferred.
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return { id: req.id, data: out, ends };
}
