import { APOSTROPHE, BACKSLASH, COMMA, CR, LF, QUOTE } from './ascii.js';
import type { ByteChunks } from './byte-chunks.js';
import { formulaStart } from './csv.js';
import { utcTimestamp } from './decode.js';
import { jsonCell } from './event-csv.js';
import type { ExportFormatName } from './filters.js';
import { sealedMemberRanges, sealedMembers } from './sealed-members.js';

/**
 * Export rows formatted straight from the bytes of binary COPY tuples of `COPY_EXPORT_COLUMNS`
 * into output buffers, with no string per field: in the export's profile, making a string of
 * every field, the row's text from them and encoding it again was most of the event loop's work
 * and garbage. The output is byte for byte `EXPORT_FORMATS[format].row` of the row
 * decoded into strings, which `tuple-format.test.ts` checks on adversarial values:
 * - a JSON string is escaped exactly as `JSON.stringify` escapes it: `"`, `\` and the C0 controls
 *   (`\b \t \n \f \r`, else `\u00xx`); every other UTF-8 byte is copied (PostgreSQL text is
 *   valid UTF-8 without NUL, so there are no lone surrogates to escape);
 * - a CSV cell is `csvCell`'s: the formula guard looks at the first byte (an ASCII character is
 *   its own first UTF-16 unit, and no multi-byte character is a formula start) and quoting at
 *   `"`, `,`, CR and LF, all ASCII;
 * - a timestamp is `utcTimestamp`'s, by a byte copy for the usual `YYYY-MM-DD HH:MM:SS[.f]` and
 *   by `utcTimestamp` itself for anything else;
 * - the sealed plaintext's before/after/metadata are found on its bytes (`sealedMemberRanges`)
 *   and copied; a plaintext of another shape, and in CSV a member that is a JSON string, go
 *   through `sealedMembers` and `jsonCell` as strings.
 */

/** Field indexes in a tuple of `COPY_EXPORT_COLUMNS`. */
export const F = {
  keyId: 0,
  tenantId: 1,
  id: 2,
  sequence: 3,
  occurredAt: 4,
  receivedAt: 5,
  userId: 6,
  sessionId: 7,
  action: 8,
  resourceType: 9,
  resourceId: 10,
  severity: 11,
  ipAddress: 12,
  userAgent: 13,
  message: 14,
  requestId: 15,
  sealed: 16,
} as const;

export const TUPLE_FIELDS = 17;

/**
 * Where each field of each tuple in `data` is: field f of tuple r spans
 * `[starts[r * fields + f], ends[r * fields + f])`, with start -1 for NULL.
 */
export interface TupleFields {
  rows: number;
  starts: Int32Array;
  ends: Int32Array;
  /** Tuple r is the bytes `[bounds[r], bounds[r + 1])`. */
  bounds: Int32Array;
}

/** The field positions of the `rows` whole tuples in `data` (see `tupleSplitter`). */
export function tupleFields(data: Buffer, rows: number, fields = TUPLE_FIELDS): TupleFields {
  const starts = new Int32Array(rows * fields);
  const ends = new Int32Array(rows * fields);
  const bounds = new Int32Array(rows + 1);
  let at = 0;
  for (let i = 0; i < rows * fields; i++) {
    if (i % fields === 0) {
      bounds[i / fields] = at;
      at += 2;
    }
    const n = data.readInt32BE(at);
    at += 4;
    if (n < 0) {
      starts[i] = -1;
      ends[i] = -1;
    } else {
      starts[i] = at;
      ends[i] = at += n;
    }
  }
  bounds[rows] = at;
  return { rows, starts, ends, bounds };
}

const HEX = '0123456789abcdef';

/**
 * Copies `data[s, e)` to `out` at `pos`; returns the new position. A loop below 256 bytes:
 * `Buffer.copy`'s fixed cost is larger than copying most fields byte by byte.
 */
export function copy(out: Uint8Array, pos: number, data: Uint8Array, s: number, e: number): number {
  if (e - s >= 256) {
    out.set(data.subarray(s, e), pos);
    return pos + e - s;
  }
  for (let i = s; i < e; i++) out[pos++] = data[i]!;
  return pos;
}

/** Writes the ASCII bytes of a constant. */
function ascii(out: Buffer, pos: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) out[pos++] = bytes[i]!;
  return pos;
}

/** `JSON.stringify` of the UTF-8 text `data[s, e)`. Needs up to `6 * (e - s) + 2` bytes. */
function jsonString(out: Buffer, pos: number, data: Uint8Array, s: number, e: number): number {
  out[pos++] = QUOTE;
  let run = s;
  for (let i = s; i < e; i++) {
    const b = data[i]!;
    if (b >= 0x20 && b !== QUOTE && b !== BACKSLASH) continue;
    pos = copy(out, pos, data, run, i);
    out[pos++] = BACKSLASH;
    if (b === QUOTE || b === BACKSLASH) out[pos++] = b;
    else if (b === LF)
      out[pos++] = 0x6e; // n
    else if (b === CR)
      out[pos++] = 0x72; // r
    else if (b === 0x09)
      out[pos++] = 0x74; // t
    else if (b === 0x08)
      out[pos++] = 0x62; // b
    else if (b === 0x0c)
      out[pos++] = 0x66; // f
    else pos += out.write(`u00${HEX[b >> 4]}${HEX[b & 15]}`, pos, 'latin1');
    run = i + 1;
  }
  pos = copy(out, pos, data, run, e);
  out[pos++] = QUOTE;
  return pos;
}

const isDigit = (b: number | undefined) => b !== undefined && b >= 0x30 && b <= 0x39;

/**
 * `utcTimestamp` of the ISO text `data[s, e)`, unquoted. Needs up to `e - s + 8` bytes. The usual
 * shape (a four-digit year, up to six fraction digits, no era) is copied; any other goes through
 * `utcTimestamp` itself, which also throws where it throws.
 */
function timestamp(out: Buffer, pos: number, data: Buffer, s: number, e: number): number {
  const n = e - s;
  const usual =
    n >= 19 &&
    n <= 26 &&
    n !== 20 &&
    data[s + 4] === 0x2d &&
    data[s + 10] === 0x20 &&
    (n === 19 || data[s + 19] === 0x2e) &&
    isDigit(data[e - 1]);
  if (!usual) return pos + out.write(utcTimestamp(data.toString('utf8', s, e)), pos, 'latin1');
  pos = copy(out, pos, data, s, s + 19);
  out[pos - 9] = 0x54; // the space between date and time becomes 'T'
  out[pos++] = 0x2e;
  let digits = 0;
  for (let i = s + 20; i < e; i++, digits++) out[pos++] = data[i]!;
  for (; digits < 6; digits++) out[pos++] = 0x30;
  out[pos++] = 0x5a; // Z
  return pos;
}

/** `csvCell` of the UTF-8 text `data[s, e)` (s -1: NULL). Needs up to `2 * (e - s) + 3` bytes. */
function csvBytes(out: Buffer, pos: number, data: Buffer, s: number, e: number): number {
  if (s < 0 || s === e) return pos;
  const formula = formulaStart(data[s]!);
  let quote = false;
  for (let i = s; i < e; i++) {
    const b = data[i]!;
    if (b === QUOTE || b === COMMA || b === CR || b === LF) {
      quote = true;
      break;
    }
  }
  if (!quote) {
    if (formula) out[pos++] = APOSTROPHE;
    return copy(out, pos, data, s, e);
  }
  out[pos++] = QUOTE;
  if (formula) out[pos++] = APOSTROPHE;
  let run = s;
  for (let i = s; i < e; i++) {
    if (data[i] !== QUOTE) continue;
    pos = copy(out, pos, data, run, i + 1);
    out[pos++] = QUOTE;
    run = i + 1;
  }
  pos = copy(out, pos, data, run, e);
  out[pos++] = QUOTE;
  return pos;
}

const key = (text: string) => Buffer.from(text, 'latin1');
/**
 * eventJson's columns in its order, each with its key and what comes before it: the required
 * ones (NOT NULL in `events`), then the optional ones, written only when not NULL.
 */
const JSON_FIELDS = [
  F.tenantId,
  F.id,
  F.sequence,
  F.occurredAt,
  F.receivedAt,
  F.action,
  F.resourceType,
  F.severity,
  F.userId,
  F.sessionId,
  F.resourceId,
  F.ipAddress,
  F.userAgent,
  F.message,
  F.requestId,
];
const JSON_KEYS = [
  '{"tenant_id":',
  ',"id":',
  ',"sequence":',
  ',"occurred_at":',
  ',"received_at":',
  ',"action":',
  ',"resource_type":',
  ',"severity":',
  ',"user_id":',
  ',"session_id":',
  ',"resource_id":',
  ',"ip_address":',
  ',"user_agent":',
  ',"message":',
  ',"request_id":',
].map(key);
const MEMBER_TEXT = [',"before":', ',"after":', ',"metadata":'] as const;
const MEMBER_KEYS = MEMBER_TEXT.map(key);

/** CSV cells in `CSV_COLUMNS` order, up to request_id. */
const CSV_FIELDS = [
  F.tenantId,
  F.id,
  F.sequence,
  F.occurredAt,
  F.receivedAt,
  F.userId,
  F.sessionId,
  F.action,
  F.resourceType,
  F.resourceId,
  F.severity,
  F.ipAddress,
  F.userAgent,
  F.message,
  F.requestId,
];

/** `sealedMemberRanges`' answer for the row being formatted (rows are formatted one at a time). */
const RANGES = new Int32Array(6);

/**
 * Appends row `r` of `fields` (tuples in `data`) to `out` as `format` prints the export's row
 * number `index`. The row's opened sealed plaintext, if it has one, is `plain[ps, pe)`.
 */
export function formatTuple(
  format: ExportFormatName,
  out: ByteChunks,
  data: Buffer,
  fields: TupleFields,
  r: number,
  plain: Buffer | undefined,
  ps: number,
  pe: number,
  index: number,
): void {
  const { starts: st, ends: en } = fields;
  const base = r * TUPLE_FIELDS;
  const ranges = plain && sealedMemberRanges(plain, ps, pe, RANGES);
  /** Where `sealedMemberRanges` does not apply: the members as `sealedMembers` gives them. */
  const members = plain && !ranges ? sealedMembers(plain.toString('utf8', ps, pe)) : undefined;
  // Worst case: every byte escaped as \u00xx (CSV: doubled), plus keys and punctuation.
  out.room(6 * (fields.bounds[r + 1]! - fields.bounds[r]!) + 2 * (plain ? pe - ps : 0) + 512);
  const b = out.buf;
  let pos = out.pos;
  if (format === 'csv') {
    for (let i = 0; i < CSV_FIELDS.length; i++) {
      const f = base + CSV_FIELDS[i]!;
      if (i > 0) b[pos++] = COMMA;
      if (CSV_FIELDS[i] === F.occurredAt || CSV_FIELDS[i] === F.receivedAt) {
        pos = timestamp(b, pos, data, st[f]!, en[f]!);
      } else {
        pos = csvBytes(b, pos, data, st[f]!, en[f]!);
      }
    }
    if (!plain || (ranges && !stringMember(plain, ranges))) {
      for (let m = 0; m < 3; m++) {
        b[pos++] = COMMA;
        if (ranges && ranges[2 * m]! >= 0) pos = csvBytes(b, pos, plain!, ranges[2 * m]!, ranges[2 * m + 1]!);
      }
      b[pos++] = CR;
      b[pos++] = LF;
      out.pos = pos;
      return;
    }
    // A member that is a JSON string is exported as the string itself (see `jsonCell`), and a
    // plaintext of another shape is taken apart by `sealedMembers`: both rare, so by strings.
    out.pos = pos;
    const texts = members ?? memberTexts(plain, ranges!);
    out.text(`,${jsonCell(texts[0])},${jsonCell(texts[1])},${jsonCell(texts[2])}\r\n`);
    return;
  }
  if (format === 'json') {
    if (index > 0) b[pos++] = COMMA;
    b[pos++] = LF;
  }
  for (let j = 0; j < JSON_FIELDS.length; j++) {
    const f = base + JSON_FIELDS[j]!;
    if (st[f]! < 0) continue; // NULL: only the optional columns can be
    pos = ascii(b, pos, JSON_KEYS[j]!);
    if (JSON_FIELDS[j] === F.occurredAt || JSON_FIELDS[j] === F.receivedAt) {
      b[pos++] = QUOTE;
      pos = timestamp(b, pos, data, st[f]!, en[f]!);
      b[pos++] = QUOTE;
    } else {
      pos = jsonString(b, pos, data, st[f]!, en[f]!);
    }
  }
  for (let m = 0; m < 3; m++) {
    if (ranges) {
      if (ranges[2 * m]! < 0) continue;
      pos = ascii(b, pos, MEMBER_KEYS[m]!);
      pos = copy(b, pos, plain!, ranges[2 * m]!, ranges[2 * m + 1]!);
    } else if (members?.[m] !== undefined) {
      out.pos = pos;
      out.text(`${MEMBER_TEXT[m]}${members[m]}`);
      pos = out.pos;
    }
  }
  out.pos = pos;
  out.room(2);
  out.buf[out.pos++] = 0x7d; // }
  if (format === 'ndjson') out.buf[out.pos++] = LF;
}

/** Whether any member in `ranges` is a JSON string. */
function stringMember(bytes: Buffer, ranges: Int32Array): boolean {
  for (let m = 0; m < 3; m++) if (ranges[2 * m]! >= 0 && bytes[ranges[2 * m]!] === QUOTE) return true;
  return false;
}

/** The members' texts, as `sealedMembers` gives them. */
function memberTexts(bytes: Buffer, ranges: Int32Array): (string | undefined)[] {
  return [0, 1, 2].map((m) =>
    ranges[2 * m]! < 0 ? undefined : bytes.toString('utf8', ranges[2 * m]!, ranges[2 * m + 1]!),
  );
}
