import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../test/harness.js';
import { freeSpan, PartitionManager, partitionsOf, spanOf } from './partitions.js';
import { createPool } from './pool.js';

const ms = (iso: string) => Date.parse(iso);
const iso = (t: number) => new Date(t).toISOString().slice(0, 10);

describe('partition spans', () => {
  it('aligns 7-day spans on UTC Mondays and 1-day spans on days', () => {
    const week = (at: string) => {
      const s = spanOf(ms(at), 7);
      return [iso(s.from), iso(s.to)];
    };
    expect(week('2026-12-08T12:00:00Z')).toEqual(['2026-12-07', '2026-12-14']); // a Tuesday
    expect(week('2026-12-07T00:00:00Z')).toEqual(['2026-12-07', '2026-12-14']); // Monday 00:00
    expect(week('2026-12-06T23:59:59.999Z')).toEqual(['2026-11-30', '2026-12-07']); // Sunday
    expect(week('1970-01-01T00:00:00Z')).toEqual(['1969-12-29', '1970-01-05']); // before the epoch
    expect(week('0001-01-01T00:00:00Z')).toEqual(['0001-01-01', '0001-01-08']);
    const day = spanOf(ms('2026-12-08T12:00:00Z'), 1);
    expect([iso(day.from), iso(day.to)]).toEqual(['2026-12-08', '2026-12-09']);
  });

  it('cuts a span back to the gap between existing partitions', () => {
    const existing = [
      { from: ms('2026-12-08'), to: ms('2026-12-09') },
      { from: ms('2026-12-11'), to: ms('2026-12-12') },
      { from: ms('2026-11-01'), to: ms('2026-11-02') }, // far away: no effect
    ];
    const cut = (day: string) => {
      const s = freeSpan(ms(day), 7, existing);
      return [iso(s.from), iso(s.to)];
    };
    expect(cut('2026-12-07')).toEqual(['2026-12-07', '2026-12-08']);
    expect(cut('2026-12-09')).toEqual(['2026-12-09', '2026-12-11']);
    expect(cut('2026-12-10')).toEqual(['2026-12-09', '2026-12-11']);
    expect(cut('2026-12-13')).toEqual(['2026-12-12', '2026-12-14']);
    expect(cut('2026-12-20')).toEqual(['2026-12-14', '2026-12-21']);
  });
});

describe('PartitionManager', () => {
  let pool: pg.Pool;
  /** On TimescaleDB (`TEST_DATABASE_URL`), `events` is a hypertable and the manager does nothing. */
  let timescale = false;
  beforeAll(async () => {
    pool = createPool(await createTestDatabase(), 4, 'auditlog-test-partitions');
    timescale = await new PartitionManager(pool, 7).isTimescale();
  });
  afterAll(() => pool.end());

  /** Every partition of `events`, with its range as dates, oldest first. */
  const partitions = async () =>
    (await partitionsOf(pool)).map((p) => `${p.name} ${iso(p.from)}..${iso(p.to)}`);
  const dropAll = async () => {
    for (const p of await partitions()) await pool.query(`DROP TABLE ${p.split(' ')[0]}`);
  };

  it('creates one partition per week for the days asked, once', async (t) => {
    if (timescale) t.skip();
    await dropAll();
    const weeks = new PartitionManager(pool, 7);
    await weeks.ensure([ms('2026-12-08T12:00:00Z'), ms('2026-12-13T23:59:59Z'), ms('2026-12-14T00:00:00Z')]);
    expect(await partitions()).toEqual([
      'events_p20261207 2026-12-07..2026-12-14',
      'events_p20261214 2026-12-14..2026-12-21',
    ]);
    // Autovacuum analyzes and vacuums a 7-day partition as often (in time) as a daily one.
    const { rows } = await pool.query<{ options: string[] }>(
      `SELECT reloptions AS options FROM pg_class WHERE relname = 'events_p20261207'`,
    );
    expect(rows[0]?.options).toEqual([
      'autovacuum_analyze_scale_factor=0.0143',
      'autovacuum_vacuum_insert_scale_factor=0.0286',
    ]);
    // A second manager (another process) finds them and creates nothing.
    await new PartitionManager(pool, 7).ensure([ms('2026-12-10T00:00:00Z'), ms('2026-12-20T00:00:00Z')]);
    expect(await partitions()).toHaveLength(2);
  });

  it('fills the gaps around partitions made with another width, and rows land in them', async (t) => {
    if (timescale) t.skip();
    await dropAll();
    // Daily partitions, as before the width changed, for two days of the week.
    await new PartitionManager(pool, 1).ensure([ms('2026-12-08T10:00:00Z'), ms('2026-12-10T10:00:00Z')]);
    const days = Array.from({ length: 9 }, (_, i) => ms('2026-12-06T12:00:00Z') + i * 86_400_000);
    await new PartitionManager(pool, 7).ensure(days);
    expect(await partitions()).toEqual([
      'events_p20261130 2026-11-30..2026-12-07',
      'events_p20261207 2026-12-07..2026-12-08',
      'events_p20261208 2026-12-08..2026-12-09',
      'events_p20261209 2026-12-09..2026-12-10',
      'events_p20261210 2026-12-10..2026-12-11',
      'events_p20261211 2026-12-11..2026-12-14',
      'events_p20261214 2026-12-14..2026-12-21',
    ]);
    // Each day's partition takes a row of that day (no day is left without one).
    await pool.query(`INSERT INTO tenants (id, name) VALUES ('acme', 'acme') ON CONFLICT DO NOTHING`);
    for (const [i, t] of days.entries()) {
      await pool.query(
        `INSERT INTO events (tenant_id, seq, id, occurred_at, received_at, action, severity, resource_type, resource_id, user_id, message, key_id, tsv)
         VALUES ('acme', $1, gen_random_uuid(), $2, now(), 'LOGIN', 'INFO', 'session', 's', 'u', 'm', 1, ''::tsvector)`,
        [i + 1, new Date(t).toISOString()],
      );
    }
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM events WHERE tenant_id = 'acme'`,
    );
    expect(rows[0]?.n).toBe(days.length);
  });

  it('covers every day when creators with different widths race', async (t) => {
    if (timescale) t.skip();
    await dropAll();
    const days = Array.from({ length: 20 }, (_, i) => ms('2027-03-01T06:00:00Z') + i * 86_400_000);
    await Promise.all([
      new PartitionManager(pool, 7).ensure(days),
      new PartitionManager(pool, 1).ensure(days),
      new PartitionManager(pool, 3).ensure(days),
      new PartitionManager(pool, 7).ensure(days),
    ]);
    const spans = (await partitions()).map((p) => p.split(' ')[1]!.split('..'));
    for (const t of days) {
      const d = iso(t);
      expect(
        spans.filter(([lo, hi]) => lo! <= d && d < hi!),
        d,
      ).toHaveLength(1);
    }
  });

  it('refuses a width that is not a whole number of days', () => {
    expect(() => new PartitionManager(pool, 0)).toThrow('whole days');
    expect(() => new PartitionManager(pool, 1.5)).toThrow('whole days');
  });
});
