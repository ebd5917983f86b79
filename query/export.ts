import { PassThrough, type Readable } from 'node:stream';
import type { ReadScope } from '../infra/auth/access.js';
import type { Context } from '../infra/context.js';
import type { SortMode } from './cursor.js';
import { type EventRow, rowDecoder } from './decode.js';
import { rowsAt } from './events.js';
import type { ExportFormat } from './export-format.js';
import { type RowKey, withTenantScope } from './scoped.js';
import { buildWhere, type ResolvedFilters } from './where.js';

/**
 * Rows per FETCH. Memory is bounded by two chunks (the one being formatted and the next one being
 * read, see `exportEvents`) plus the socket and stream buffers, whatever the export's size. Larger
 * chunks measured slower per row (bigger joins in `rowsAt`, longer-lived garbage) and use more
 * memory; much smaller ones pay a FETCH and a rows round trip for few rows.
 */
export const EXPORT_CHUNK_ROWS = 500;

/** The client went away; the export stops and its transaction ends. */
class ExportAborted extends Error {
  override name = 'ExportAborted';
}

/** Writes `chunk`, waiting for 'drain' when the stream's buffer is full (backpressure). */
function write(stream: PassThrough, chunk: string): Promise<void> {
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
 * Streams every event matching `filters` in `scope`, formatted, from a server-side cursor inside
 * one scoped read-only transaction (see `withTenantScope`): keys are FETCHed in chunks, their
 * rows read under row-level security, decrypted and written with backpressure, so the database
 * is read only as fast as the client downloads (at most one chunk ahead: the next chunk is read
 * while the current one is formatted, so the database and this process work in parallel).
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
    const next = await tx.keyCursor(buildWhere(scope, filters), mode);
    /** The next chunk; `last` when the cursor had fewer keys than asked for (no FETCH after it). */
    const read = async (): Promise<{ rows: EventRow[]; last: boolean }> => {
      const keys: RowKey[] = await next(EXPORT_CHUNK_ROWS);
      return { rows: await rowsAt(tx, keys), last: keys.length < EXPORT_CHUNK_ROWS };
    };
    let chunk = await read();
    streaming = true;
    ready();
    await write(body, format.head);
    let index = 0;
    for (;;) {
      // The database reads the next chunk while this one is decrypted, formatted and written.
      const ahead = chunk.last ? undefined : read();
      // Observed at once: if the write below fails, the transaction ends with the write's error.
      ahead?.catch(() => {});
      const decode = await rowDecoder(ctx.keyring, chunk.rows);
      let text = '';
      for (const row of chunk.rows) text += format.row(decode(row), index++);
      await write(body, text);
      if (!ahead) break;
      chunk = await ahead;
    }
    await write(body, format.tail);
    return index;
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
