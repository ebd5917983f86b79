import { describe, expect, it } from 'vitest';
import { LIMITS } from './event.js';
import { utcTimestamp, validateEvent } from './validate.js';

const NOW = Date.parse('2026-11-28T12:00:00Z');
const base = { action: 'UPDATE', resource_type: 'order' };
const check = (input: unknown) => validateEvent(input, NOW);

/** An object nested `depth` levels deep: depth 1 is `{leaf: 1}`. */
function nested(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: 1 };
  for (let i = 1; i < depth; i++) value = { child: value };
  return value;
}

describe('validateEvent', () => {
  it('accepts a minimal event and a complete one', () => {
    expect(check(base)).toEqual([]);
    expect(
      check({
        tenant_id: 'acme',
        id: '0193a3a5-8c1e-7a2b-9c3d-4e5f60718293',
        occurred_at: '2026-11-28T10:15:00+01:00',
        user_id: 'u-42',
        session_id: 's-1',
        action: 'CUSTOM_VERB_2',
        resource_type: 'order',
        resource_id: 'o-1',
        severity: 'CRITICAL',
        ip_address: '2001:db8::1',
        user_agent: 'curl/8',
        message: 'tabs\tnewlines\n and unicode ✓',
        before: { a: [1, { b: null }] },
        after: {},
        metadata: { k: 'v' },
        request_id: 'req-1',
      }),
    ).toEqual([]);
  });

  it('reports unknown fields by path', () => {
    expect(check({ ...base, colour: 'red', tenant: 'x' })).toEqual([
      { path: '/colour', message: 'unknown field' },
      { path: '/tenant', message: 'unknown field' },
    ]);
  });

  it('reports missing required fields', () => {
    expect(check({})).toEqual([
      { path: '/action', message: 'is required' },
      { path: '/resource_type', message: 'is required' },
    ]);
  });

  it('rejects non-objects at the top level', () => {
    for (const input of [null, [], 'x', 42, true]) {
      expect(check(input)).toEqual([{ path: '', message: 'must be object' }]);
    }
  });

  it('reports wrong types field by field', () => {
    expect(
      check({ ...base, user_id: 7, metadata: [1], before: 'x', after: null, message: { a: 1 } }),
    ).toEqual([
      { path: '/user_id', message: 'must be string' },
      { path: '/message', message: 'must be string' },
      { path: '/before', message: 'must be object' },
      { path: '/after', message: 'must be object' },
      { path: '/metadata', message: 'must be object' },
    ]);
  });

  it.each([
    ['create', false],
    ['C', false],
    ['1CREATE', false],
    ['CREATE-X', false],
    ['CREATE ', false],
    [`A${'B'.repeat(63)}`, true],
    [`A${'B'.repeat(64)}`, false],
    ['DO_THING_2', true],
  ])('action %j valid=%s', (action, valid) => {
    const issues = check({ ...base, action });
    expect(issues).toEqual(
      valid ? [] : [{ path: '/action', message: 'must match pattern "^[A-Z][A-Z0-9_]{1,63}$"' }],
    );
  });

  it('accepts only the four severities', () => {
    for (const severity of ['INFO', 'WARNING', 'ERROR', 'CRITICAL'])
      expect(check({ ...base, severity })).toEqual([]);
    const issues = check({ ...base, severity: 'info' });
    expect(issues.map((i) => i.path)).toEqual(['/severity', '/severity']);
  });

  it.each([
    ['203.0.113.7', true],
    ['::1', true],
    ['2001:db8::8a2e:370:7334', true],
    ['::ffff:192.0.2.1', true],
    ['256.1.1.1', false],
    ['1.2.3', false],
    ['01.2.3.4', false],
    ['1.2.3.4/24', false],
    ['fe80::1%eth0', false],
    ['example.com', false],
    ['', false],
  ])('ip_address %j valid=%s', (ip, valid) => {
    expect(check({ ...base, ip_address: ip })).toEqual(
      valid ? [] : [{ path: '/ip_address', message: 'must match format "ip"' }],
    );
  });

  it.each([
    ['00000000-0000-0000-0000-000000000000', true],
    ['A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', true],
    ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1', false],
    ['{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', false],
    ['a0eebc999c0b4ef8bb6d6bb9bd380a11', false],
    ['not-a-uuid', false],
  ])('id %j valid=%s', (id, valid) => {
    expect(check({ ...base, id })).toEqual(
      valid ? [] : [{ path: '/id', message: 'must match format "uuid"' }],
    );
  });

  it.each([
    '2026-11-28T10:15:00Z',
    '2026-11-28T10:15:00.123456789Z',
    '2026-11-28t10:15:00z',
    '2026-11-28T10:15:00+23:59',
    '2026-11-28T10:15:00-12:00',
    '1999-01-01T00:00:00Z',
    '0001-01-01T00:00:00Z',
    '2016-12-31T23:59:60Z',
  ])('accepts occurred_at %j', (occurred_at) => {
    expect(check({ ...base, occurred_at })).toEqual([]);
  });

  it.each([
    ['2026-11-28T10:15:00', 'must match format "date-time"'],
    ['2026-11-28', 'must match format "date-time"'],
    ['2026-02-30T00:00:00Z', 'must match format "date-time"'],
    ['2026-11-28T24:00:00Z', 'must match format "date-time"'],
    ['2026-11-28T10:15:00+24:00', 'must match format "date-time"'],
    ['yesterday', 'must match format "date-time"'],
    ['0000-06-01T00:00:00Z', 'is not a valid timestamp in years 0001 to 9999'],
    ['0001-01-01T00:00:00+01:00', 'is not a valid timestamp in years 0001 to 9999'],
  ])('rejects occurred_at %j', (occurred_at, message) => {
    expect(check({ ...base, occurred_at })).toEqual([{ path: '/occurred_at', message }]);
  });

  it('accepts up to 24 h in the future and rejects beyond', () => {
    const at = (ms: number) => new Date(NOW + ms).toISOString();
    expect(check({ ...base, occurred_at: at(LIMITS.futureSkewMs) })).toEqual([]);
    expect(check({ ...base, occurred_at: at(23 * 3600_000) })).toEqual([]);
    expect(check({ ...base, occurred_at: at(LIMITS.futureSkewMs + 1) })).toEqual([
      { path: '/occurred_at', message: 'is more than 24 h in the future' },
    ]);
    // The offset counts: 10:00+00:00 tomorrow is within range, 10:00-14:00 tomorrow is not.
    expect(check({ ...base, occurred_at: '2026-11-29T10:00:00+00:00' })).toEqual([]);
    expect(check({ ...base, occurred_at: '2026-11-29T10:00:00-14:00' })).toEqual([
      { path: '/occurred_at', message: 'is more than 24 h in the future' },
    ]);
  });

  it(`accepts objects ${LIMITS.objectDepth} levels deep and rejects deeper ones per field`, () => {
    expect(check({ ...base, metadata: nested(LIMITS.objectDepth) })).toEqual([]);
    expect(
      check({ ...base, before: nested(LIMITS.objectDepth + 1), metadata: nested(LIMITS.objectDepth + 1) }),
    ).toEqual([
      { path: '/before', message: `nested deeper than ${LIMITS.objectDepth} levels` },
      { path: '/metadata', message: `nested deeper than ${LIMITS.objectDepth} levels` },
    ]);
    // Arrays count as levels too.
    let arr: unknown = 1;
    for (let i = 0; i < LIMITS.objectDepth; i++) arr = [arr];
    expect(check({ ...base, after: { a: arr } })).toEqual([
      { path: '/after', message: `nested deeper than ${LIMITS.objectDepth} levels` },
    ]);
  });

  it('rejects absurdly deep objects without overflowing the stack', () => {
    expect(check({ ...base, metadata: nested(200_000) })).toEqual([
      { path: '/metadata', message: `nested deeper than ${LIMITS.objectDepth} levels` },
    ]);
  });

  it('accepts an event of exactly the byte limit and rejects one byte more', () => {
    const empty = Buffer.byteLength(JSON.stringify({ ...base, metadata: { pad: '' } }));
    const fits = { ...base, metadata: { pad: 'x'.repeat(LIMITS.eventBytes - empty) } };
    expect(Buffer.byteLength(JSON.stringify(fits))).toBe(LIMITS.eventBytes);
    expect(check(fits)).toEqual([]);
    const over = { ...base, metadata: { pad: `${fits.metadata.pad}é` } };
    const size = Buffer.byteLength(JSON.stringify(over));
    expect(size).toBe(LIMITS.eventBytes + 2);
    expect(check(over)).toEqual([
      { path: '', message: `event is ${size} bytes; the limit is ${LIMITS.eventBytes}` },
    ]);
  });

  it('rejects the NUL character anywhere, naming the path', () => {
    expect(check({ ...base, message: 'a\u0000b' })).toEqual([
      { path: '/message', message: 'must be well-formed Unicode without NUL characters' },
    ]);
    expect(check({ ...base, metadata: { outer: { 'a/b': ['ok', 'x\u0000'] } } })).toEqual([
      { path: '/metadata/outer/a~1b/1', message: 'must be well-formed Unicode without NUL characters' },
    ]);
    expect(check({ ...base, after: { 'k\u0000': 1 } })).toEqual([
      { path: '/after/k\u0000', message: 'must be well-formed Unicode without NUL characters' },
    ]);
    // The six characters "\u0000" are fine: only the real code point is refused.
    expect(check({ ...base, message: '\\u0000' })).toEqual([]);
  });

  it('rejects lone surrogates, which PostgreSQL would store as U+FFFD, but accepts real pairs', () => {
    expect(check({ ...base, user_agent: 'x\ud800y' })).toEqual([
      { path: '/user_agent', message: 'must be well-formed Unicode without NUL characters' },
    ]);
    expect(check({ ...base, metadata: { a: ['\udc00'] } })).toEqual([
      { path: '/metadata/a/0', message: 'must be well-formed Unicode without NUL characters' },
    ]);
    expect(check({ ...base, message: 'emoji 🧾 and 𝄞' })).toEqual([]);
  });

  it('bounds string lengths', () => {
    expect(check({ ...base, user_id: 'u'.repeat(256) })).toEqual([]);
    expect(check({ ...base, user_id: 'u'.repeat(257) })).toEqual([
      { path: '/user_id', message: 'must NOT have more than 256 characters' },
    ]);
    expect(check({ ...base, resource_type: '' })).toEqual([
      { path: '/resource_type', message: 'must NOT have fewer than 1 characters' },
    ]);
    expect(check({ ...base, tenant_id: 'Acme' })).toEqual([
      { path: '/tenant_id', message: 'must match pattern "^[a-z0-9][a-z0-9-]{0,62}$"' },
    ]);
  });
});

describe('utcTimestamp', () => {
  it.each([
    ['2026-11-28T10:15:00Z', '2026-11-28T10:15:00Z'],
    ['2026-11-28T10:15:00.123456789+01:00', '2026-11-28T09:15:00.123456789Z'],
    ['2026-11-28 00:30:00-02', '2026-11-28T02:30:00Z'],
    ['2026-11-28t23:45:00+0530', '2026-11-28T18:15:00Z'],
    ['2026-01-01T00:00:00+23:59', '2025-12-31T00:01:00Z'],
    ['0050-03-01T00:00:00Z', '0050-03-01T00:00:00Z'],
    ['2016-12-31T23:59:60Z', '2017-01-01T00:00:00Z'],
  ])('%j → %j', (input, iso) => {
    expect(utcTimestamp(input)?.iso).toBe(iso);
  });

  it('returns the instant in ms', () => {
    expect(utcTimestamp('2026-11-28T10:15:00.5+01:00')?.ms).toBe(Date.parse('2026-11-28T09:15:00.500Z'));
  });

  it.each(['2026-11-28T10:15:00', '0000-12-31T23:59:59Z', '9999-12-31T23:00:00-05:00', 'nope'])(
    'rejects %j',
    (input) => {
      expect(utcTimestamp(input)).toBeUndefined();
    },
  );
});
