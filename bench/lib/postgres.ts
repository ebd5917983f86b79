import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { startEmbeddedPostgres } from '../../infra/db/embedded.js';
import { migrate } from '../../infra/db/migrate.js';
import { createPool } from '../../infra/db/pool.js';
import { onCleanup } from './cleanup.js';
import { note } from './report.js';
import { freePort, tempDir } from './temp.js';

/** A PostgreSQL server the bench may create (and drop) databases on. */
export interface BenchPostgres {
  /** True when the bench started it (embedded); false for a `DATABASE_URL` server. */
  embedded: boolean;
  /** Creates an empty database, migrated to the current schema, dropped at exit. Returns its URL. */
  createDatabase(label: string): Promise<string>;
}

let shared: Promise<BenchPostgres> | undefined;

/**
 * The server every scenario of this process uses: the one named by `DATABASE_URL` (its database is
 * used only to create fresh `bench_*` databases, so real data is never touched), or an embedded
 * PostgreSQL in a temp folder on a free port, stopped and removed at exit.
 */
export function benchPostgres(): Promise<BenchPostgres> {
  shared ??= open();
  return shared;
}

async function open(): Promise<BenchPostgres> {
  let adminUrl = process.env.DATABASE_URL;
  const embedded = !adminUrl;
  if (!adminUrl) {
    const dir = tempDir('pg');
    const server = await startEmbeddedPostgres(dir, await freePort(), pino({ level: 'silent' }));
    // Registered after tempDir's removal, so it runs before it (cleanups run newest first).
    onCleanup(() => server.stop());
    adminUrl = server.url;
    note(`embedded PostgreSQL started in ${dir}`);
  } else {
    note('using the PostgreSQL server of DATABASE_URL (fresh bench_* databases, dropped afterwards)');
  }
  const admin = adminUrl;
  return {
    embedded,
    async createDatabase(label) {
      const name = `bench_${label}_${randomBytes(4).toString('hex')}`;
      await withAdmin(admin, (c) => c.query(`CREATE DATABASE ${name}`));
      onCleanup(() =>
        withAdmin(admin, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => {}),
      );
      const url = new URL(admin);
      url.pathname = `/${name}`;
      const pool = createPool(url.toString(), 2, 'auditlog-bench-migrate');
      try {
        await migrate(pool);
      } finally {
        await pool.end();
      }
      return url.toString();
    },
  };
}

async function withAdmin<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
