import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../infra/schema/event.js';
import { ByteChunks } from './byte-chunks.js';
import { binaryCopy, type CopyField } from './copy-test-support.js';
import { tupleSplitter } from './copy-tuples.js';
import { type EventRow, utcTimestamp } from './decode.js';
import { EXPORT_FORMATS } from './export-format.js';
import type { ExportFormatName } from './filters.js';
import { sealedMemberRanges, sealedMembers } from './sealed-members.js';
import { formatTuple, TUPLE_FIELDS, tupleFields } from './tuple-format.js';

/**
 * `formatTuple` must print, byte for byte, what `EXPORT_FORMATS[format].row` prints for the same
 * row decoded into strings. Checked on values built to break byte-level escaping: quotes,
 * backslashes, every C0 control, DEL, multi-byte and 4-byte UTF-8, U+2028, CSV separators and
 * formula starts, empty strings next to NULLs, long values, odd timestamps and sealed plaintexts
 * of every shape.
 */

// A seeded generator, so a failure reproduces.
let seed = 42;
/** mulberry32. */
const random = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
};
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

const PIECES = [
  'a',
  'Z',
  '0',
  ' ',
  '"',
  '\\',
  ',',
  '\r',
  '\n',
  '\t',
  '\b',
  '\f',
  '\u0001',
  '\u001f',
  '\u007f',
  'é',
  '€',
  '😀',
  '\u2028',
  '=',
  '+',
  '-',
  '@',
  "'",
  '{',
  '}',
  '[',
  ']',
  ':',
  '/',
  '\u00a0',
] as const;

function text(): string {
  const length = random() < 0.05 ? 300 + Math.floor(random() * 300) : Math.floor(random() * 12);
  let s = '';
  for (let i = 0; i < length; i++) s += pick(PIECES);
  return s;
}
const optional = () => (random() < 0.25 ? null : random() < 0.1 ? '' : text());

/** PostgreSQL's ISO text of a UTC timestamp (what the export's COPY selects). */
const TIMESTAMPS = [
  '2026-05-01 10:00:00',
  '2026-05-01 10:00:00.5',
  '2026-05-01 10:00:00.12',
  '2026-05-01 10:00:00.123456',
  '2026-12-31 23:59:59.000001',
  '0044-03-15 00:00:00 BC',
  '0001-01-01 00:00:00.25 BC',
  '12026-01-01 00:00:00.1',
];

/** Plaintexts not in the encrypt stage's shape (spaces, order, keys), which `sealedMembers` parses. */
const NOT_STAGE_SHAPED = [
  '{ "metadata": {"a": 1} }',
  '{"metadata":{"a":1},"before":2}',
  '{"after":"x","unknown":1}',
];

/** Sealed plaintexts: the encrypt stage's shape, and others `sealedMembers` must parse. */
function plaintext(): string | undefined {
  const r = random();
  if (r < 0.15) return undefined;
  if (r < 0.25)
    return pick([
      ...NOT_STAGE_SHAPED,
      '{}',
      '{"before":"a\\"b\\\\","after":-5}',
      '{"before":"=cmd","metadata":"plain, \\"quoted\\""}',
    ]);
  const value = (depth: number): unknown => {
    const k = random();
    if (depth > 2 || k < 0.3) return text();
    if (k < 0.4) return Math.floor(random() * 2000) - 1000;
    if (k < 0.45) return null;
    if (k < 0.5) return random() < 0.5;
    if (k < 0.7) return [value(depth + 1), value(depth + 1)];
    return { [text()]: value(depth + 1), n: value(depth + 1) };
  };
  const sealed: Record<string, unknown> = {};
  if (random() < 0.5) sealed.before = value(0);
  if (random() < 0.5) sealed.after = value(0);
  if (random() < 0.8) sealed.metadata = { plan: text(), nested: value(1) };
  return JSON.stringify(sealed);
}

interface Case {
  tuple: CopyField[];
  row: EventRow;
  sealed: string | undefined;
}

function makeCase(i: number): Case {
  const occurred = pick(TIMESTAMPS);
  const received = pick(TIMESTAMPS);
  const sealed = plaintext();
  const row: EventRow = {
    tenant_id: random() < 0.9 ? 'acme' : text(),
    id: `0193a3a5-0000-7000-8000-${String(i).padStart(12, '0')}`,
    sequence: String(i * 7919),
    occurred_at: utcTimestamp(occurred),
    received_at: utcTimestamp(received),
    user_id: optional(),
    session_id: optional(),
    action: text(),
    resource_type: text(),
    resource_id: optional(),
    severity: text() as StoredEvent['severity'],
    ip_address: random() < 0.5 ? null : pick(['10.0.0.1', '2001:db8::1', '::ffff:1.2.3.4']),
    user_agent: optional(),
    message: optional(),
    request_id: optional(),
    key_id: 1 + (i % 3),
    sealed: null,
  };
  const tuple: CopyField[] = [
    row.key_id,
    row.tenant_id,
    row.id,
    row.sequence,
    occurred,
    received,
    row.user_id,
    row.session_id,
    row.action,
    row.resource_type,
    row.resource_id,
    row.severity,
    row.ip_address,
    row.user_agent,
    row.message,
    row.request_id,
    // The ciphertext's bytes do not matter here, only whether there is one.
    sealed === undefined ? null : Buffer.from([1, 2, 3]),
  ];
  return { tuple, row, sealed };
}

const cases = Array.from({ length: 3000 }, (_, i) => makeCase(i));

/** Splits the cases' COPY output and formats every row, with plaintexts packed end to end. */
function formatAll(format: ExportFormatName, bufferSize: number): string[] {
  const splitter = tupleSplitter(TUPLE_FIELDS, 97);
  const groups = splitter.push(binaryCopy(cases.map((c) => c.tuple)));
  const rest = splitter.end();
  if (rest) groups.push(rest);
  const lines: string[] = [];
  let index = 0;
  for (const group of groups) {
    const fields = tupleFields(group.data, group.rows);
    const texts = cases.slice(index, index + group.rows).map((c) => c.sealed);
    const plain = Buffer.from(texts.map((t) => t ?? '').join(''));
    let at = 0;
    for (let r = 0; r < group.rows; r++) {
      const out = new ByteChunks(bufferSize);
      const t = texts[r];
      const size = t === undefined ? 0 : Buffer.byteLength(t);
      formatTuple(
        format,
        out,
        group.data,
        fields,
        r,
        t === undefined ? undefined : plain,
        at,
        at + size,
        index++,
      );
      at += size;
      lines.push(Buffer.concat(out.take()).toString('utf8'));
    }
  }
  return lines;
}

describe('formatTuple', () => {
  for (const format of ['json', 'ndjson', 'csv'] as const) {
    it(`prints ${format} rows byte for byte as the string formatter does`, () => {
      // A small buffer size makes rows span several output buffers.
      for (const size of [64, 64 * 1024]) {
        const lines = formatAll(format, size);
        expect(lines).toHaveLength(cases.length);
        for (let i = 0; i < cases.length; i++) {
          const { row, sealed } = cases[i]!;
          const expected = EXPORT_FORMATS[format].row(row, sealed, i);
          if (lines[i] !== expected) expect({ i, line: lines[i] }).toEqual({ i, line: expected });
        }
      }
    });
  }

  it('covers what it claims: escapes, formulas, strings as members and fallback shapes', () => {
    const csv = formatAll('csv', 1024).join('');
    const json = formatAll('ndjson', 1024).join('');
    expect(json).toContain('\\u0001');
    expect(json).toContain('\\"');
    expect(json).toContain('\u2028');
    expect(csv).toContain("'=");
    expect(csv).toContain('""');
    expect(csv).toContain(',"plain, ""quoted"""\r\n'); // a string member, exported as the string
    expect(json).toContain('"metadata":{"a":1}'); // re-serialized from a spaced plaintext
    expect(json).toContain('"occurred_at":"0044-03-15T00:00:00.000000Z"');
  });
});

describe('sealedMemberRanges', () => {
  it('finds exactly the texts sealedMembers returns, or leaves the plaintext to it', () => {
    let ranged = 0;
    for (const { sealed } of cases) {
      if (sealed === undefined) continue;
      const bytes = Buffer.from(`xx${sealed}yy`);
      const ranges = sealedMemberRanges(bytes, 2, bytes.length - 2);
      const members = sealedMembers(sealed);
      // Only plaintexts not in the encrypt stage's shape are left to sealedMembers.
      expect(ranges === undefined).toBe(NOT_STAGE_SHAPED.includes(sealed));
      if (!ranges) continue;
      ranged++;
      const texts = [0, 1, 2].map((m) =>
        ranges[2 * m]! < 0 ? undefined : bytes.toString('utf8', ranges[2 * m]!, ranges[2 * m + 1]!),
      );
      expect(texts).toEqual(members);
    }
    expect(ranged).toBeGreaterThan(2000);
  });
});
