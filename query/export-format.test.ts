import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { seal, sealAad } from '../infra/crypto/aead.js';
import type { TenantKeyring } from '../infra/crypto/tenant-keys.js';
import type { StoredEvent } from '../infra/schema/event.js';
import { csvRow } from './csv.js';
import { decodeWith, type EventRow, sealedOpener } from './decode.js';
import { CSV_COLUMNS } from './event-csv.js';
import { EXPORT_FORMATS } from './export-format.js';
import { sealedMembers } from './sealed-members.js';

/**
 * The export formats build their text from the row and the sealed plaintext directly. It must be
 * byte for byte what serializing the decoded event gives: `JSON.stringify(event)` for JSON and
 * NDJSON, and for CSV the decoded fields with before/after/metadata as JSON text.
 */
const key = randomBytes(32);
const keyring = {
  key: async (_tenant: string, keyId: number) => ({ keyId, key }),
} as unknown as TenantKeyring;

let n = 0;
function row(fields: Partial<EventRow>, sealed?: Record<string, unknown>): EventRow {
  n++;
  const base: EventRow = {
    tenant_id: 'acme',
    id: `0193a3a5-0000-7000-8000-${String(n).padStart(12, '0')}`,
    sequence: String(n),
    occurred_at: '2026-05-01T10:00:00.000000Z',
    received_at: '2026-05-01T10:00:01.123456Z',
    user_id: null,
    session_id: null,
    action: 'UPDATE',
    resource_type: 'order',
    resource_id: null,
    severity: 'INFO',
    ip_address: null,
    user_agent: null,
    message: null,
    request_id: null,
    key_id: 1,
    sealed: null,
    ...fields,
  };
  if (sealed) {
    // As the encrypt stage seals them.
    const { before, after, metadata } = sealed;
    base.sealed = seal(
      key,
      Buffer.from(JSON.stringify({ before, after, metadata })),
      sealAad('acme', base.id),
    );
  }
  return base;
}

/** The CSV row as the export wrote it from the decoded event. */
function csvOf(e: StoredEvent): string {
  return csvRow(
    CSV_COLUMNS.map((c) => {
      const v = e[c];
      return v === undefined || typeof v === 'string' ? v : JSON.stringify(v);
    }),
  );
}

const rows: EventRow[] = [
  row({}),
  row(
    {
      user_id: 'u1',
      session_id: 's1',
      resource_id: '-5',
      severity: 'WARNING',
      ip_address: '2001:db8::1',
      user_agent: 'Mozilla/5.0 (X11; Linux)',
      message: 'He said "hi", then left\r\nline two\ttab \u0001 \u2028 Zürich – 東京 😀 \\ /',
      request_id: 'r1',
    },
    {
      before: { a: 1, b: 'x,y', '2': 'two', '1': 'one', z: null },
      after: { a: 2.5e-7, big: 12345678901234567000, neg: -0, nested: { list: [1, '=cmd', { q: '"' }] } },
      metadata: {
        formula: '=1+1',
        empty: {},
        emptyList: [],
        esc: 'a"b\\c\nd\u0000',
        emoji: '😀',
        lone: '\ud800',
      },
    },
  ),
  row({ message: '@SUM(A1:A9)', user_agent: '\tTabbed' }, { metadata: { plan: 'gold' } }),
  row({ user_id: '=cmd|/c calc' }, { before: { '"before":': ',"after":{}' } }),
  row({}, { after: { '}': '{', ']': '[' } }),
  row({}, {}),
  // Not objects (the API only accepts objects, but the formats must not depend on it).
  row({}, { before: null, after: 'plain, "text"', metadata: 7 }),
  row({}, { before: [], after: true, metadata: '=2' }),
];

describe('export formats', () => {
  it('are byte for byte the serialized decoded events, in every format', async () => {
    const opener = sealedOpener(keyring);
    expect(rows.every((r) => opener.ready(r) === !r.sealed)).toBe(true);
    await opener.load(rows);
    expect(rows.every((r) => opener.ready(r))).toBe(true);
    rows.forEach((r, i) => {
      const sealed = opener.open(r);
      const event = decodeWith(r, sealed);
      expect(EXPORT_FORMATS.ndjson.row(r, sealed, i)).toBe(`${JSON.stringify(event)}\n`);
      expect(EXPORT_FORMATS.json.row(r, sealed, i)).toBe(`${i === 0 ? '\n' : ',\n'}${JSON.stringify(event)}`);
      expect(EXPORT_FORMATS.csv.row(r, sealed, i)).toBe(csvOf(event));
    });
  });

  it('fails to open a row sealed for another event', async () => {
    const [a, b] = [row({}, { before: { a: 1 } }), row({}, { before: { a: 2 } })];
    const swapped = { ...b, sealed: a.sealed };
    const opener = sealedOpener(keyring);
    await opener.load([swapped]);
    expect(() => opener.open(swapped)).toThrow();
  });
});

describe('sealedMembers', () => {
  it.each([
    ['{}', [undefined, undefined, undefined]],
    ['{"after":{"a":"},{"}}', [undefined, '{"a":"},{"}', undefined]],
    ['{"before":"x\\\\","metadata":[1,{"b":[]}]}', ['"x\\\\"', undefined, '[1,{"b":[]}]']],
    // Other shapes than the encrypt stage's are parsed, and read like `decodeRow` reads them.
    ['{"metadata":{"a":1},"before":{"b":2}}', ['{"b":2}', undefined, '{"a":1}']],
    ['{ "before" : { "a" : 1 } }', ['{"a":1}', undefined, undefined]],
    ['{"before":{},"extra":1,"after":2}', ['{}', '2', undefined]],
  ])('%s', (text, expected) => {
    expect(sealedMembers(text)).toEqual(expected);
  });

  it('rejects a plaintext that is not JSON', () => {
    expect(() => sealedMembers('{"before":{"a":1}')).toThrow();
  });
});
