import { brotliCompressSync, brotliDecompressSync, constants } from 'node:zlib';
import { open, seal } from '../crypto/aead.js';

/**
 * First plaintext byte of a compressed body. A body stored before bodies were compressed is a
 * JSON object, so its first byte is `{`.
 */
const BROTLI = 0x01;

/**
 * How the embedded queue stores a message body: compressed, then sealed with AES-256-GCM
 * (compression must come first: ciphertext does not compress, and PostgreSQL's own TOAST
 * compression gives up on it).
 *
 * Why compress: a 500-event request is a ~250 kB body, and writing it (TOAST chunks, their index,
 * the WAL and its flush) was the largest single cost of an acknowledgement: a 250 kB INSERT took
 * p50 5.3 ms alone on an idle server, a 25 kB one 1.1 ms.
 *
 * Why brotli at quality 1, synchronously: on a 500-event bench body it takes ~0.5 ms and
 * compresses ~8× (zlib's deflate at level 1: ~0.7 ms, 7.9×; zstd ~0.9 ms, 8.8×), with Node's own
 * zlib. zstd from npm only runs on libuv's thread pool: more CPU, one more thread to schedule and
 * one more event-loop turn per send, for no gain in the ingest latency measured under load.
 *
 * The stored length reveals the compressed size of a tenant's batch to whoever can read the
 * queue table; that reader already sees every message's size and timing, and a message only ever
 * holds one tenant's events, so no tenant's content is compressed beside another's.
 */
export function sealBody(key: Buffer, body: Buffer, aad: Buffer): Buffer {
  const compressed = brotliCompressSync(body, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 1,
      [constants.BROTLI_PARAM_SIZE_HINT]: body.length,
    },
  });
  return seal(key, Buffer.concat([Buffer.of(BROTLI), compressed]), aad);
}

/**
 * Inverse of `sealBody`. A plaintext without the compression marker is a body stored before
 * bodies were compressed, returned as it is, so a queue left over from an older version drains.
 */
export function openBody(key: Buffer, sealed: Uint8Array, aad: Buffer): string {
  const plain = open(key, sealed, aad);
  if (plain[0] !== BROTLI) return plain.toString();
  return brotliDecompressSync(plain.subarray(1)).toString();
}
