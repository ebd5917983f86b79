import { describe, expect, it } from 'vitest';
import { luhnValid } from './luhn.js';
import { buildMaskRules, createMasker, DEFAULT_MASK_RULES, MAX_MASK_DEPTH, type MaskRules } from './rules.js';

const mask = createMasker(DEFAULT_MASK_RULES);
const text = (message: string): string => mask({ message }).message!;
const meta = (metadata: Record<string, unknown>): Record<string, unknown> => mask({ metadata }).metadata!;

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

describe('secret keys', () => {
  it.each([
    'password',
    'Password',
    'PASSWORD',
    'userPassword',
    'db_password',
    'password_hash',
    'passwd',
    'pwd',
    'passphrase',
    'secret',
    'client_secret',
    'clientSecret',
    'token',
    'access_token',
    'refreshToken',
    'session_token',
    'token_count',
    'api_key',
    'apikey',
    'api-key',
    'apiKey',
    'X-Api-Key',
    'API_KEY',
    'authorization',
    'Authorization',
    'access_key',
    'aws_access_key_id',
    'private_key',
    'privateKey',
    'cookie',
    'Set-Cookie',
    'credit_card',
    'creditCardNumber',
    'card_number',
    'cardNumber',
    'cvv',
    'CVV2',
    'card_cvc',
    'ssn',
    'SSN',
    'userSSN',
    'customer_ssn',
    'ssn_last4',
    'ssns',
  ])('masks the value under %s', (key) => {
    expect(meta({ [key]: 'v', keep: 'k' })).toEqual({ [key]: '[REDACTED]', keep: 'k' });
  });

  it.each([
    'username',
    'email',
    'className',
    'businessName',
    'classname',
    'author',
    'monkey',
    'keyboard',
    'passenger',
    'compass',
    'description',
    'cvvx',
    'id',
  ])('leaves %s alone (short keys match whole words only; no over-broad defaults)', (key) => {
    expect(meta({ [key]: 'v' })).toEqual({ [key]: 'v' });
  });

  it('replaces the whole value whatever its type', () => {
    expect(
      meta({
        password: 'hunter2',
        token: 12345,
        secret: true,
        api_key: null,
        credit_card: { number: '4111111111111111', exp: '12/30' },
        cookie: ['a=b', 'c=d'],
      }),
    ).toEqual({
      password: '[REDACTED]',
      token: '[REDACTED]',
      secret: '[REDACTED]',
      api_key: '[REDACTED]',
      credit_card: '[REDACTED]',
      cookie: '[REDACTED]',
    });
  });

  it('masks keys and strings at every depth, inside arrays too', () => {
    const event = {
      metadata: {
        user: { name: 'Ann', auth: { password: 'p', mfa: { totp_secret: 'JBSWY3DP' } } },
        contacts: ['ann@example.com', 'not an email', ['bob@example.org']],
        rows: [{ id: 1, apiKey: 'k1' }, { id: 2 }, [{ ssn: '078-05-1120' }]],
      },
      before: { card: '4111 1111 1111 1111' },
      after: { card: '4111-1111-1111-1111', note: 'called with Bearer abc123' },
    };
    expect(mask(event)).toEqual({
      metadata: {
        user: { name: 'Ann', auth: { password: '[REDACTED]', mfa: { totp_secret: '[REDACTED]' } } },
        contacts: ['a***@example.com', 'not an email', ['b***@example.org']],
        rows: [{ id: 1, apiKey: '[REDACTED]' }, { id: 2 }, [{ ssn: '[REDACTED]' }]],
      },
      before: { card: '[CARD ****1111]' },
      after: { card: '[CARD ****1111]', note: 'called with Bearer [REDACTED]' },
    });
  });

  it('redacts whole containers nested beyond MAX_MASK_DEPTH (fail closed)', () => {
    let deep: Record<string, unknown> = { leaf: 'x' };
    for (let i = 0; i < MAX_MASK_DEPTH + 5; i++) deep = { d: deep };
    let node = mask({ metadata: deep }).metadata as Record<string, unknown>;
    for (let i = 0; i < MAX_MASK_DEPTH - 1; i++) node = node['d'] as Record<string, unknown>;
    expect(node).toEqual({ d: '[REDACTED]' });
  });

  it('treats a JSON "__proto__" key as data, without touching prototypes', () => {
    const metadata = JSON.parse('{"__proto__": {"password": "x", "ok": 1}}') as Record<string, unknown>;
    const out = meta(metadata);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(out, '__proto__')?.value).toEqual({
      password: '[REDACTED]',
      ok: 1,
    });
    expect(({} as Record<string, unknown>)['password']).toBeUndefined();
  });
});

describe('credit cards', () => {
  it.each([
    ['4111111111111111', '[CARD ****1111]'],
    ['4111 1111 1111 1111', '[CARD ****1111]'],
    ['4111-1111-1111-1111', '[CARD ****1111]'],
    ['4111 1111-1111 1111', '[CARD ****1111]'],
    ['5500 0000 0000 0004', '[CARD ****0004]'],
    ['378282246310005', '[CARD ****0005]'],
    ['3782 822463 10005', '[CARD ****0005]'],
    ['4222222222222', '[CARD ****2222]'],
    ['6304 0000 0000 0000 000', '[CARD ****0000]'],
    ['paid with 6011111111111117.', 'paid with [CARD ****1117].'],
    ['card:4111111111111111,exp', 'card:[CARD ****1111],exp'],
  ])('masks Luhn-valid %s', (input, expected) => {
    expect(text(input)).toBe(expected);
  });

  it.each([
    'order 1234567812345678 shipped',
    'order 1234-5678-1234-5678',
    '4111111111111112',
    '411111111111', // 12 digits
    '41111111111111111111', // 20 digits, one group: an id, not a card
    'id4111111111111111',
    '4111111111111111abc',
    'values 1 2 3 4 5 6 7 8 9 10 11 12 13 14',
    '2026-11-28 10:15:00',
  ])('leaves %s alone', (input) => {
    expect(text(input)).toBe(input);
  });

  it('finds a card inside a longer run of numbers, keeping the rest', () => {
    expect(text('ref 12 4111111111111111')).toBe('ref 12 [CARD ****1111]');
    expect(text('1234 4111 1111 1111 1111 5678')).toBe('1234 [CARD ****1111] 5678');
    expect(text('4111111111111111 4111111111111111')).toBe('[CARD ****1111] [CARD ****1111]');
  });

  it('prefers the longest valid window', () => {
    // Both the first 16 digits and all 19 are Luhn-valid.
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('4111111111111111110')).toBe(true);
    expect(text('4111 1111 1111 1111 110')).toBe('[CARD ****1110]');
  });

  it('implements Luhn', () => {
    expect(luhnValid('79927398713')).toBe(true);
    expect(luhnValid('79927398710')).toBe(false);
    expect(luhnValid('')).toBe(false);
    expect(luhnValid('12a4')).toBe(false);
  });
});

describe('string patterns', () => {
  it.each([
    ['Authorization: Bearer abc123', 'Authorization: Bearer [REDACTED]'],
    ['sent bearer abc.DEF-ghi_~+/== to api', 'sent bearer [REDACTED] to api'],
    ['Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln', 'Bearer [REDACTED]'],
  ])('bearer: %s', (input, expected) => {
    expect(text(input)).toBe(expected);
  });

  it.each([
    ['jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4fwpM end', 'jwt [JWT] end'],
    ['unsigned eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0. ok', 'unsigned [JWT] ok'],
    ['id_token=eyJhbGciOiJSUzI1NiJ9.eyJhIjoxfQ.sig', 'id_token=[REDACTED]'],
    ['not a jwt: eyJhbGciOiJIUzI1NiJ9 alone', 'not a jwt: eyJhbGciOiJIUzI1NiJ9 alone'],
    ['xeyJa.b.c', 'xeyJa.b.c'],
  ])('jwt: %s', (input, expected) => {
    expect(text(input)).toBe(expected);
  });

  it.each([
    ['key AKIAIOSFODNN7EXAMPLE used', 'key [AWS_KEY] used'],
    ['temp ASIAY34FZKBOKMUTVV7A.', 'temp [AWS_KEY].'],
    ['AKIAIOSFODNN7EXAMPLEX', 'AKIAIOSFODNN7EXAMPLEX'],
    ['AKIAIOSFODNN7EXAMPL', 'AKIAIOSFODNN7EXAMPL'],
  ])('aws access key id: %s', (input, expected) => {
    expect(text(input)).toBe(expected);
  });

  it.each([
    ['aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'aws_secret_access_key=[REDACTED]'],
    [
      'AWS_SECRET_ACCESS_KEY = wJalrXUtnFEMI/K7MDENG+bPxRfiCY== next',
      'AWS_SECRET_ACCESS_KEY = [REDACTED] next',
    ],
    ['{"awsSecretAccessKey": "wJalrXUtnFEMI"}', '{"awsSecretAccessKey": "[REDACTED]"}'],
  ])('aws secret access key: %s', (input, expected) => {
    expect(text(input)).toBe(expected);
  });

  it.each([
    ['john.doe@example.com', 'j***@example.com'],
    ['mail John.Doe+tag@mail.example.co.uk, thanks.', 'mail J***@mail.example.co.uk, thanks.'],
    ['<a@b.io>', '<a***@b.io>'],
    ['two: x@example.com y_z@example.org', 'two: x***@example.com y***@example.org'],
    ['user@localhost', 'user@localhost'],
    ['@handle and a@b', '@handle and a@b'],
  ])('email: %s', (input, expected) => {
    expect(text(input)).toBe(expected);
  });

  it.each([
    [
      'postgres://admin:s3cr3t@db.example.com:5432/app',
      'postgres://admin:[REDACTED]@db.example.com:5432/app',
    ],
    ['redis://:p4ss@cache:6379', 'redis://:[REDACTED]@cache:6379'],
    ['https://u:p@ss#w0rd@host/x', 'https://u:[REDACTED]@host/x'],
    ['https://user@example.com/x', 'https://u***@example.com/x'],
    ['https://example.com:8443/path', 'https://example.com:8443/path'],
  ])('url password: %s', (input, expected) => {
    expect(text(input)).toBe(expected);
  });

  it('private keys', () => {
    const pem = '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nq9Zk+/x==\n-----END RSA PRIVATE KEY-----';
    expect(text(`key ${pem} done`)).toBe('key [PRIVATE_KEY] done');
    expect(text('truncated -----BEGIN PRIVATE KEY-----\nMIIEowIB')).toBe('truncated [PRIVATE_KEY]');
  });

  it.each([
    ['login password=hunter2 user=bob', 'login password=[REDACTED] user=bob'],
    ['?api_key=abc123&page=2', '?api_key=[REDACTED]&page=2'],
    [
      '{"password":"a b c","token":42,"user":"bob"}',
      '{"password":"[REDACTED]","token":[REDACTED],"user":"bob"}',
    ],
    ["{'secret': 'x'}", "{'secret': '[REDACTED]'}"],
    ['{\\"password\\":\\"hunter2\\"}', '{\\"password\\":\\"[REDACTED]\\"}'],
    ['run --db-password=hunter2 now', 'run --db-password=[REDACTED] now'],
    ['X-Api-Key: abc123', 'X-Api-Key: [REDACTED]'],
    ['Authorization: Basic dXNlcjpwYXNz', 'Authorization: Basic [REDACTED]'],
    ['Cookie: sid=abc; theme=dark', 'Cookie: [REDACTED]; theme=dark'],
    ['a=password=x', 'a=password=[REDACTED]'],
    ['password="never closed', 'password="[REDACTED] closed'],
    ['card_number: 4111 1111 1111 1111', 'card_number: [REDACTED]'],
    ['ssn: 078-05-1120', 'ssn: [REDACTED]'],
    ['password reset requested', 'password reset requested'],
    ['className=big time=10:00:00', 'className=big time=10:00:00'],
  ])('secret assignment in text: %s', (input, expected) => {
    expect(text(input)).toBe(expected);
  });

  it('combines rules in one message', () => {
    expect(
      text(
        'User jane@corp.com paid 4111-1111-1111-1111 (order 1234567812345678) via ' +
          'https://api:k3y@pay.example.com with Bearer tok_123 and AKIAIOSFODNN7EXAMPLE',
      ),
    ).toBe(
      'User j***@corp.com paid [CARD ****1111] (order 1234567812345678) via ' +
        'https://api:[REDACTED]@pay.example.com with Bearer [REDACTED] and [AWS_KEY]',
    );
  });
});

describe('createMasker', () => {
  it('masks only message, metadata, before and after', () => {
    const event = {
      id: '4111111111111111',
      user_id: 'john@example.com',
      resource_id: 'password=x',
      message: 'by john@example.com',
    };
    expect(mask(event)).toEqual({
      id: '4111111111111111',
      user_id: 'john@example.com',
      resource_id: 'password=x',
      message: 'by j***@example.com',
    });
  });

  it('never mutates its input and shares untouched subtrees', () => {
    const input = deepFreeze({
      message: 'Bearer abc',
      metadata: { clean: { a: [1, 2, { b: 'plain' }] }, dirty: { password: 'x' }, list: ['ok', 'a@b.co'] },
      before: { status: 'pending' },
    });
    const snapshot = structuredClone(input);
    const out = mask(input);
    expect(input).toEqual(snapshot);
    expect(out).not.toBe(input);
    expect(out.metadata.clean).toBe(input.metadata.clean);
    expect(out.before).toBe(input.before);
    expect(out.metadata.dirty).toEqual({ password: '[REDACTED]' });
    expect(out.metadata.list).toEqual(['ok', 'a***@b.co']);
  });

  it('is idempotent: masking twice equals masking once', () => {
    const corpus = [
      'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln',
      'pay 4111 1111 1111 1111 and 3782 822463 10005, order 1234567812345678',
      'card_number=4111111111111111 password="a b" token: eyJa.eyJb.c api_key=AKIAIOSFODNN7EXAMPLE',
      'aws_secret_access_key=wJalrXUtnFEMI/K7MDENG john.doe@example.com postgres://u:p@h/db',
      '{\\"secret\\":\\"x\\"} Cookie: a=b; c=d -----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----',
      'password="unterminated https://user@example.com',
    ];
    const event = {
      message: corpus.join(' | '),
      metadata: { lines: corpus, nested: { password: 'x', deeper: [{ token: 1, text: corpus[1] }] } },
      before: { note: corpus[2] },
      after: { note: corpus[3] },
    };
    const once = mask(event);
    expect(once.message).not.toBe(event.message);
    expect(mask(once)).toEqual(once);
    for (const line of corpus) expect(text(text(line))).toBe(text(line));
  });

  it('accepts hand-written rules with non-global regexes and reports groups as strings', () => {
    const seen: string[][] = [];
    const rules: MaskRules = {
      keys: ['Tenant_Secret'],
      patterns: [
        {
          name: 'order',
          regex: /ORD-(\d+)(x)?/,
          replace: (_m, ...groups) => {
            seen.push(groups);
            return 'ORD-#';
          },
        },
      ],
    };
    const m = createMasker(rules);
    expect(m({ message: 'ORD-1 ORD-22', metadata: { tenantSecret: 1, password: 2 } })).toEqual({
      message: 'ORD-# ORD-#',
      metadata: { tenantSecret: '[REDACTED]', password: 2 },
    });
    expect(seen).toEqual([
      ['1', ''],
      ['22', ''],
    ]);
  });

  it('masks 64 KiB adversarial strings (ReDoS safety: completes, no catastrophic backtracking)', () => {
    const size = 64 * 1024;
    const fill = (unit: string): string => unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
    const inputs = [
      fill('a'),
      fill('1'),
      fill('1') + 'x',
      fill('4111 '),
      fill('1-'),
      fill('a@'),
      'a@' + fill('a.'),
      fill('a.b-c+d%e_'),
      fill('a://b:'),
      fill('a://b:c@'),
      'a://:' + fill('b'),
      fill('Bearer '),
      'Bearer' + fill(' '),
      fill('eyJa.'),
      'eyJ' + fill('a.'),
      fill('AKIA'),
      fill('aws_secret_access_key: "'),
      fill('a:'),
      fill('password="'),
      'x:"' + fill('a:a '),
      fill('password=\\"'),
      fill(`${'a'.repeat(70)}:`),
      fill('-----BEGIN PRIVATE KEY-----'),
      fill('x@y.co 4111 1111 1111 1111 password=a Bearer b eyJa.b.c AKIAIOSFODNN7EXAMPLE a://u:p@h '),
    ];
    for (const input of inputs) {
      const out = mask({ message: input, metadata: { v: [input] } });
      expect(typeof out.message).toBe('string');
    }
    expect(text(fill('a'))).toBe(fill('a'));
  });
});

describe('buildMaskRules', () => {
  it('starts from the defaults without mutating them', () => {
    const keysBefore = [...DEFAULT_MASK_RULES.keys];
    const rules = buildMaskRules(['tenant_pin']);
    expect(rules.keys).toEqual([...keysBefore, 'tenantpin']);
    expect(rules.patterns.map((p) => p.name)).toEqual(DEFAULT_MASK_RULES.patterns.map((p) => p.name));
    expect(DEFAULT_MASK_RULES.keys).toEqual(keysBefore);
    expect(Object.isFrozen(DEFAULT_MASK_RULES.keys)).toBe(true);
  });

  it('adds extra keys (normalized, deduplicated, blanks ignored) that also apply inside text', () => {
    const rules = buildMaskRules([' Internal-Note ', '', 'PASSWORD', 'pin']);
    expect(rules.keys.filter((k) => k === 'password')).toHaveLength(1);
    const m = createMasker(rules);
    expect(
      m({
        message: 'internal_note=call me pin: 1234',
        metadata: { internalNote: 'x', pin: 1234, user_pin: 1, spinner: true },
      }),
    ).toEqual({
      message: 'internal_note=[REDACTED] me pin: [REDACTED]',
      metadata: { internalNote: '[REDACTED]', pin: '[REDACTED]', user_pin: '[REDACTED]', spinner: true },
    });
  });

  it('adds keys and patterns from a rules file, run after the built-in ones', () => {
    const rules = buildMaskRules([], {
      keys: ['iban'],
      patterns: [
        { name: 'employee-id', regex: 'EMP-(\\d{2})\\d+', replacement: 'EMP-$1**' },
        { name: 'project', regex: 'project\\s+(\\w+)', flags: 'i', replacement: '$$[$&]' },
      ],
    });
    expect(rules.patterns.slice(-2).map((p) => p.name)).toEqual(['employee-id', 'project']);
    const m = createMasker(rules);
    expect(m({ message: 'EMP-123456 on Project apollo', metadata: { IBAN: 'DE89...' } })).toEqual({
      message: 'EMP-12** on $[Project apollo]',
      metadata: { IBAN: '[REDACTED]' },
    });
  });

  it.each<[string, unknown, string]>([
    ['file not an object', [], 'rules file must be a JSON object'],
    ['null file', null, 'rules file must be a JSON object'],
    ['unknown field', { key: ['x'] }, 'unknown field "key"'],
    ['keys not an array', { keys: 'x' }, '"keys" must be an array of strings'],
    ['key not a string', { keys: [1] }, '"keys"[0] must be a string'],
    ['key without letters', { keys: ['__'] }, 'has no ASCII letters or digits'],
    ['patterns not an array', { patterns: {} }, '"patterns" must be an array'],
    [
      'pattern without name',
      { patterns: [{ regex: 'x', replacement: '' }] },
      '"name" must be a non-empty string',
    ],
    [
      'unknown pattern field',
      { patterns: [{ name: 'a', regex: 'x', replacement: '', re: 1 }] },
      'unknown field "re"',
    ],
    ['invalid regex', { patterns: [{ name: 'bad', regex: '(unclosed', replacement: 'x' }] }, 'invalid regex'],
    ['sticky flag', { patterns: [{ name: 'a', regex: 'x', flags: 'y', replacement: '' }] }, '"flags"'],
    ['bad flag', { patterns: [{ name: 'a', regex: 'x', flags: 'q', replacement: '' }] }, '"flags"'],
    ['empty match', { patterns: [{ name: 'a', regex: 'x*', replacement: '' }] }, 'matches the empty string'],
    ['missing replacement', { patterns: [{ name: 'a', regex: 'x' }] }, '"replacement" must be a string'],
    ['missing group', { patterns: [{ name: 'a', regex: '(x)', replacement: '$2' }] }, 'references $2'],
    [
      'named reference',
      { patterns: [{ name: 'a', regex: '(?<n>x)', replacement: '$<n>' }] },
      'not supported',
    ],
    [
      'duplicate name',
      { patterns: [{ name: 'email', regex: 'x', replacement: '' }] },
      'duplicate pattern name',
    ],
  ])('rejects %s', (_label, file, message) => {
    expect(() => buildMaskRules([], file)).toThrow(message);
  });

  it('names the offending pattern in the error', () => {
    expect(() =>
      buildMaskRules([], { patterns: [{ name: 'broken-one', regex: '[a-', replacement: 'x' }] }),
    ).toThrow(/^Invalid mask rules: rules file "patterns"\[0\] \("broken-one"\): invalid regex: /);
  });

  it('rejects non-string extra keys', () => {
    expect(() => buildMaskRules([42 as unknown as string])).toThrow('extra keys[0] must be a string');
  });
});
