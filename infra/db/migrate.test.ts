import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { withDatabase } from '../../test/global-setup.js';
import { migrate } from './migrate.js';
import { createPool } from './pool.js';

/** An empty database (not the migrated template), so migrations can be applied step by step. */
async function emptyDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `m_${randomBytes(6).toString('hex')}`;
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: inject('pgAdminUrl') });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  return {
    url: withDatabase(inject('pgAdminUrl'), name),
    drop: () => admin(`DROP DATABASE ${name} WITH (FORCE)`),
  };
}

describe('migrations', () => {
  let db: Awaited<ReturnType<typeof emptyDatabase>>;
  let pool: pg.Pool;
  beforeAll(async () => {
    db = await emptyDatabase();
    pool = createPool(db.url, 2, 'auditlog-test-migrate');
  });
  afterAll(async () => {
    await pool.end();
    await db.drop();
  });

  it('006 moves the combination rollups to one row per dimension value, and days of totals', async () => {
    expect((await migrate(pool, { through: 5 })).at(-1)).toBe('005_stats_weekly_rollups.sql');
    // Rollups as persist kept them before 006: two hours of one day, two tenants.
    await pool.query(`INSERT INTO rollup_totals_hourly (tenant_id, bucket, count) VALUES
      ('acme', '2026-11-03T10:00Z', 3), ('acme', '2026-11-03T11:00Z', 2), ('globex', '2026-11-03T10:00Z', 1)`);
    const dims = `('acme', $1::timestamptz, 'INFO', 'LOGIN', 'session', 2), ('acme', $1, 'INFO', 'UPDATE', 'order', 1),
                  ('acme', $2, 'ERROR', 'UPDATE', 'order', 2), ('globex', $3, 'INFO', 'LOGIN', 'session', 1)`;
    const put = (grain: string, a: string, b: string, c: string) =>
      pool.query(
        `INSERT INTO rollup_dims_${grain} (tenant_id, bucket, severity, action, resource_type, count) VALUES ${dims}`,
        [a, b, c],
      );
    await put('hourly', '2026-11-03T10:00Z', '2026-11-03T11:00Z', '2026-11-03T10:00Z');
    // Daily and weekly: the same rows land in one bucket; the two acme buckets merge.
    await pool.query(
      `INSERT INTO rollup_dims_daily (tenant_id, bucket, severity, action, resource_type, count) VALUES
        ('acme', '2026-11-03', 'INFO', 'LOGIN', 'session', 2), ('acme', '2026-11-03', 'INFO', 'UPDATE', 'order', 1),
        ('acme', '2026-11-03', 'ERROR', 'UPDATE', 'order', 2), ('globex', '2026-11-03', 'INFO', 'LOGIN', 'session', 1)`,
    );
    await pool.query(
      `INSERT INTO rollup_dims_weekly SELECT tenant_id, '2026-11-02'::timestamptz, severity, action, resource_type, count
         FROM rollup_dims_daily`,
    );

    expect(await migrate(pool)).toContain('006_stats_value_rollups.sql');
    const rows = async (sql: string) => (await pool.query(sql)).rows.map((r) => Object.values(r).join(' '));
    const values = (grain: string) =>
      rows(
        `SELECT tenant_id, to_char(bucket AT TIME ZONE 'UTC', 'MM-DD HH24'), dim, value, count FROM rollup_values_${grain}
          ORDER BY 1, 2, 3, 4`,
      );
    expect(await values('hourly')).toEqual([
      'acme 11-03 10 a LOGIN 2',
      'acme 11-03 10 a UPDATE 1',
      'acme 11-03 10 r order 1',
      'acme 11-03 10 r session 2',
      'acme 11-03 10 s INFO 3',
      'acme 11-03 11 a UPDATE 2',
      'acme 11-03 11 r order 2',
      'acme 11-03 11 s ERROR 2',
      'globex 11-03 10 a LOGIN 1',
      'globex 11-03 10 r session 1',
      'globex 11-03 10 s INFO 1',
    ]);
    const merged = ['a LOGIN 2', 'a UPDATE 3', 'r order 3', 'r session 2', 's ERROR 2', 's INFO 3'];
    expect(await values('daily')).toEqual([
      ...merged.map((m) => `acme 11-03 00 ${m}`),
      'globex 11-03 00 a LOGIN 1',
      'globex 11-03 00 r session 1',
      'globex 11-03 00 s INFO 1',
    ]);
    expect((await values('weekly')).filter((r) => r.startsWith('acme'))).toEqual(
      merged.map((m) => `acme 11-02 00 ${m}`),
    );
    expect(
      await rows(
        `SELECT tenant_id, to_char(bucket AT TIME ZONE 'UTC', 'MM-DD HH24'), count FROM rollup_totals_daily ORDER BY 1`,
      ),
    ).toEqual(['acme 11-03 00 5', 'globex 11-03 00 1']);
    // The combination rollups are gone; a second run applies nothing.
    expect(await rows(`SELECT to_regclass('rollup_dims_daily') IS NULL AS gone`)).toEqual(['true']);
    expect(await migrate(pool)).toEqual([]);
  });
});
