import type pg from 'pg';
import { withTransaction } from './pool.js';

const DAY_MS = 86_400_000;

/** UTC day start (ms) of a timestamp. Partitions are daily, in UTC. */
export function dayOf(ms: number): number {
  return Math.floor(ms / DAY_MS) * DAY_MS;
}

function partitionName(day: number): string {
  return `events_p${new Date(day).toISOString().slice(0, 10).replaceAll('-', '')}`;
}

/**
 * Creates missing daily partitions of `events`. Every day an event can land in must have its
 * partition before the insert, so a backfill from years ago or an event 24 h in the future is
 * never rejected. There is deliberately no DEFAULT partition: rows in it would block creating the
 * day's partition later. No-op on TimescaleDB, which creates chunks itself.
 */
export class PartitionManager {
  private readonly known = new Set<number>();
  private timescale: boolean | undefined;

  constructor(private readonly pool: pg.Pool) {}

  async isTimescale(): Promise<boolean> {
    if (this.timescale === undefined) {
      const { rows } = await this.pool.query(
        `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') AS t`,
      );
      this.timescale = Boolean(rows[0]?.t);
    }
    return this.timescale;
  }

  /** Ensures partitions for the given timestamps' days exist. Cheap when they are known. */
  async ensure(timestamps: Iterable<number>): Promise<void> {
    const missing = new Set<number>();
    for (const t of timestamps) {
      const day = dayOf(t);
      if (!this.known.has(day)) missing.add(day);
    }
    if (missing.size === 0 || (await this.isTimescale())) return;
    const { rows } = await this.pool.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'events'::regclass AND c.relname = ANY($1)`,
      [[...missing].map(partitionName)],
    );
    const existing = new Set(rows.map((r) => r.name));
    for (const day of [...missing].sort((a, b) => a - b)) {
      if (!existing.has(partitionName(day))) await this.create(day);
      this.known.add(day);
    }
  }

  /**
   * Creating a partition locks the parent table. It runs in its own short transaction with a lock
   * timeout, so it never waits behind a long export while blocking everyone queued after it; on
   * timeout the caller's batch fails and is retried.
   */
  private async create(day: number): Promise<void> {
    const from = new Date(day).toISOString();
    const to = new Date(day + DAY_MS).toISOString();
    await withTransaction(this.pool, async (client) => {
      await client.query(`SET LOCAL lock_timeout = '5s'`);
      // IF NOT EXISTS makes racing persist workers safe; the loser's statement is a no-op.
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${partitionName(day)} PARTITION OF events FOR VALUES FROM ('${from}') TO ('${to}')`,
      );
    }).catch((err: { code?: string }) => {
      // Two creators can still collide on the catalog; the partition exists either way.
      if (err.code !== '42P07' && err.code !== '23505') throw err;
    });
  }

  /** Today's partition, yesterday's and `daysAhead` future days. Run at start and daily. */
  async ensureAhead(daysAhead: number, now = Date.now()): Promise<void> {
    const days: number[] = [];
    for (let i = -1; i <= daysAhead; i++) days.push(now + i * DAY_MS);
    await this.ensure(days);
  }
}
