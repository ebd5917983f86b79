/**
 * Entry of a decrypt thread (see `DecryptThreads`): opens the sealed values of each request and
 * answers with their plaintexts end to end in one transferred buffer. Keeps nothing between
 * requests: every request carries the data keys it needs.
 */
import { parentPort } from 'node:worker_threads';
import { type Opened, type OpenRequest, openPacked } from './decrypt-threads.js';

parentPort?.on('message', (req: OpenRequest) => {
  let reply: Opened;
  try {
    reply = openPacked(req);
  } catch (err) {
    parentPort?.postMessage({ id: req.id, error: err instanceof Error ? err.message : String(err) });
    return;
  }
  parentPort?.postMessage(reply, [reply.data.buffer, reply.ends.buffer]);
});
