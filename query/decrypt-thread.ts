/**
 * Entry of a decrypt thread (see `DecryptThreads`): opens the sealed values of each request and
 * answers with their plaintexts end to end in one transferred buffer. Keeps nothing between
 * requests: every request carries the data keys it needs.
 */
import { parentPort } from 'node:worker_threads';
import { open } from '../infra/crypto/aead.js';
import type { Opened, OpenRequest } from './decrypt-threads.js';

function answer(req: OpenRequest): Opened {
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

parentPort?.on('message', (req: OpenRequest) => {
  let reply: Opened;
  try {
    reply = answer(req);
  } catch (err) {
    parentPort?.postMessage({ id: req.id, error: err instanceof Error ? err.message : String(err) });
    return;
  }
  parentPort?.postMessage(reply, [reply.data.buffer, reply.ends.buffer]);
});
