import { HttpError } from '../infra/http/errors.js';

/**
 * How a result is ordered. `time-*` orders by (occurred_at, seq), the search default; `seq-*`
 * orders by the tenant sequence alone, which is the causal order of one request's events.
 */
export type SortMode = 'time-desc' | 'time-asc' | 'seq-asc' | 'seq-desc';

/** A keyset position: the last row's (occurred_at, seq) and the order it was taken in. Opaque to clients. */
export interface Cursor {
  occurredAt: string;
  seq: string;
  mode: SortMode;
}

const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const MODES: Record<string, SortMode> = { td: 'time-desc', ta: 'time-asc', sa: 'seq-asc', sd: 'seq-desc' };
const CODES: Record<SortMode, string> = {
  'time-desc': 'td',
  'time-asc': 'ta',
  'seq-asc': 'sa',
  'seq-desc': 'sd',
};

const MAX_SEQ = 9223372036854775807n;

/** Encodes a position; without `mode` it is a newest-first (`time-desc`) position. */
export function encodeCursor(c: Omit<Cursor, 'mode'> & { mode?: SortMode }): string {
  return Buffer.from(JSON.stringify([c.occurredAt, c.seq, CODES[c.mode ?? 'time-desc']])).toString(
    'base64url',
  );
}

/** A real instant PostgreSQL accepts: the calendar date exists (no 31 February) and the year is 1–9999. */
function validTime(value: string): boolean {
  if (!TIME.test(value)) return false;
  const [y, mo, d, h, mi, s] = value.split(/[-T:.Z]/).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, s);
  return (
    y >= 1 &&
    date.getUTCFullYear() === y &&
    date.getUTCMonth() === mo - 1 &&
    date.getUTCDate() === d &&
    date.getUTCHours() === h &&
    date.getUTCMinutes() === mi &&
    date.getUTCSeconds() === s
  );
}

/**
 * Decodes and strictly checks a cursor. A cursor carries no tenant: it only positions a scan
 * inside the caller's own scope, so one taken from another tenant reveals nothing. Cursors from
 * before sorting existed have two elements and mean newest-first.
 */
export function decodeCursor(raw: string): Cursor {
  try {
    const value: unknown = JSON.parse(Buffer.from(raw, 'base64url').toString());
    if (
      Array.isArray(value) &&
      (value.length === 2 || value.length === 3) &&
      typeof value[0] === 'string' &&
      validTime(value[0]) &&
      typeof value[1] === 'string' &&
      /^[0-9]{1,19}$/.test(value[1]) &&
      BigInt(value[1]) <= MAX_SEQ
    ) {
      const mode = value.length === 2 ? 'time-desc' : MODES[String(value[2])];
      if (mode) return { occurredAt: value[0], seq: value[1], mode };
    }
  } catch {
    // fall through
  }
  throw new HttpError(400, 'invalid_cursor', 'cursor is malformed');
}

/**
 * Decodes a cursor for a scan in `mode`. A cursor from a scan in another order would skip or
 * repeat rows, so it is rejected rather than reinterpreted.
 */
export function decodeCursorFor(raw: string, mode: SortMode): Cursor {
  const cursor = decodeCursor(raw);
  if (cursor.mode !== mode) {
    throw new HttpError(400, 'invalid_cursor', 'cursor belongs to a different sort order or request_id mode');
  }
  return cursor;
}
