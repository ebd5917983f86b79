import pg from 'pg';
import type { Role } from '../../infra/auth/principal.js';
import { signToken } from '../../infra/auth/sign.js';
import { onCleanup } from './cleanup.js';
import { createDaemon, type Daemon } from './daemon.js';
import { benchPostgres } from './postgres.js';
import { tempDir } from './temp.js';

/** Transport and AWS settings passed through from our environment to the daemons. */
const PASSED = /^(TRANSPORT|SQS_.*|AWS_.*|QUEUE_.*|STAGE_.*|EXPORT_.*|PG_POOL_MAX|OPENSEARCH_URL)$/;

/** The database, DATA_DIR and environment a set of daemons shares. */
export interface BenchEnv {
  databaseUrl: string;
  dataDir: string;
  env: Record<string, string>;
  /** A pool on the database for the bench's own reads (progress, verification). */
  db: pg.Pool;
  /** A token signed with the daemons' key; valid for three hours. */
  token(tenant: string, role: Role, sub?: string): Promise<string>;
  /** Creates tenants directly in the database (before any daemon needs them). */
  createTenants(ids: string[]): Promise<void>;
  /** Creates a daemon process (not started) on this environment. */
  daemon(names: string, extraEnv?: Record<string, string>): Promise<Daemon>;
}

/**
 * A fresh database (migrated) and DATA_DIR on the bench PostgreSQL, with the environment for the
 * daemons: quiet logs, no rate limit in the way of the load generators, and transport settings
 * (TRANSPORT, SQS_*, AWS_*) taken from our own environment so a run can target real SQS.
 */
export async function benchEnv(label: string, extra: Record<string, string> = {}): Promise<BenchEnv> {
  const server = await benchPostgres();
  const databaseUrl = await server.createDatabase(label);
  const dataDir = tempDir(label);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (PASSED.test(k) && v !== undefined) env[k] = v;
  Object.assign(env, {
    DATABASE_URL: databaseUrl,
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_MAX: '1000000000',
    ...extra,
  });
  const db = new pg.Pool({ connectionString: databaseUrl, max: 4, application_name: 'auditlog-bench' });
  db.on('error', () => {});
  onCleanup(() => db.end());
  const jwt = { JWT_ISSUER: env.JWT_ISSUER ?? 'auditlog', JWT_AUDIENCE: env.JWT_AUDIENCE ?? 'auditlog' };
  return {
    databaseUrl,
    dataDir,
    env,
    db,
    token: (tenant, role, sub = `bench-${role}`) => signToken(dataDir, jwt, { tenant, role, sub }, 3 * 3600),
    async createTenants(ids) {
      await db.query(
        `INSERT INTO tenants (id, name) SELECT id, id FROM unnest($1::text[]) AS id ON CONFLICT DO NOTHING`,
        [ids],
      );
    },
    daemon: (names, extraEnv = {}) => createDaemon(names, { ...env, ...extraEnv }),
  };
}

/** Sum of `last_seq` over `tenants`: events persisted (and so queryable) for them. */
export async function persistedCount(db: pg.Pool, tenants: string[]): Promise<number> {
  const { rows } = await db.query<{ n: string | null }>(
    'SELECT sum(last_seq)::text AS n FROM tenants WHERE id = ANY($1)',
    [tenants],
  );
  return Number(rows[0]?.n ?? 0);
}
