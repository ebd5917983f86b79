import type pg from 'pg';
import { withTransaction } from './pool.js';

const DAY_MS = 86_400_000;
/** 1970-01-05, a Monday: spans of N days start a multiple of N days from it (7: Monday to Monday). */
const ALIGN_MS = 4 * DAY_MS;

/** UTC day start (ms) of a timestamp. */
export function dayOf(ms: number): number {
  return Math.floor(ms / DAY_MS) * DAY_MS;
}

/** A partition's range of `occurred_at`, `[from, to)` in ms. */
export interface Span {
  from: number;
  to: number;
}

/** The aligned span of `days` days holding `ms`: with 7, the UTC week (Monday 00:00) around it. */
export function spanOf(ms: number, days: number): Span {
  const width = days * DAY_MS;
  const from = Math.floor((ms - ALIGN_MS) / width) * width + ALIGN_MS;
  return { from, to: from + width };
}

/**
 * `spanOf(day)` cut back so that it overlaps none of `existing`: a partition created before the
 * width changed (or by another tool) keeps its rows, and the new one fills the gap around it.
 * `day` must not lie in any of `existing`.
 */
export function freeSpan(day: number, days: number, existing: readonly Span[]): Span {
  const span = spanOf(day, days);
  for (const e of existing) {
    if (e.to <= day) span.from = Math.max(span.from, e.to);
    else if (e.from > day) span.to = Math.min(span.to, e.from);
  }
  return span;
}

/** Partitions never overlap, so a start names one; the same format as the daily partitions had. */
function partitionName(from: number): string {
  return `events_p${new Date(from).toISOString().slice(0, 10).replaceAll('-', '')}`;
}

/**
 * Storage parameters of a partition wider than a day: autovacuum analyzes a table once a tenth of
 * it is new, and vacuums it once a fifth is (the defaults), so a partition seven days wide would
 * go most of a day between analyses late in its week: searches of the last hours would be planned
 * from statistics that have not seen them, and its newest rows would wait longer for the
 * visibility map that index-only scans of keys need. The fractions are divided by the width in
 * days, which keeps both as frequent in time as for a daily partition.
 */
function upkeep(span: Span): string {
  const days = (span.to - span.from) / DAY_MS;
  if (days <= 1) return '';
  const share = (f: number) => (f / days).toFixed(4);
  return ` WITH (autovacuum_analyze_scale_factor = ${share(0.1)}, autovacuum_vacuum_insert_scale_factor = ${share(0.2)})`;
}

/**
 * The partitions of `events` with their ranges, oldest first, read from their bounds as
 * PostgreSQL prints them. A partition bounded by MINVALUE or MAXVALUE (made by another tool) is
 * left out; creating a partition that overlaps it fails, and `ensure` reports the day.
 */
export async function partitionsOf(pool: pg.Pool): Promise<(Span & { name: string })[]> {
  const { rows } = await pool.query<{ name: string; lo: string; hi: string }>(
    `SELECT name, (extract(epoch FROM b[1]::timestamptz) * 1000)::float8::text AS lo,
            (extract(epoch FROM b[2]::timestamptz) * 1000)::float8::text AS hi
       FROM (SELECT c.relname AS name,
                    regexp_match(pg_get_expr(c.relpartbound, c.oid), $re$FROM \\('([^']+)'\\) TO \\('([^']+)'\\)$re$) AS b
               FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
              WHERE i.inhparent = 'events'::regclass) p
      WHERE b IS NOT NULL
      ORDER BY b[1]::timestamptz`,
  );
  return rows.map((r) => ({ name: r.name, from: Number(r.lo), to: Number(r.hi) }));
}

/** PostgreSQL refuses a partition that would overlap another (a racing creator's, cut differently). */
const OVERLAP = '42P17';
/** Passes over the partition list before `ensure` gives up (each pass creates what is missing). */
const PASSES = 3;

/**
 * Creates missing partitions of `events`, each spanning `days` days (UTC, aligned: 7 gives
 * Monday-to-Monday weeks). Every day an event can land in must have its partition before the
 * insert, so a backfill from years ago or an event 24 h in the future is never rejected. There is
 * deliberately no DEFAULT partition: rows in it would block creating the partition later.
 * Partitions made with another width stay as they are; a new one is cut to fit beside them.
 * No-op on TimescaleDB, which creates chunks itself.
 *
 * Why wider than a day: PostgreSQL plans a statement separately for every partition it may read,
 * and a search with no time bound may read all of them (see `query/time-windows.ts`).
 */
export class PartitionManager {
  /** Days known to have a partition. */
  private readonly known = new Set<number>();
  private timescale: boolean | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly days: number,
  ) {
    if (!Number.isInteger(days) || days < 1)
      throw new Error(`partition width must be whole days (got ${days})`);
  }

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
    for (let pass = 0; ; pass++) {
      const existing: Span[] = await partitionsOf(this.pool);
      const covered = (day: number) => existing.some((s) => s.from <= day && day < s.to);
      const uncovered: number[] = [];
      for (const d of missing) {
        if (covered(d)) this.known.add(d);
        else uncovered.push(d);
      }
      if (uncovered.length === 0) return;
      if (pass === PASSES) {
        throw new Error(`no partition of events for ${new Date(uncovered[0]!).toISOString().slice(0, 10)}`);
      }
      for (const day of uncovered.sort((a, b) => a - b)) {
        if (covered(day)) continue; // created for an earlier day of this pass
        const span = freeSpan(day, this.days, existing);
        await this.create(span);
        existing.push(span);
      }
      // The next pass reads the list again: what was created here, or by a racing creator.
    }
  }

  /**
   * Creating a partition locks the parent table. It runs in its own short transaction with a lock
   * timeout, so it never waits behind a long export while blocking everyone queued after it; on
   * timeout the caller's batch fails and is retried.
   */
  private async create(span: Span): Promise<void> {
    const from = new Date(span.from).toISOString();
    const to = new Date(span.to).toISOString();
    await withTransaction(this.pool, async (client) => {
      await client.query(`SET LOCAL lock_timeout = '5s'`);
      // IF NOT EXISTS makes racing persist workers safe; the loser's statement is a no-op.
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${partitionName(span.from)} PARTITION OF events FOR VALUES FROM ('${from}') TO ('${to}')${upkeep(span)}`,
      );
    }).catch((err: { code?: string }) => {
      // Two creators can still collide on the catalog, or have cut their spans differently; the
      // caller reads the partitions again either way.
      if (err.code !== '42P07' && err.code !== '23505' && err.code !== OVERLAP) throw err;
    });
  }

  /** Partitions for yesterday, today and `daysAhead` future days. Run at start and daily. */
  async ensureAhead(daysAhead: number, now = Date.now()): Promise<void> {
    const days: number[] = [];
    for (let i = -1; i <= daysAhead; i++) days.push(now + i * DAY_MS);
    await this.ensure(days);
  }
}
