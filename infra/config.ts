import path from 'node:path';
import Type, { type Static } from 'typebox';
import { Compile } from 'typebox/compile';

/**
 * Every environment variable the service reads, with its default. This schema is the one place
 * configuration is described: the parser, the TypeScript type and the README table derive from it.
 * Values arrive as strings; `configureFromEnv` converts numbers and booleans before validation.
 */
export const ConfigSchema = Type.Object({
  /** Folder for embedded PostgreSQL data, the master key file and the JWT signing key. Default `./.data`. */
  DATA_DIR: Type.String({ default: './.data', minLength: 1 }),
  /** Interface the HTTP server binds to. Default `127.0.0.1`. */
  HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  /** HTTP port. `0` picks a free port. Default `8080`. */
  PORT: Type.Integer({ default: 8080, minimum: 0, maximum: 65535 }),
  /** pino log level. Default `info`. */
  LOG_LEVEL: Type.Union(
    [
      Type.Literal('fatal'),
      Type.Literal('error'),
      Type.Literal('warn'),
      Type.Literal('info'),
      Type.Literal('debug'),
      Type.Literal('trace'),
      Type.Literal('silent'),
    ],
    { default: 'info' },
  ),
  /** PostgreSQL connection string. When unset, an embedded PostgreSQL is started under `DATA_DIR/pg`. */
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  /**
   * Port of the embedded PostgreSQL (only when `DATABASE_URL` is unset). Default `54329`. It listens on `127.0.0.1` at this port (for `psql` and other tools) and on a Unix socket in `DATA_DIR/pg`, which the daemons use (TCP instead when that path is longer than the 107 bytes Linux allows).
   */
  EMBEDDED_PG_PORT: Type.Integer({ default: 54329, minimum: 1, maximum: 65535 }),
  /** Connections per process in the PostgreSQL pool (reads wait for one while the stages of the same process hold theirs). Default `20`. */
  PG_POOL_MAX: Type.Integer({ default: 20, minimum: 2, maximum: 200 }),
  /** Queue transport between stages: `embedded` (PostgreSQL-backed, durable) or `sqs`. Default `embedded`. */
  TRANSPORT: Type.Union([Type.Literal('embedded'), Type.Literal('sqs')], { default: 'embedded' }),
  /** Delivery attempts before a message is dead-lettered. Default `5`. */
  QUEUE_MAX_ATTEMPTS: Type.Integer({ default: 5, minimum: 1, maximum: 1000 }),
  /** How long a received message stays invisible to other consumers, in ms. Extended while a batch runs. Default `30000`. */
  QUEUE_VISIBILITY_TIMEOUT_MS: Type.Integer({ default: 30000, minimum: 1000 }),
  /** Messages a stage takes per receive (SQS hands out at most 10 per call; the embedded queue also stops at 8 MiB of bodies). Default `50`. */
  STAGE_RECEIVE_MAX: Type.Integer({ default: 50, minimum: 1, maximum: 100 }),
  /** Concurrent receive loops per stage process: while one loop's batch is in PostgreSQL, another's is encrypted (many tenants with small batches gain most; measured 2026-12-02, stream bench: ack→delivery p99 0.9–2.3 s with 3 loops, 3.4–3.5 with 2, 1.9–2.7 with 4; bulk ingest drain unchanged). Default `3`. */
  STAGE_CONCURRENCY: Type.Integer({ default: 3, minimum: 1, maximum: 64 }),
  /** In a daemon that also serves HTTP (ingest, query or stream, e.g. `all`), run the stages in a worker thread: they use a second core and never delay a request. Default `true`. */
  STAGE_WORKER: Type.Boolean({ default: true }),
  /** Base retry backoff for a failed batch, in ms (doubles per attempt, jittered). Default `500`. */
  STAGE_RETRY_BASE_MS: Type.Integer({ default: 500, minimum: 0 }),
  /** Worker threads that decrypt export rows beside the query service's event loop (`0`: decrypt on the event loop). Default `1`. */
  EXPORT_DECRYPT_THREADS: Type.Integer({ default: 1, minimum: 0, maximum: 16 }),
  /** AWS region for SQS. Default `us-east-1`. */
  SQS_REGION: Type.String({ default: 'us-east-1' }),
  /** SQS endpoint override, e.g. for ElasticMQ or fauxqs. */
  SQS_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://' })),
  /** Prefix of the FIFO queue names: `<prefix>-<hop>.fifo` and `<prefix>-<hop>-dlq.fifo`. Default `auditlog`. */
  SQS_QUEUE_PREFIX: Type.String({ default: 'auditlog', pattern: '^[A-Za-z0-9_-]{1,60}$' }),
  /** Create the queues and their DLQs at start (development only). Default `false`. */
  SQS_CREATE_QUEUES: Type.Boolean({ default: false }),
  /** JWKS endpoint for production token verification (asymmetric algorithms only). */
  JWKS_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  /** Required `iss` claim. Default `auditlog`. */
  JWT_ISSUER: Type.String({ default: 'auditlog', minLength: 1 }),
  /** Required `aud` claim. Default `auditlog`. */
  JWT_AUDIENCE: Type.String({ default: 'auditlog', minLength: 1 }),
  /** Requests per token per rate-limit window. Default `12000`. */
  RATE_LIMIT_MAX: Type.Integer({ default: 12000, minimum: 1 }),
  /** Rate-limit window in ms. Default `60000`. */
  RATE_LIMIT_WINDOW_MS: Type.Integer({ default: 60000, minimum: 1000 }),
  /** Extra key names (comma list, case-insensitive substrings) whose values the mask stage redacts. */
  MASK_EXTRA_KEYS: Type.String({ default: '' }),
  /** Optional JSON file with extra mask rules: `{"keys": [...], "patterns": [{"name", "regex", "replacement"}]}`. */
  MASK_RULES_FILE: Type.Optional(Type.String({ minLength: 1 })),
  /** Days each new `events` partition spans (UTC; 7 gives Monday-to-Monday weeks). Existing partitions keep their span. Default `7`. */
  PARTITION_DAYS: Type.Integer({ default: 7, minimum: 1, maximum: 31 }),
  /** Days ahead of today that have their partition from the start (checked hourly). Default `7`. */
  PARTITION_DAYS_AHEAD: Type.Integer({ default: 7, minimum: 1, maximum: 365 }),
  /** OpenSearch endpoint. When set, the index stage indexes events and the query service uses it for `q`. */
  OPENSEARCH_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  /** Prefix of OpenSearch names: alias `<prefix>-<tenant>` over index `<prefix>-<tenant>_v1`. Default `auditlog-events`. */
  OPENSEARCH_INDEX_PREFIX: Type.String({ default: 'auditlog-events', pattern: '^[a-z][a-z0-9-]{0,62}$' }),
  /** Retries of an OpenSearch request or bulk item on 429, 5xx or a connection error (exponential backoff). Default `5`. */
  OPENSEARCH_MAX_RETRIES: Type.Integer({ default: 5, minimum: 0, maximum: 20 }),
  /** Most events a `user`-role stats request may aggregate (it reads the caller's own events, not rollups). Default `100000`. */
  STATS_USER_MAX_EVENTS: Type.Integer({ default: 100000, minimum: 1 }),
  /** Counts of settled rollup buckets (ended 2 h ago or earlier: per user, per breakdown value, per bucket) a query process keeps for tenant-wide stats, about 100 bytes each; `0` turns the cache off. Default `200000`. */
  STATS_CACHE_MAX_COUNTS: Type.Integer({ default: 200000, minimum: 0 }),
  /** Stream: bytes a client may have unsent in its socket buffer before it is cut off as a slow consumer (close 4008). Default `1048576` (1 MiB). */
  STREAM_MAX_BUFFERED_BYTES: Type.Integer({ default: 1048576, minimum: 1024 }),
  /** Stream: messages a client may have queued but not yet written before it is cut off as a slow consumer. Default `1000`. */
  STREAM_MAX_QUEUE: Type.Integer({ default: 1000, minimum: 1 }),
  /** Stream: ping interval in ms; a client that has not answered the previous ping is terminated. Default `30000`. */
  STREAM_HEARTBEAT_MS: Type.Integer({ default: 30000, minimum: 100 }),
  /** Stream: close a connection after this many ms with no event sent and no message received (close 4000); `0` never. Default `900000`. */
  STREAM_IDLE_TIMEOUT_MS: Type.Integer({ default: 900000, minimum: 0 }),
  /** Stream: most concurrent WebSocket clients per stream instance; more are refused with 503. Default `10000`. */
  STREAM_MAX_CONNECTIONS: Type.Integer({ default: 10000, minimum: 1 }),
});

export type Config = Readonly<Static<typeof ConfigSchema>>;

const checker = Compile(ConfigSchema);

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function coerce(name: string, raw: string): unknown {
  const prop = (ConfigSchema.properties as Record<string, { type?: string; anyOf?: unknown }>)[name];
  const type = prop?.type;
  if (type === 'integer' || type === 'number') {
    const n = Number(raw);
    return raw.trim() !== '' && Number.isFinite(n) ? n : raw;
  }
  if (type === 'boolean') {
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    return raw;
  }
  return raw;
}

/** A rejected value as shown in the error; URL credentials (e.g. a DATABASE_URL password) are redacted. */
function shown(value: unknown): string {
  return JSON.stringify(value)?.replace(/\/\/[^/@\s]*@/, '//***@') ?? 'nothing';
}

/**
 * Parses configuration from an environment record. Pure: pass `process.env` at the process edge,
 * or a literal record in tests. Throws `ConfigError` listing every invalid variable.
 */
export function configureFromEnv(env: Record<string, string | undefined>): Config {
  const input: Record<string, unknown> = {};
  for (const name of Object.keys(ConfigSchema.properties)) {
    const raw = env[name];
    if (raw !== undefined && raw !== '') input[name] = coerce(name, raw);
  }
  for (const [name, prop] of Object.entries(ConfigSchema.properties)) {
    const def = (prop as { default?: unknown }).default;
    if (input[name] === undefined && def !== undefined) input[name] = def;
  }
  if (!checker.Check(input)) {
    // One line per variable: a union of literals reports each failed branch, which reads as noise.
    const problems = new Map<string, string>();
    for (const e of checker.Errors(input)) {
      const name = e.instancePath.replace(/^\//, '') || (e.params && JSON.stringify(e.params));
      if (problems.has(name)) continue;
      const allowed = (ConfigSchema.properties as Record<string, { anyOf?: { const?: unknown }[] }>)[name]
        ?.anyOf;
      const message = allowed ? `must be one of ${allowed.map((a) => a.const).join(', ')}` : e.message;
      problems.set(name, `${name}: ${message} (got ${shown(input[name])})`);
    }
    throw new ConfigError(`invalid configuration:\n  ${[...problems.values()].join('\n  ')}`);
  }
  const config = input as Static<typeof ConfigSchema>;
  config.DATA_DIR = path.resolve(config.DATA_DIR);
  return Object.freeze(config);
}
