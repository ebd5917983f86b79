import { PassThrough, type Readable } from 'node:stream';
import type { ReadScope } from '../infra/auth/access.js';
import type { Context } from '../infra/context.js';
import { ByteChunks } from './byte-chunks.js';
import type { SortMode } from './cursor.js';
import { type EventRow, sealedOpener } from './decode.js';
import type { DecryptThreads } from './decrypt-threads.js';
import { copyExport } from './export-copy.js';
import type { ExportFormat } from './export-format.js';
import { exportRows } from './export-rows.js';
import { keyedFeed, threadedFeed } from './keyed-feed.js';
import { type TenantTx, withTenantScope } from './scoped.js';
import { buildWhere, type ResolvedFilters, type ScopedWhere } from './where.js';

/**
 * Rows per FETCH. Memory is bounded by the formatted text of two chunks (the one being written and
 * the next one being read and formatted, see `exportEvents`) plus the socket and stream buffers,
 * whatever the export's size. Much smaller chunks pay a round trip for few rows; larger ones
 * measured no faster and hold more.
 */
export const EXPORT_CHUNK_ROWS = 1000;

/** Size of the buffers the formatted rows are written into (see `ByteChunks`). */
const OUTPUT_BUFFER_BYTES = 64 * 1024;

/** The client went away; the export stops and its transaction ends. */
class ExportAborted extends Error {
  override name = 'ExportAborted';
}

/** Writes `chunk`, waiting for 'drain' when the stream's buffer is full (backpressure). */
function write(stream: PassThrough, chunk: string | Buffer): Promise<void> {
  if (stream.destroyed) return Promise.reject(new ExportAborted('client disconnected'));
  if (chunk === '' || stream.write(chunk)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      stream.off('close', onClose);
      resolve();
    };
    const onClose = () => {
      stream.off('drain', onDrain);
      reject(new ExportAborted('client disconnected'));
    };
    stream.once('drain', onDrain);
    stream.once('close', onClose);
  });
}

/**
 * Streams every event matching `filters` in `scope`, formatted, inside one scoped read-only
 * transaction (see `withTenantScope`), read under row-level security and written with
 * backpressure, so the database is read only as fast as the client downloads:
 * - a clause whose conditions all keep their indexes under RLS (`where.leakproof`) is read by
 *   binary COPY and decoded, decrypted and formatted on `threads` (see `copyExport`);
 * - any other (full-text, metadata) by a cursor over keys and a read of their rows per chunk
 *   (see `cursorExport`).
 *
 * Resolves with the body once the first chunk is in hand: a failure before that rejects (and
 * becomes a normal JSON error response); a failure after it destroys the body, so the client sees
 * a broken transfer and never a silently truncated file. The transaction (and its connection)
 * lasts until the body ends or the client disconnects.
 */
export async function exportEvents(
  ctx: Context,
  scope: ReadScope,
  filters: ResolvedFilters,
  mode: SortMode,
  format: ExportFormat,
  threads?: DecryptThreads,
): Promise<Readable> {
  const body = new PassThrough({ highWaterMark: 64 * 1024 });
  let streaming = false;
  let ready!: () => void;
  let failed!: (err: unknown) => void;
  const started = new Promise<void>((resolve, reject) => {
    ready = resolve;
    failed = reject;
  });
  withTenantScope(ctx, scope, async (tx) => {
    const where = buildWhere(scope, filters);
    const start = async () => {
      streaming = true;
      ready();
      await write(body, format.head);
    };
    let rows: number;
    if (where.leakproof) {
      const out = new ByteChunks(OUTPUT_BUFFER_BYTES);
      // Nothing is sent (and the response not started) before the first formatted row.
      const written = async () => {
        const buffers = out.take();
        if (buffers.length > 0 && !streaming) await start();
        for (const buffer of buffers) await write(body, buffer);
      };
      rows = await copyExport(ctx, tx, where, mode, format.name, threads, out, written);
      if (!streaming) await start();
    } else {
      rows = await cursorExport(ctx, tx, where, mode, format, threads, body, start);
    }
    await write(body, format.tail);
    return rows;
  }).then(
    (rows) => {
      ctx.log.debug({ rows }, 'export finished');
      body.end();
    },
    (err: unknown) => {
      if (!streaming) return failed(err);
      if (err instanceof ExportAborted) ctx.log.info('export aborted by the client');
      else ctx.log.error({ err }, 'export failed while streaming');
      body.destroy(err instanceof Error ? err : new Error(String(err)));
    },
  );
  await started;
  return body;
}

/**
 * The two-phase export (see `exportRows`): rows FETCHed in chunks and parsed by pg on this event
 * loop, decrypted (on `threads` when given, see `threadedFeed`) and formatted into output buffers
 * as they arrive. The next chunk is read and formatted while the current one is written.
 */
async function cursorExport(
  ctx: Context,
  tx: TenantTx,
  where: ScopedWhere,
  mode: SortMode,
  format: ExportFormat,
  threads: DecryptThreads | undefined,
  body: PassThrough,
  start: () => Promise<void>,
): Promise<number> {
  const next = await exportRows(tx, where, mode);
  const out = new ByteChunks(OUTPUT_BUFFER_BYTES);
  let index = 0;
  const emit = (row: EventRow, sealed: string | undefined) => out.text(format.row(row, sealed, index++));
  const opener = sealedOpener(ctx.keyring);
  const feed = threads ? threadedFeed(threads, opener, emit) : keyedFeed(opener, emit);
  /**
   * Fetches the next chunk and formats it into `out`, row by row as the rows arrive; resolves
   * with whether it was the last one (fewer rows than asked for: no FETCH after it).
   */
  const read = async (): Promise<boolean> => {
    const count = await next(EXPORT_CHUNK_ROWS, feed.push);
    await feed.flush();
    return count < EXPORT_CHUNK_ROWS;
  };
  let last = await read();
  await start();
  for (;;) {
    const formatted = out.take();
    // The database sends the next chunk, and it is formatted, while this one is written.
    const ahead = last ? undefined : read();
    // Observed at once: if a write below fails, the transaction ends with the write's error.
    ahead?.catch(() => {});
    for (const buffer of formatted) await write(body, buffer);
    if (!ahead) break;
    last = await ahead;
  }
  return index;
}
