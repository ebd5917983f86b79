import pg from 'pg';

/** A PostgreSQL pool. Every query goes through one; no module-level pools exist. */
export function createPool(url: string, max: number, applicationName: string): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    application_name: applicationName,
    // GIN indexes (full text, blind-index metadata) buffer inserts in a pending list that every
    // search through the index scans in full. The default 4 MB made a rare-term search under
    // ingest take 70–140 ms (p50); at 256 kB the list is merged into the index more often and
    // the same search takes ~22 ms. Our sessions' inserts decide when the list is merged.
    options: '-c gin_pending_list_limit=256',
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 10_000,
  });
  // An idle client that loses its connection must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  return pool;
}

/** Runs `fn` in a transaction on one client, committing on success and rolling back on error. */
export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await checkout(pool);
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

const ignore = () => {};

/**
 * Takes a client from the pool that cannot crash the process: a connection lost while the client
 * is checked out but between queries emits 'error', which pg-pool only handles for idle clients.
 * The failure still reaches the caller through its next query.
 */
export async function checkout(pool: pg.Pool): Promise<pg.PoolClient> {
  const client = await pool.connect();
  client.on('error', ignore);
  const release = client.release.bind(client);
  client.release = (err?: Error | boolean) => {
    client.removeListener('error', ignore);
    return release(err);
  };
  return client;
}
