import { HttpError } from '../infra/http/errors.js';

/** A keyset position: the last row's (occurred_at, seq). Opaque to clients. */
export interface Cursor {
  occurredAt: string;
  seq: string;
}

const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify([c.occurredAt, c.seq])).toString('base64url');
}

/**
 * Decodes and strictly checks a cursor. A cursor carries no tenant: it only positions a scan
 * inside the caller's own scope, so one taken from another tenant reveals nothing.
 */
export function decodeCursor(raw: string): Cursor {
  try {
    const value: unknown = JSON.parse(Buffer.from(raw, 'base64url').toString());
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === 'string' &&
      TIME.test(value[0]) &&
      typeof value[1] === 'string' &&
      /^[0-9]{1,19}$/.test(value[1])
    ) {
      return { occurredAt: value[0], seq: value[1] };
    }
  } catch {
    // fall through
  }
  throw new HttpError(400, 'invalid_cursor', 'cursor is malformed');
}
