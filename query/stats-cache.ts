import { floorTo, HOUR_MS, type Segment } from './stats-segments.js';

/**
 * How far behind the current hour a rollup bucket must end to be cached. Persist bumps a tenant's
 * revision (`rollup_revisions`, migration 008) whenever it adds events to an hour more than one
 * hour before its own transaction's hour. A bucket cached here ended two whole hours before the
 * reader's clock, so a write to it that bumped nothing would have to come from a persist
 * transaction that started before that bucket's next hour ended and committed more than an hour
 * later. Persist transactions last seconds.
 */
export const SETTLED_LAG_MS = 2 * HOUR_MS;

/** Rollup buckets before this instant may be cached (`now` is the reader's clock). */
export function settledBoundary(now: number): number {
  return floorTo(now, HOUR_MS) - SETTLED_LAG_MS;
}

/**
 * Splits signed segments at `boundary` (a whole hour): `settled` ones end at or before it and may
 * be cached, `fresh` ones are read every time. An hourly segment across the boundary is split in
 * two; a daily or weekly one across it stays whole and fresh (only in the first hours after
 * midnight, when yesterday is not yet two hours old).
 */
export function splitSettled(parts: readonly Segment[], boundary: number) {
  const settled: Segment[] = [];
  const fresh: Segment[] = [];
  for (const seg of parts) {
    if (seg.to <= boundary) settled.push(seg);
    else if (seg.grain === 'hourly' && seg.from < boundary) {
      settled.push({ ...seg, to: boundary });
      fresh.push({ ...seg, from: boundary });
    } else fresh.push(seg);
  }
  return { settled, fresh };
}

/** The rollup tables a stats request sums: `rollup_<family>_<grain>`. */
export type RollupFamily = 'totals' | 'values' | 'users';

/** Event counts of one segment's buckets (unsigned), keyed as `tallyStatement` reads them. */
export type Sums = ReadonlyMap<string, number>;

interface Entry {
  tenantId: string;
  sums: Sums;
}

/**
 * Sums of settled rollup segments, most of what a tenant-wide stats request reads (a 30-day range
 * of a tenant with 1,000 active users sums ~7,500 user rows; what is left to read each time is
 * the last two or three hours). Entries are keyed by tenant, rollup family and segment; all of a
 * tenant's entries were read at one rollup revision (`revision`). A request uses them on the
 * assumption that the revision is still current, reads the current one in the same statement as
 * the rest, and reads every segment again when it has moved.
 *
 * Bounded by the number of counts held (`maxCounts`, about 100 bytes each), least recently used
 * first out. A segment holding more than a quarter of the bound is never cached. Tenant ids are
 * part of every key, and only tenant-wide requests (auditor, admin) read or fill it.
 */
export class StatsCache {
  private readonly entries = new Map<string, Entry>();
  /** Per tenant with entries held: the revision they were read at, and how many there are. */
  private readonly tenants = new Map<string, { rev: string; entries: number }>();
  private held = 0;

  constructor(private readonly maxCounts: number) {}

  /** Counts held now. */
  get size(): number {
    return this.held;
  }

  /** The revision the tenant's cached entries were read at, if it has any. */
  revision(tenantId: string): string | undefined {
    return this.tenants.get(tenantId)?.rev;
  }

  /** The cached sums of `seg` in `family`, marked recently used. */
  get(tenantId: string, family: RollupFamily, seg: Segment): Sums | undefined {
    const key = keyOf(tenantId, family, seg);
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.sums;
  }

  /**
   * Caches the sums of `seg` in `family`, read at revision `rev`. The tenant's entries of another
   * revision are dropped first, so every entry of a tenant is of one revision.
   */
  put(tenantId: string, rev: string, family: RollupFamily, seg: Segment, sums: Sums): void {
    if (sums.size > this.maxCounts / 4) return;
    if (this.tenants.get(tenantId)?.rev !== rev) this.drop(tenantId);
    const key = keyOf(tenantId, family, seg);
    if (this.entries.has(key)) this.remove(key);
    this.entries.set(key, { tenantId, sums });
    const tenant = this.tenants.get(tenantId);
    if (tenant) tenant.entries++;
    else this.tenants.set(tenantId, { rev, entries: 1 });
    this.held += sums.size;
    for (const k of this.entries.keys()) {
      if (this.held <= this.maxCounts) break;
      this.remove(k);
    }
  }

  /** Forgets every entry of the tenant. */
  drop(tenantId: string): void {
    if (!this.tenants.has(tenantId)) return;
    for (const [k, e] of this.entries) if (e.tenantId === tenantId) this.remove(k);
  }

  private remove(key: string): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    this.entries.delete(key);
    this.held -= entry.sums.size;
    const tenant = this.tenants.get(entry.tenantId)!;
    if (--tenant.entries === 0) this.tenants.delete(entry.tenantId);
  }
}

const keyOf = (tenantId: string, family: RollupFamily, seg: Segment) =>
  `${tenantId}\u0000${family}\u0000${seg.grain}\u0000${seg.from}\u0000${seg.to}`;
