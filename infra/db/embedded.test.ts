import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../test/harness.js';

/**
 * The embedded cluster's locale (infra/db/embedded.ts). The test run's databases are created on
 * it, unless `TEST_DATABASE_URL` names another server, whose locale is its own.
 */
describe.skipIf(process.env.TEST_DATABASE_URL)('embedded PostgreSQL locale', () => {
  it('creates databases with the builtin C.UTF-8 provider: code-point order, Unicode case folding', async () => {
    const client = new pg.Client({ connectionString: await createTestDatabase() });
    await client.connect();
    try {
      const { rows } = await client.query(`
        SELECT d.datlocprovider AS provider, d.datlocale AS locale,
               pg_encoding_to_char(d.encoding) AS encoding,
               to_tsvector('simple', 'Zürich ÉCOLE Привет 日本語')::text AS lexemes,
               lower('ÀÉÎ Ж') AS lowered,
               ARRAY(SELECT w FROM unnest(ARRAY['b', 'B', 'é', 'e', 'Z', 'ä']) w ORDER BY w) AS sorted
          FROM pg_database d WHERE d.datname = current_database()`);
      expect(rows[0]).toEqual({
        provider: 'b',
        locale: 'C.UTF-8',
        encoding: 'UTF8',
        lexemes: "'zürich':1 'école':2 'привет':3 '日本語':4",
        lowered: 'àéî ж',
        sorted: ['B', 'Z', 'b', 'e', 'ä', 'é'],
      });
    } finally {
      await client.end();
    }
  });
});
