import { compress, decompress } from '@mongodb-js/zstd';
import { open, seal } from '../crypto/aead.js';

/** The first four bytes of every zstd frame (RFC 8878). A JSON body starts with `{` instead. */
const ZSTD_MAGIC = 0xfd2fb528;

/**
 * How the embedded queue stores a message body: zstd-compressed, then sealed with AES-256-GCM
 * (compression must come first: ciphertext does not compress, and PostgreSQL's own TOAST
 * compression gives up on it).
 *
 * Why compress at all: a 500-event request is a ~250 kB body, and writing it (TOAST chunks, their
 * index, the WAL and its flush) was the largest single cost of an acknowledgement: a 250 kB INSERT
 * took p50 5.3 ms alone on an idle server, a 25 kB one 1.1 ms. The bench's events compress ~9×
 * (zstd, ~0.9 ms per 250 kB, on libuv's thread pool, not the event loop).
 *
 * The stored length reveals the compressed size of a tenant's batch to whoever can read the
 * queue table; that reader already sees every message's size and timing, and a message only ever
 * holds one tenant's events, so no tenant's content is compressed beside another's.
 */
export async function sealBody(key: Buffer, body: Buffer, aad: Buffer): Promise<Buffer> {
  return seal(key, await compress(body), aad);
}

/**
 * Inverse of `sealBody`. A plaintext that is not a zstd frame is a body stored before bodies were
 * compressed, returned as it is, so a queue left over from an older version still drains.
 */
export async function openBody(key: Buffer, sealed: Uint8Array, aad: Buffer): Promise<string> {
  const plain = open(key, sealed, aad);
  const framed = plain.length >= 4 && plain.readUInt32LE(0) === ZSTD_MAGIC;
  return (framed ? await decompress(plain) : plain).toString();
}
