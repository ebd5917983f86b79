import Type, { type Static } from 'typebox';
import type { ReadScope } from '../infra/auth/access.js';
import type { Context } from '../infra/context.js';
import { HttpError } from '../infra/http/errors.js';
import { SEVERITIES, TenantId } from '../infra/schema/event.js';
import { FilterProperties } from './filters.js';
import { add, emptyTally, type StatsCacheUse, tenantTally } from './rollup-tally.js';
import { type TenantTx, withTenantScope } from './scoped.js';
import { ceilTo, DAY_MS, floorTo, HOUR_MS } from './stats-segments.js';
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
