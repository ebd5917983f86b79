import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, ConfigSchema, configureFromEnv } from './config.js';

/** Runs `configureFromEnv` and returns the ConfigError it throws; fails the test if it does not throw one. */
function configError(env: Record<string, string>): ConfigError {
  try {
    configureFromEnv(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  return expect.unreachable(`expected a ConfigError for ${JSON.stringify(env)}`);
}

describe('configureFromEnv', () => {
  it('defaults to the zero-setup embedded service', () => {
    const config = configureFromEnv({});
    expect({
      DATA_DIR: config.DATA_DIR,
      HOST: config.HOST,
      PORT: config.PORT,
      LOG_LEVEL: config.LOG_LEVEL,
      DATABASE_URL: config.DATABASE_URL,
      EMBEDDED_PG_PORT: config.EMBEDDED_PG_PORT,
      TRANSPORT: config.TRANSPORT,
      QUEUE_MAX_ATTEMPTS: config.QUEUE_MAX_ATTEMPTS,
      QUEUE_VISIBILITY_TIMEOUT_MS: config.QUEUE_VISIBILITY_TIMEOUT_MS,
      JWKS_URL: config.JWKS_URL,
      JWT_ISSUER: config.JWT_ISSUER,
      JWT_AUDIENCE: config.JWT_AUDIENCE,
      RATE_LIMIT_MAX: config.RATE_LIMIT_MAX,
      OPENSEARCH_URL: config.OPENSEARCH_URL,
    }).toEqual({
      DATA_DIR: path.resolve('./.data'),
      HOST: '127.0.0.1',
      PORT: 8080,
      LOG_LEVEL: 'info',
      DATABASE_URL: undefined,
      EMBEDDED_PG_PORT: 54329,
      TRANSPORT: 'embedded',
      QUEUE_MAX_ATTEMPTS: 5,
      QUEUE_VISIBILITY_TIMEOUT_MS: 30000,
      JWKS_URL: undefined,
      JWT_ISSUER: 'auditlog',
      JWT_AUDIENCE: 'auditlog',
      RATE_LIMIT_MAX: 12000,
      OPENSEARCH_URL: undefined,
    });
  });

  it('fills exactly the schema defaults, and nothing else, from an empty environment', () => {
    const defaults: Record<string, unknown> = {};
    for (const [name, prop] of Object.entries(ConfigSchema.properties)) {
      const def = (prop as { default?: unknown }).default;
      if (def !== undefined) defaults[name] = def;
    }
    expect(Object.keys(defaults).length).toBeGreaterThan(10);
    // DATA_DIR is the one default that is post-processed (made absolute).
    expect(configureFromEnv({})).toEqual({ ...defaults, DATA_DIR: path.resolve(String(defaults.DATA_DIR)) });
  });

  it('treats an empty string as unset', () => {
    const config = configureFromEnv({ PORT: '', LOG_LEVEL: '', DATABASE_URL: '' });
    expect(config.PORT).toBe(8080);
    expect(config.LOG_LEVEL).toBe('info');
    expect(config.DATABASE_URL).toBeUndefined();
  });

  it('coerces integers and booleans from their string form', () => {
    const config = configureFromEnv({
      PORT: '0',
      PG_POOL_MAX: '25',
      QUEUE_MAX_ATTEMPTS: '1',
      SQS_CREATE_QUEUES: 'TRUE',
      STAGE_RETRY_BASE_MS: '0',
    });
    expect(config.PORT).toBe(0);
    expect(config.PG_POOL_MAX).toBe(25);
    expect(config.QUEUE_MAX_ATTEMPTS).toBe(1);
    expect(config.SQS_CREATE_QUEUES).toBe(true);
    expect(config.STAGE_RETRY_BASE_MS).toBe(0);
    for (const [raw, value] of [
      ['1', true],
      ['yes', true],
      ['on', true],
      ['0', false],
      ['false', false],
      ['No', false],
      ['off', false],
    ] as const) {
      expect(configureFromEnv({ SQS_CREATE_QUEUES: raw }).SQS_CREATE_QUEUES).toBe(value);
    }
  });

  it('keeps optional strings and resolves DATA_DIR to an absolute path', () => {
    const config = configureFromEnv({
      DATA_DIR: 'some/rel',
      DATABASE_URL: 'postgresql://u:p@db:5432/audit',
      SQS_ENDPOINT: 'http://127.0.0.1:4566',
      JWKS_URL: 'https://issuer.example/.well-known/jwks.json',
      LOG_LEVEL: 'silent',
      TRANSPORT: 'sqs',
    });
    expect(config.DATA_DIR).toBe(path.resolve('some/rel'));
    expect(config.DATABASE_URL).toBe('postgresql://u:p@db:5432/audit');
    expect(config.SQS_ENDPOINT).toBe('http://127.0.0.1:4566');
    expect(config.JWKS_URL).toBe('https://issuer.example/.well-known/jwks.json');
    expect(config.LOG_LEVEL).toBe('silent');
    expect(config.TRANSPORT).toBe('sqs');
  });

  it('ignores variables it does not know', () => {
    const config = configureFromEnv({ PATH: '/usr/bin', NOT_OURS: 'x' });
    expect(Object.keys(config)).not.toContain('PATH');
    expect(Object.keys(config)).not.toContain('NOT_OURS');
  });

  it('returns a frozen object', () => {
    const config = configureFromEnv({});
    expect(Object.isFrozen(config)).toBe(true);
    expect(() => {
      (config as { PORT: number }).PORT = 1;
    }).toThrow(TypeError);
    expect(config.PORT).toBe(8080);
  });

  it.each([
    ['PORT', 'abc', 'PORT: must be integer (got "abc")'],
    ['PORT', '80.5', 'PORT: must be integer (got 80.5)'],
    ['PORT', '70000', 'PORT: must be <= 65535 (got 70000)'],
    ['PORT', '-1', 'PORT: must be >= 0 (got -1)'],
    ['EMBEDDED_PG_PORT', '0', 'EMBEDDED_PG_PORT: must be >= 1 (got 0)'],
    ['PG_POOL_MAX', '1', 'PG_POOL_MAX: must be >= 2 (got 1)'],
    ['QUEUE_MAX_ATTEMPTS', '0', 'QUEUE_MAX_ATTEMPTS: must be >= 1 (got 0)'],
    ['QUEUE_VISIBILITY_TIMEOUT_MS', '10', 'QUEUE_VISIBILITY_TIMEOUT_MS: must be >= 1000 (got 10)'],
    ['STAGE_RECEIVE_MAX', '101', 'STAGE_RECEIVE_MAX: must be <= 100 (got 101)'],
    ['STAGE_CONCURRENCY', 'two', 'STAGE_CONCURRENCY: must be integer (got "two")'],
    ['STAGE_RETRY_BASE_MS', '-5', 'STAGE_RETRY_BASE_MS: must be >= 0 (got -5)'],
    ['RATE_LIMIT_MAX', '0', 'RATE_LIMIT_MAX: must be >= 1 (got 0)'],
    ['RATE_LIMIT_WINDOW_MS', '999', 'RATE_LIMIT_WINDOW_MS: must be >= 1000 (got 999)'],
    ['PARTITION_DAYS_AHEAD', '366', 'PARTITION_DAYS_AHEAD: must be <= 365 (got 366)'],
    ['SQS_CREATE_QUEUES', 'maybe', 'SQS_CREATE_QUEUES: must be boolean (got "maybe")'],
    [
      'LOG_LEVEL',
      'loud',
      'LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent (got "loud")',
    ],
    ['TRANSPORT', 'kafka', 'TRANSPORT: must be one of embedded, sqs (got "kafka")'],
    [
      'DATABASE_URL',
      'mysql://db/x',
      'DATABASE_URL: must match pattern "^postgres(ql)?://" (got "mysql://db/x")',
    ],
    [
      'SQS_ENDPOINT',
      'localhost:4566',
      'SQS_ENDPOINT: must match pattern "^https?://" (got "localhost:4566")',
    ],
    ['JWKS_URL', 'ftp://x', 'JWKS_URL: must match pattern "^https?://" (got "ftp://x")'],
    ['OPENSEARCH_URL', 'os:9200', 'OPENSEARCH_URL: must match pattern "^https?://" (got "os:9200")'],
    [
      'SQS_QUEUE_PREFIX',
      'bad prefix!',
      'SQS_QUEUE_PREFIX: must match pattern "^[A-Za-z0-9_-]{1,60}$" (got "bad prefix!")',
    ],
  ])('rejects %s=%j with a message naming it', (name, raw, line) => {
    const err = configError({ [name]: raw });
    expect(err.name).toBe('ConfigError');
    expect(err.message).toBe(`invalid configuration:\n  ${line}`);
  });

  it('names the variable for a wrong value of every typed variable in the schema', () => {
    let checked = 0;
    for (const [name, prop] of Object.entries(ConfigSchema.properties)) {
      const p = prop as { type?: string; anyOf?: { const: unknown }[]; pattern?: string };
      let raw: string | undefined;
      let message: string | undefined;
      if (p.type === 'integer') [raw, message] = ['not-a-number', 'must be integer'];
      else if (p.type === 'boolean') [raw, message] = ['maybe', 'must be boolean'];
      else if (p.anyOf) [raw, message] = ['zzz', `must be one of ${p.anyOf.map((a) => a.const).join(', ')}`];
      else if (p.pattern) [raw, message] = ['!!', `must match pattern "${p.pattern}"`];
      if (raw === undefined) continue;
      expect(configError({ [name]: raw }).message).toBe(
        `invalid configuration:\n  ${name}: ${message} (got ${JSON.stringify(raw)})`,
      );
      checked++;
    }
    expect(checked).toBeGreaterThan(15);
  });

  it('lists every invalid variable at once, one line each', () => {
    const err = configError({ PORT: 'x', TRANSPORT: 'kafka', PG_POOL_MAX: '1' });
    expect(err.message.split('\n').slice(1).sort()).toEqual([
      '  PG_POOL_MAX: must be >= 2 (got 1)',
      '  PORT: must be integer (got "x")',
      '  TRANSPORT: must be one of embedded, sqs (got "kafka")',
    ]);
  });

  it('never echoes URL credentials in the error', () => {
    const err = configError({ DATABASE_URL: 'mysql://admin:s3cret-pw@db:3306/x' });
    expect(err.message).not.toContain('s3cret-pw');
    expect(err.message).toBe(
      'invalid configuration:\n  DATABASE_URL: must match pattern "^postgres(ql)?://" (got "mysql://***@db:3306/x")',
    );
  });
});
