import { PassThrough, type Readable } from 'node:stream';
import type { ReadScope } from '../infra/auth/access.js';
import type { Context } from '../infra/context.js';
import type { SortMode } from './cursor.js';
import { decodeRow } from './decode.js';
import { rowsAt } from './events.js';
import type { ExportFormat } from './export-format.js';
import { withTenantScope } from './scoped.js';
import { buildWhere, type ResolvedFilters } from './where.js';

/**
 * Rows per FETCH. Memory is bounded by one chunk (its rows, decoded events and formatted text)
 * plus the socket and stream buffers, whatever the export's size.
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
 * is read only as fast as the client downloads.
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
    let keys = await next(EXPORT_CHUNK_ROWS);
    streaming = true;
    ready();
    await write(body, format.head);
    let index = 0;
    while (keys.length > 0) {
      let text = '';
      for (const row of await rowsAt(tx, keys)) {
        text += format.row(await decodeRow(ctx.keyring, row), index++);
      }
      await write(body, text);
      keys = keys.length < EXPORT_CHUNK_ROWS ? [] : await next(EXPORT_CHUNK_ROWS);
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
