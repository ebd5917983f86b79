import Type, { type Static } from 'typebox';
import type { ReadScope } from '../infra/auth/access.js';
import type { Context } from '../infra/context.js';
import { HttpError } from '../infra/http/errors.js';
import { SEVERITIES, TenantId } from '../infra/schema/event.js';
import { FilterProperties } from './filters.js';
import { type TenantTx, withTenantScope } from './scoped.js';
import {
  type RollupFamily,
  type StatsCache,
  type Sums,
  settledBoundary,
  splitSettled,
} from './stats-cache.js';
import {
  ceilTo,
  DAY_MS,
  floorTo,
  HOUR_MS,
  type Segment,
  segments,
  seriesSegments,
} from './stats-segments.js';
import { buildWhere } from './where.js';

/** Most buckets one request may ask for: 100 days by hour, about 6.5 years by day. */
export const MAX_STATS_BUCKETS = 2400;

/** Query string of `GET /logs/stats`. */
export const StatsQuery = Type.Object(
  {
    tenant_id: FilterProperties.tenant_id,
    from: Type.Optional(
      Type.String({
        format: 'date-time',
        description:
          'Start of the range; rounded down to a whole UTC hour. Default: `to` minus 24 hours (interval=hour) or 30 days (interval=day).',
      }),
    ),
    to: Type.Optional(
      Type.String({
        format: 'date-time',
        description: 'End of the range (exclusive); rounded up to a whole UTC hour. Default: now.',
      }),
    ),
    // Optional with a default: the validator fills the default in, and OpenAPI shows the
    // parameter as optional (a required parameter with a default would tell clients to send it).
    interval: Type.Optional(
      Type.Union([Type.Literal('hour'), Type.Literal('day')], {
        default: 'hour',
        description: 'Bucket size of the time series, in UTC',
      }),
    ),
    top: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 100,
        default: 10,
        description: 'Longest list returned for by_action, by_resource_type and top_users',
      }),
    ),
  },
  { additionalProperties: false },
);
export type StatsQuery = Static<typeof StatsQuery>;

/** Defaults of the optional parameters (the same values as the schema's `default`s). */
const DEFAULT_INTERVAL = 'hour';
const DEFAULT_TOP = 10;

const Count = Type.Integer({ minimum: 0 });

/** Body of a stats response. Every count covers exactly [from, to) as returned (whole UTC hours). */
export const StatsResponse = Type.Object(
  {
    tenant_id: TenantId,
    scope: Type.Union([Type.Literal('tenant'), Type.Literal('user')], {
      description: '`user` when the caller has the user role: only its own events are counted',
    }),
    interval: Type.Union([Type.Literal('hour'), Type.Literal('day')]),
    from: Type.String({ format: 'date-time', description: 'Effective start (a whole UTC hour)' }),
    to: Type.String({ format: 'date-time', description: 'Effective end, exclusive (a whole UTC hour)' }),
    total: Count,
    by_severity: Type.Object(
      { INFO: Count, WARNING: Count, ERROR: Count, CRITICAL: Count },
      { additionalProperties: false },
    ),
    by_action: Type.Array(Type.Object({ action: Type.String(), count: Count })),
    by_resource_type: Type.Array(Type.Object({ resource_type: Type.String(), count: Count })),
    top_users: Type.Array(Type.Object({ user_id: Type.String(), count: Count }), {
      description: 'Events without a user_id are counted in total but belong to no user',
    }),
    series: Type.Array(Type.Object({ bucket: Type.String({ format: 'date-time' }), count: Count }), {
      description: 'Every bucket of the range, oldest first, including empty ones',
    }),
  },
  {
    examples: [
      {
        tenant_id: 'acme',
        scope: 'tenant',
        interval: 'day',
        from: '2026-11-27T00:00:00Z',
        to: '2026-11-29T00:00:00Z',
        total: 5,
        by_severity: { INFO: 4, WARNING: 1, ERROR: 0, CRITICAL: 0 },
        by_action: [
          { action: 'UPDATE', count: 3 },
          { action: 'LOGIN', count: 2 },
        ],
        by_resource_type: [
          { resource_type: 'order', count: 3 },
          { resource_type: 'session', count: 2 },
        ],
        top_users: [
          { user_id: 'u-42', count: 4 },
          { user_id: 'u-7', count: 1 },
        ],
        series: [
          { bucket: '2026-11-27T00:00:00Z', count: 2 },
          { bucket: '2026-11-28T00:00:00Z', count: 3 },
        ],
      },
    ],
  },
);
export type StatsResponse = Static<typeof StatsResponse>;

/** The effective range: whole UTC hours, `toMs` exclusive. */
export interface StatsRange {
  fromMs: number;
  toMs: number;
  interval: 'hour' | 'day';
}

/**
 * Resolves the requested range. Rollups hold whole UTC hours, so the range is widened to whole
 * hours (from rounded down, to rounded up) and the response says so; counting the partial edge
 * hours exactly would need a scan of up to two hours of events, which is unbounded for a busy
 * tenant. Day buckets are UTC days; the first and last may be partial when `from`/`to` are not at
 * midnight, and then count only the hours inside the range.
 */
export function resolveRange(query: Pick<StatsQuery, 'from' | 'to' | 'interval'>, now: number): StatsRange {
  const interval = query.interval ?? DEFAULT_INTERVAL;
  const to = query.to !== undefined ? Date.parse(query.to) : now;
  const span = interval === 'day' ? 30 * DAY_MS : DAY_MS;
  const from = query.from !== undefined ? Date.parse(query.from) : to - span;
  if (!(from < to)) throw new HttpError(400, 'invalid_range', 'from must be before to');
  const range = {
    fromMs: floorTo(from, HOUR_MS),
    toMs: ceilTo(to, HOUR_MS),
    interval,
  };
  if (bucketStarts(range).length > MAX_STATS_BUCKETS) {
    throw new HttpError(
      400,
      'range_too_large',
      `the range spans more than ${MAX_STATS_BUCKETS} ${interval} buckets; narrow it or use interval=day`,
    );
  }
  return range;
}

/** Start (ms) of every series bucket overlapping the range, oldest first. */
function bucketStarts(range: StatsRange): number[] {
  const step = range.interval === 'day' ? DAY_MS : HOUR_MS;
  const starts: number[] = [];
  for (let t = floorTo(range.fromMs, step); t < range.toMs; t += step) {
    starts.push(t);
    if (starts.length > MAX_STATS_BUCKETS) break;
  }
  return starts;
}

const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

/** Sorts by count descending, then key, and keeps the first `top`: deterministic for equal counts. */
function topOf<K extends string>(counts: Map<string, number>, key: K, top: number) {
  return [...counts]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, top)
    .map(([k, count]) => ({ [key]: k, count }) as { [P in K]: string } & { count: number });
}

/** Counts grouped by the caller's scope, before shaping into the response. */
interface Tally {
  series: Map<number, number>;
  severity: Map<string, number>;
  action: Map<string, number>;
  resourceType: Map<string, number>;
  users: Map<string, number>;
}

function emptyTally(): Tally {
  return {
    series: new Map(),
    severity: new Map(),
    action: new Map(),
    resourceType: new Map(),
    users: new Map(),
  };
}

function add<K>(m: Map<K, number>, k: K, n: number): void {
  m.set(k, (m.get(k) ?? 0) + n);
}

/**
 * Tenant-wide stats from the rollups (migrations 003, 005 and 006): reads O(buckets × distinct
 * values), never events. The series sums daily totals for its whole settled days and hourly ones
 * for the rest (`seriesSegments`); the breakdowns (one row per dimension value) and top users sum
 * the signed `segments` of the range (whole weeks, days, edge hours). One statement, so one round
 * trip: the series, the three breakdowns and the users come back as rows tagged by `part`.
 * Unnamed, so planned for its range every time: as a named statement PostgreSQL kept a generic
 * plan after five runs, and a 30-day request for a tenant with 1,000 active users went from 21 to
 * 124 ms (p50, idle).
 *
 * With a `cache`, the sums of segments that ended two hours ago or earlier come from it
 * (`StatsCache`): the statement reads the rest, each missing settled segment's own sums (to be
 * cached), and the tenant's rollup revision, and is run again without the cache when that
 * revision is not the one the cached sums were read at. Without one, or with no settled segment
 * in the range, the statement sums and picks the top users itself.
 */
async function tenantTally(
  db: TenantTx,
  tenantId: string,
  range: StatsRange,
  top: number,
  now: number,
  cache?: StatsCacheUse,
) {
  const boundary = settledBoundary(Math.min(now, Date.now()));
  const split = (segs: Segment[]) => (cache ? splitSettled(segs, boundary) : { settled: [], fresh: segs });
  const parts = segments(range.fromMs, range.toMs, now);
  const plan: TallyPlan = {
    totals: split(seriesSegments(range, now)),
    values: split(parts),
    users: split(parts),
  };
  const settled = FAMILIES.reduce((n, f) => n + plan[f].settled.length, 0);
  const assumed = cache?.cache.revision(tenantId);
  const fromCache: CachedSums = (family, seg) =>
    assumed === undefined ? undefined : cache?.cache.get(tenantId, family, seg);
  let result = await tallyStatement(db, tenantId, range, top, plan, fromCache);
  if (cache && settled > 0) {
    // Sums taken from the cache belong to the revision it assumed; if that moved, read them all.
    const stale = assumed !== undefined && result.rev !== assumed && result.read.length < settled;
    if (stale) {
      cache.cache.drop(tenantId);
      result = await tallyStatement(db, tenantId, range, top, plan, () => undefined);
    }
    for (const r of result.read) cache.cache.put(tenantId, result.rev, r.family, r.seg, r.sums);
    cache.count(stale ? 'stale' : result.read.length > 0 ? 'miss' : 'hit');
  }
  return result.tally;
}

/** A stats cache and the counter of what it did for each request (`hit`, `miss`, `stale`). */
export interface StatsCacheUse {
  cache: StatsCache;
  count(result: 'hit' | 'miss' | 'stale'): void;
}

const FAMILIES = ['totals', 'values', 'users'] as const;

/** Per rollup family, its segments split into settled (cacheable) and fresh ones. */
type TallyPlan = Record<RollupFamily, { settled: Segment[]; fresh: Segment[] }>;

/** The cached sums of one settled segment, if any. */
type CachedSums = (family: RollupFamily, seg: Segment) => Sums | undefined;

/** Tags of a settled segment's own rows, by family (`t3`: settled totals segment 3). */
const TAG: Record<RollupFamily, string> = { totals: 't', values: 'v', users: 'u' };

/**
 * One run of the stats statement over `plan`. Settled segments whose sums `cached` gives are not
 * read; every other settled segment is read on its own, unsigned, and returned in `read`
 * (totals keyed by bucket start in ms, values by their `dim` letter then the value, users by id).
 */
async function tallyStatement(
  db: TenantTx,
  tenantId: string,
  range: StatsRange,
  top: number,
  plan: TallyPlan,
  cached: CachedSums,
) {
  const t = emptyTally();
  const hits = { totals: [], values: [], users: [] } as Record<RollupFamily, (Sums | undefined)[]>;
  for (const f of FAMILIES) hits[f] = plan[f].settled.map((seg) => cached(f, seg));
  const anySettled = FAMILIES.some((f) => plan[f].settled.length > 0);
  const params: unknown[] = [tenantId];
  const at = new Map<number, string>();
  /** A bucket bound as a parameter, one per distinct instant. */
  const bound = (ms: number) => {
    let p = at.get(ms);
    if (p === undefined) {
      params.push(iso(ms));
      p = `$${params.length}::timestamptz`;
      at.set(ms, p);
    }
    return p;
  };
  /** Another parameter (every one must be used, or PostgreSQL cannot type it). */
  const param = (value: unknown) => `$${params.push(value)}`;
  const from = (family: RollupFamily, seg: Segment) =>
    `FROM rollup_${family}_${seg.grain} WHERE tenant_id = $1 AND bucket >= ${bound(seg.from)} AND bucket < ${bound(seg.to)}`;
  /** Rows of every segment of one rollup family, signed, as one UNION ALL. */
  const union = (family: RollupFamily, columns: string, segs: readonly Segment[]) =>
    segs
      .map((seg) => `SELECT ${columns}, ${seg.sign < 0 ? '-' : ''}count AS count ${from(family, seg)}`)
      .join('\n UNION ALL ');
  /** Each settled segment's own rows, unless cached: `key` is what its sums are keyed by. */
  const settledRows = (family: RollupFamily, key: string, grouped: boolean) =>
    plan[family].settled.flatMap((seg, i) =>
      hits[family][i] === undefined
        ? [
            `SELECT '${TAG[family]}${i}', ${key}, ${grouped ? 'sum(count)::int8' : 'count'} ${from(family, seg)}${grouped ? ` GROUP BY ${key}` : ''}`,
          ]
        : [],
    );
  // Parts: 'ts' the series, the breakdowns by `dim` ('s' severity, 'a' action, 'r' resource
  // type) and 'u' the users, each summed over the fresh segments (the users' top ones only when
  // no segment is settled); 't<i>', 'v<i>', 'u<i>' settled segment i's own sums; 'rev' the
  // revision. A subtracted segment can bring a value to zero (all of its events were in the
  // hours left out): such groups are dropped, here or once the cached sums are added.
  const { totals, values, users } = plan;
  const selects = [
    ...(totals.fresh.length > 0
      ? [
          `SELECT 'ts', ((extract(epoch FROM date_trunc(${param(range.interval)}::text, bucket, 'UTC')) * 1000)::int8)::text, sum(count)::int8
             FROM (${union('totals', 'bucket', totals.fresh)}) x GROUP BY 2`,
        ]
      : []),
    ...(values.fresh.length > 0
      ? [
          `SELECT dim::text, value, sum(count)::int8 FROM (${union('values', 'dim, value', values.fresh)}) x
            GROUP BY 1, 2${anySettled ? '' : ' HAVING sum(count) > 0'}`,
        ]
      : []),
    ...(users.fresh.length > 0
      ? [
          anySettled
            ? `SELECT 'u', user_id, sum(count)::int8 FROM (${union('users', 'user_id', users.fresh)}) x GROUP BY user_id`
            : `SELECT 'u', user_id, n FROM (
                 SELECT user_id, sum(count)::int8 AS n FROM (${union('users', 'user_id', users.fresh)}) x
                  GROUP BY user_id HAVING sum(count) > 0 ORDER BY n DESC, user_id LIMIT ${param(top)}) top`,
        ]
      : []),
    ...settledRows('totals', '((extract(epoch FROM bucket) * 1000)::int8)::text', false),
    ...settledRows('values', 'dim::text || value', true),
    ...settledRows('users', 'user_id', true),
    `SELECT 'rev', '', coalesce((SELECT rev FROM rollup_revisions WHERE tenant_id = $1), 0)`,
  ];
  const { rows } = await db.query<{ part: string; a: string; n: string }>(
    `SELECT part, a, n FROM (${selects.map((sql) => `(${sql})`).join('\n UNION ALL ')}) r(part, a, n)`,
    params,
  );
  const breakdown = (dim: string) =>
    dim === 's' ? t.severity : dim === 'a' ? t.action : dim === 'r' ? t.resourceType : undefined;
  let rev = '0';
  const readAt = new Map<string, Map<string, number>>();
  for (const r of rows) {
    const n = Number(r.n);
    if (r.part === 'ts') add(t.series, Number(r.a), n);
    else if (r.part === 'u') add(t.users, r.a, n);
    else if (r.part === 'rev') rev = r.n;
    else if (r.part.length === 1) add(breakdown(r.part)!, r.a, n);
    else {
      const sums = readAt.get(r.part) ?? new Map<string, number>();
      if (sums.size === 0) readAt.set(r.part, sums);
      sums.set(r.a, n);
    }
  }
  /** Every settled segment not cached, with its sums (empty when it has no rows). */
  const read: { family: RollupFamily; seg: Segment; sums: Sums }[] = [];
  const step = range.interval === 'day' ? DAY_MS : HOUR_MS;
  for (const family of FAMILIES) {
    plan[family].settled.forEach((seg, i) => {
      let sums = hits[family][i];
      if (sums === undefined) {
        sums = readAt.get(`${TAG[family]}${i}`) ?? new Map<string, number>();
        read.push({ family, seg, sums });
      }
      for (const [key, n] of sums) {
        const signed = seg.sign * n;
        if (family === 'totals') add(t.series, floorTo(Number(key), step), signed);
        else if (family === 'users') add(t.users, key, signed);
        else add(breakdown(key[0]!)!, key.slice(1), signed);
      }
    });
  }
  for (const m of [t.severity, t.action, t.resourceType, t.users]) {
    for (const [k, n] of m) if (n <= 0) m.delete(k);
  }
  return { tally: t, rev, read };
}

/**
 * Stats of one user's own events (the `user` role). Rollups have no per-user breakdown (it would
 * cost a rollup row per user, hour and dimension on every insert), so this reads the caller's
 * events through the (tenant_id, user_id, occurred_at) index, bounded by `maxEvents`: a range
 * holding more is refused with 422 rather than scanned without limit. The WHERE clause comes from
 * `buildWhere` (tenant and user first), and row-level security applies as well.
 */
async function userTally(db: TenantTx, range: StatsRange, maxEvents: number) {
  const t = emptyTally();
  const where = buildWhere(db.scope, { from: iso(range.fromMs), to: iso(range.toMs) });
  const n = where.params.length;
  const { rows } = await db.query<{
    ms: string;
    severity: string;
    action: string;
    resource_type: string;
    n: string;
  }>(
    `SELECT (extract(epoch FROM date_trunc($${n + 1}, occurred_at, 'UTC')) * 1000)::int8 AS ms,
            severity, action, resource_type, count(*)::int8 AS n
       FROM (SELECT occurred_at, severity, action, resource_type FROM events
              WHERE ${where.sql} LIMIT $${n + 2}) e
      GROUP BY 1, 2, 3, 4`,
    [...where.params, range.interval, maxEvents + 1],
  );
  let total = 0;
  for (const r of rows) {
    const count = Number(r.n);
    total += count;
    add(t.series, Number(r.ms), count);
    add(t.severity, r.severity, count);
    add(t.action, r.action, count);
    add(t.resourceType, r.resource_type, count);
  }
  if (total > maxEvents) {
    throw new HttpError(
      422,
      'too_many_events',
      `stats for the user role cover at most ${maxEvents} events; narrow from/to`,
    );
  }
  if (total > 0 && db.scope.userId !== undefined) t.users.set(db.scope.userId, total);
  return t;
}

/** Stats for `scope` over the resolved range. `now` is injectable for tests. */
export async function computeStats(
  ctx: Context,
  scope: ReadScope,
  query: StatsQuery,
  options: { now?: number; cache?: StatsCacheUse } = {},
): Promise<StatsResponse> {
  const now = options.now ?? Date.now();
  const range = resolveRange(query, now);
  const top = query.top ?? DEFAULT_TOP;
  const userId = scope.userId;
  // One read-only REPEATABLE READ transaction as the reader role (row-level security on the
  // rollups and events): every count in the response comes from the same snapshot, so
  // total = sum of series = sum of by_severity even while persist commits.
  const tally = await withTenantScope(ctx, scope, (tx) =>
    userId !== undefined
      ? userTally(tx, range, ctx.config.STATS_USER_MAX_EVENTS)
      : tenantTally(tx, scope.tenantId, range, top, now, options.cache),
  );
  const series = bucketStarts(range).map((ms) => ({ bucket: iso(ms), count: tally.series.get(ms) ?? 0 }));
  const bySeverity = Object.fromEntries(SEVERITIES.map((s) => [s, tally.severity.get(s) ?? 0]));
  return {
    tenant_id: scope.tenantId,
    scope: userId !== undefined ? 'user' : 'tenant',
    interval: range.interval,
    from: iso(range.fromMs),
    to: iso(range.toMs),
    total: series.reduce((n, b) => n + b.count, 0),
    by_severity: bySeverity as StatsResponse['by_severity'],
    by_action: topOf(tally.action, 'action', top),
    by_resource_type: topOf(tally.resourceType, 'resource_type', top),
    top_users: topOf(tally.users, 'user_id', top),
    series,
  };
}
