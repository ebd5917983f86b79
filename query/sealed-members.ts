/**
 * The JSON texts of `before`, `after` and `metadata` inside an opened `sealed` value, without
 * parsing them into objects (an export would otherwise parse and re-serialize every row's).
 *
 * The encrypt stage seals exactly `JSON.stringify({ before, after, metadata })`, so the plaintext
 * is `{"before":…,"after":…,"metadata":…}` with absent fields left out, and each member's text is
 * what `JSON.stringify` gives for its parsed value (it is JSON.stringify's own output, a fixed
 * point of parse-then-stringify). `sealedMembers` checks that outline (one object, no whitespace,
 * only those keys in that order) and falls back to parsing when it does not hold, so another shape
 * still decodes exactly like `decodeRow` decodes it.
 */

import { BACKSLASH, CLOSE_BRACE, CLOSE_BRACKET, COMMA, OPEN_BRACE, OPEN_BRACKET, QUOTE } from './ascii.js';

/** The texts of before, after and metadata, in that order; `undefined` for an absent one. */
export type SealedMembers = [
  before: string | undefined,
  after: string | undefined,
  metadata: string | undefined,
];

const KEYS = ['"before":', '"after":', '"metadata":'] as const;

/** The members of the sealed plaintext `text` (see the module comment). */
export function sealedMembers(text: string): SealedMembers {
  return scan(text) ?? parsed(text);
}

/** The members by a structural scan, or undefined when `text` is not in the encrypt stage's shape. */
function scan(text: string): SealedMembers | undefined {
  const end = text.length - 1;
  if (end < 1 || text.charCodeAt(0) !== OPEN_BRACE || text.charCodeAt(end) !== CLOSE_BRACE) return undefined;
  const members: SealedMembers = [undefined, undefined, undefined];
  let at = 1;
  if (at === end) return members;
  let nextKey = 0;
  for (;;) {
    let k = nextKey;
    while (k < KEYS.length && !text.startsWith(KEYS[k]!, at)) k++;
    if (k === KEYS.length) return undefined;
    const start = at + KEYS[k]!.length;
    const stop = valueEnd(text, start, end);
    if (stop <= start) return undefined;
    members[k] = text.slice(start, stop);
    nextKey = k + 1;
    if (stop === end) return members;
    if (text.charCodeAt(stop) !== COMMA) return undefined;
    at = stop + 1;
  }
}

/**
 * Where the JSON value starting at `from` ends (exclusive): at the first top-level comma, or at
 * `end` (the closing brace of the whole object). -1 when brackets or strings do not balance.
 */
function valueEnd(text: string, from: number, end: number): number {
  let depth = 0;
  let i = from;
  while (i < end) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = stringEnd(text, i + 1, end);
      if (i < 0) return -1;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (depth === 0) return -1;
      depth--;
    } else if (c === COMMA && depth === 0) {
      return i;
    }
    i++;
  }
  return depth === 0 ? i : -1;
}

/** The index of the quote closing the string whose content starts at `from`, or -1. */
function stringEnd(text: string, from: number, end: number): number {
  let i = from;
  for (;;) {
    const quote = text.indexOf('"', i);
    if (quote < 0 || quote >= end) return -1;
    // Escaped when preceded by an odd number of backslashes.
    let slashes = 0;
    while (text.charCodeAt(quote - 1 - slashes) === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return quote;
    i = quote + 1;
  }
}

/** The slow path: parse, then serialize each member as `JSON.stringify` does for the decoded event. */
function parsed(text: string): SealedMembers {
  const opened = JSON.parse(text) as { before?: unknown; after?: unknown; metadata?: unknown };
  const json = (v: unknown) => (v === undefined ? undefined : JSON.stringify(v));
  return [json(opened.before), json(opened.after), json(opened.metadata)];
}

const KEY_BYTES = KEYS.map((k) => Buffer.from(k, 'latin1'));

/**
 * `sealedMembers` on the UTF-8 bytes `data[s, e)` of a sealed plaintext, as byte ranges: members
 * `m` (before, after, metadata) spans `[ranges[2m], ranges[2m + 1])`, start -1 when absent. The
 * same structural scan as `scan` (every character it looks for is ASCII, and no byte of a
 * multi-byte UTF-8 character is ASCII), so the ranges hold exactly the texts `sealedMembers`
 * returns; undefined where `scan` would fall back to parsing. `ranges` may be an array to reuse.
 */
export function sealedMemberRanges(
  data: Uint8Array,
  s: number,
  e: number,
  ranges = new Int32Array(6),
): Int32Array | undefined {
  const end = e - 1;
  if (end - s < 1 || data[s] !== OPEN_BRACE || data[end] !== CLOSE_BRACE) return undefined;
  ranges.fill(-1);
  let at = s + 1;
  if (at === end) return ranges;
  let nextKey = 0;
  for (;;) {
    let k = nextKey;
    while (k < KEY_BYTES.length && !startsWith(data, at, end, KEY_BYTES[k]!)) k++;
    if (k === KEY_BYTES.length) return undefined;
    const start = at + KEY_BYTES[k]!.length;
    const stop = valueEndBytes(data, start, end);
    if (stop <= start) return undefined;
    ranges[2 * k] = start;
    ranges[2 * k + 1] = stop;
    nextKey = k + 1;
    if (stop === end) return ranges;
    if (data[stop] !== COMMA) return undefined;
    at = stop + 1;
  }
}

function startsWith(data: Uint8Array, at: number, end: number, bytes: Uint8Array): boolean {
  if (at + bytes.length > end) return false;
  for (let i = 0; i < bytes.length; i++) if (data[at + i] !== bytes[i]) return false;
  return true;
}

/** `valueEnd` on bytes. */
function valueEndBytes(data: Uint8Array, from: number, end: number): number {
  let depth = 0;
  let i = from;
  while (i < end) {
    const c = data[i];
    if (c === QUOTE) {
      i = stringEndBytes(data, i + 1, end);
      if (i < 0) return -1;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (depth === 0) return -1;
      depth--;
    } else if (c === COMMA && depth === 0) {
      return i;
    }
    i++;
  }
  return depth === 0 ? i : -1;
}

/** `stringEnd` on bytes. */
function stringEndBytes(data: Uint8Array, from: number, end: number): number {
  for (let i = from; i < end; i++) {
    const c = data[i];
    if (c === BACKSLASH)
      i++; // the escaped character, whatever it is
    else if (c === QUOTE) return i;
  }
  return -1;
}
