import fs from 'node:fs';
import type pg from 'pg';
import { type Logger, pino } from 'pino';
import type { Config } from './config.js';
import { LocalKeyWrapper } from './crypto/key-wrapper.js';
import { TenantKeyring } from './crypto/tenant-keys.js';
import { type EmbeddedServer, startEmbeddedPostgres } from './db/embedded.js';
import { migrate } from './db/migrate.js';
import { PartitionManager } from './db/partitions.js';
import { createPool } from './db/pool.js';
import { createMetrics, type Metrics, registerPoolMetrics } from './metrics/registry.js';
import { TenantDirectory } from './tenants.js';
import { EmbeddedTransport } from './transport/embedded.js';
import { GroupCommit } from './transport/group-commit.js';
import type { Transport } from './transport/types.js';

/**
 * Everything a daemon needs, built once at start and passed explicitly: no module-level pools,
 * clients or keys anywhere else.
 */
export interface Context {
  readonly config: Config;
  readonly log: Logger;
  /** The database URL in use (the embedded server's when `DATABASE_URL` is unset). */
  readonly databaseUrl: string;
  readonly pool: pg.Pool;
  readonly transport: Transport;
  /** Durable, group-committed enqueue of new events into the pipeline (ingest and self-audit). */
  readonly enqueue: GroupCommit;
  readonly keyWrapper: LocalKeyWrapper;
  readonly keyring: TenantKeyring;
  readonly partitions: PartitionManager;
  readonly tenants: TenantDirectory;
  readonly metrics: Metrics;
  /** Closes the transport, the pool and the embedded server, in that order. */
  close(): Promise<void>;
}

export interface ContextOptions {
  /** Daemon name, used for the metrics `daemon` label and the PostgreSQL application name. */
  daemon: string;
  /** Overrides for tests. */
  log?: Logger;
  /** False in a worker thread: the process-wide metrics belong to the main thread. Default true. */
  processMetrics?: boolean;
}

export async function createContext(config: Config, options: ContextOptions): Promise<Context> {
  const log = options.log ?? pino({ level: config.LOG_LEVEL, base: { daemon: options.daemon } });
  fs.mkdirSync(config.DATA_DIR, { recursive: true });
  let embedded: EmbeddedServer | undefined;
  let databaseUrl = config.DATABASE_URL;
  if (!databaseUrl) {
    embedded = await startEmbeddedPostgres(config.DATA_DIR, config.EMBEDDED_PG_PORT, log);
    databaseUrl = embedded.url;
    log.info({ port: config.EMBEDDED_PG_PORT }, 'embedded PostgreSQL started');
  }
  const pool = createPool(databaseUrl, config.PG_POOL_MAX, `auditlog-${options.daemon}`);
  try {
    const applied = await migrate(pool);
    if (applied.length > 0) log.info({ applied }, 'migrations applied');
    const partitions = new PartitionManager(pool, config.PARTITION_DAYS);
    await partitions.ensureAhead(config.PARTITION_DAYS_AHEAD);
    const keyWrapper = LocalKeyWrapper.fromDataDir(config.DATA_DIR);
    const transport = await createTransport(config, pool, keyWrapper, databaseUrl, log);
    const metrics = createMetrics(options.daemon, options.processMetrics ?? true);
    registerPoolMetrics(metrics, pool);
    return {
      config,
      log,
      databaseUrl,
      pool,
      transport,
      enqueue: new GroupCommit(transport),
      keyWrapper,
      keyring: new TenantKeyring(pool, keyWrapper),
      partitions,
      tenants: new TenantDirectory(pool),
      metrics,
      async close() {
        await transport.close().catch((err) => log.warn({ err }, 'transport close failed'));
        await pool.end().catch((err) => log.warn({ err }, 'pool close failed'));
        await embedded?.stop().catch((err) => log.warn({ err }, 'embedded PostgreSQL stop failed'));
      },
    };
  } catch (err) {
    await pool.end().catch(() => {});
    await embedded?.stop().catch(() => {});
    throw err;
  }
}

async function createTransport(
  config: Config,
  pool: pg.Pool,
  keyWrapper: LocalKeyWrapper,
  databaseUrl: string,
  log: Logger,
): Promise<Transport> {
  if (config.TRANSPORT === 'sqs') {
    const { createSqsTransport } = await import('./transport/sqs.js');
    return createSqsTransport(config, { log });
  }
  return new EmbeddedTransport(
    pool,
    keyWrapper.deriveKey('queue-body'),
    config.QUEUE_MAX_ATTEMPTS,
    databaseUrl,
  );
}
