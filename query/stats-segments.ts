export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;
const WEEK_MS = 7 * DAY_MS;
/** 1970-01-05, a Monday: weeks start on Monday 00:00 UTC, as `date_trunc('week', …, 'UTC')`. */
const FIRST_MONDAY_MS = 4 * DAY_MS;

/** Which rollup table a segment reads (migrations 003, 005 and 006). */
export type Grain = 'hourly' | 'daily' | 'weekly';

/** Rollup buckets with `from <= bucket < to` of one grain, added (`sign` 1) or subtracted (-1). */
export interface Segment {
  grain: Grain;
  from: number;
  to: number;
  sign: 1 | -1;
}

/**
 * From this many hours of one day inside a range, the day is read as its daily bucket minus the
 * hours outside the range instead of hour by hour. A daily bucket holds about as many rows as a
 * few busy hours (every user active that day, against those active in one hour), so it pays once
 * most of the day is inside.
 */
export const COMPLEMENT_FROM_HOURS = 14;

/** `t` rounded down (`floorTo`) or up (`ceilTo`) to a multiple of `step` counted from `origin`. */
export const floorTo = (t: number, step: number, origin = 0) =>
  Math.floor((t - origin) / step) * step + origin;
export const ceilTo = (t: number, step: number, origin = 0) => {
  const f = floorTo(t, step, origin);
  return f === t ? t : f + step;
};

/**
 * From this many days of one settled week inside a range, the week is read as its weekly bucket
 * minus the part outside instead of day by day: a weekly bucket holds about as many rows as a
 * daily one (every user active that week), so five days inside cost five buckets directly and
 * three (the week and the two days outside) as a complement.
 */
export const WEEK_COMPLEMENT_FROM_DAYS = 5;

/**
 * Rollup segments whose signed sum counts exactly the events in `[fromMs, toMs)` (whole UTC
 * hours): whole ISO weeks from the weekly rollups, the whole days around them from the daily
 * ones, and the hours at either edge from the hourly ones. An edge day mostly inside the range is
 * read as that day's daily bucket minus its hours outside, and an edge week mostly inside as its
 * weekly bucket minus its days and hours outside. Exact because every daily bucket is the sum of
 * its day's hourly buckets and every weekly one of its week's daily buckets (persist writes all
 * of them in one statement, and the backfills derived them from each other).
 *
 * Only days that ended before today (UTC, by `nowMs`) are read from daily or weekly buckets (and
 * only weeks that ended before today are complemented); the part of the range from today's
 * midnight on is read hour by hour. Persist updates today's daily and this week's weekly rows
 * with every batch, and those tables' covering indexes (migration 004) make every update leave a
 * dead index entry behind until vacuum (the likely cause of what was measured: reading today's
 * daily bucket while ingest ran at 2,000 events/s took a 30-day request from ~45 to ~105 ms p50,
 * and ~30 ms once today was read by the hour). Hourly buckets see that churn only for the current
 * hour.
 *
 * A trailing 30-day range reads 3–5 weekly buckets, at most 4 days at its start (or 2 subtracted)
 * and 6 before today, and today's hours, instead of 30 days and up to 46 hours.
 */
export function segments(fromMs: number, toMs: number, nowMs: number): Segment[] {
  const out: Segment[] = [];
  /** -1 while `subtracting`: every segment pushed then counts against the sum. */
  let sign: 1 | -1 = 1;
  /** Pushes [from, to) of one grain with `s` (-1: subtracted), times `sign`. */
  const push = (grain: Grain, from: number, to: number, s: 1 | -1 = 1) => {
    if (from < to) out.push({ grain, from, to, sign: (s * sign) as 1 | -1 });
  };
  /** Runs `read` with every segment it pushes subtracted (or added back, when it subtracts). */
  const subtracting = (read: () => void) => {
    sign = -sign as 1 | -1;
    read();
    sign = -sign as 1 | -1;
  };
  /** [a, b) within one UTC day. */
  const partOfDay = (a: number, b: number) => {
    if (a >= b) return;
    if ((b - a) / HOUR_MS < COMPLEMENT_FROM_HOURS) return push('hourly', a, b);
    const day = floorTo(a, DAY_MS);
    push('daily', day, day + DAY_MS);
    push('hourly', day, a, -1);
    push('hourly', b, day + DAY_MS, -1);
  };
  /** [a, b) by whole days and the parts of days at either end. */
  const byDays = (a: number, b: number) => {
    if (a >= b) return;
    const firstDay = ceilTo(a, DAY_MS);
    const lastDay = floorTo(b, DAY_MS);
    if (firstDay < lastDay) {
      partOfDay(a, firstDay);
      push('daily', firstDay, lastDay);
      partOfDay(lastDay, b);
    } else if (firstDay < b) {
      // No whole day inside, but a day boundary: the end of one day and the start of the next.
      partOfDay(a, firstDay);
      partOfDay(firstDay, b);
    } else {
      partOfDay(a, b);
    }
  };
  /** Start of the ISO week holding `t`. */
  const weekOf = (t: number) => floorTo(t, WEEK_MS, FIRST_MONDAY_MS);
  /** [a, b) within one settled ISO week: by days, or the week minus the rest when mostly inside. */
  const partOfWeek = (a: number, b: number) => {
    if (a >= b) return;
    if ((b - a) / DAY_MS < WEEK_COMPLEMENT_FROM_DAYS) return byDays(a, b);
    const week = weekOf(a);
    push('weekly', week, week + WEEK_MS);
    subtracting(() => {
      byDays(week, a);
      byDays(b, week + WEEK_MS);
    });
  };
  const today = floorTo(nowMs, DAY_MS);
  const settledTo = Math.min(toMs, today);
  /** Weeks that ended by today's midnight: their weekly buckets no longer change. */
  const settledWeeksTo = weekOf(today);
  if (fromMs < settledTo) {
    const firstWeek = ceilTo(fromMs, WEEK_MS, FIRST_MONDAY_MS);
    const lastWeek = weekOf(settledTo);
    /** The part of [a, b) in one week: complemented only if that week is settled. */
    const edge = (a: number, b: number) =>
      weekOf(a) + WEEK_MS <= settledWeeksTo ? partOfWeek(a, b) : byDays(a, b);
    if (firstWeek < lastWeek) {
      edge(fromMs, firstWeek);
      push('weekly', firstWeek, lastWeek);
      edge(lastWeek, settledTo);
    } else if (firstWeek < settledTo) {
      // No whole week inside, but a week boundary.
      edge(fromMs, firstWeek);
      edge(firstWeek, settledTo);
    } else {
      edge(fromMs, settledTo);
    }
  }
  push('hourly', Math.max(fromMs, today), toMs);
  return out;
}

/**
 * Segments of the time series of `[fromMs, toMs)` (whole UTC hours), read from the totals
 * rollups. By hour, every hour from the hourly totals. By day, each whole day that ended before
 * today (by `nowMs`) from the daily totals, one row instead of 24, and the partial days at either
 * end and today from the hourly ones; each row is then summed into its day bucket.
 */
export function seriesSegments(
  range: { fromMs: number; toMs: number; interval: 'hour' | 'day' },
  nowMs: number,
): Segment[] {
  const { fromMs, toMs } = range;
  if (range.interval === 'hour') return [{ grain: 'hourly', from: fromMs, to: toMs, sign: 1 }];
  const firstDay = ceilTo(fromMs, DAY_MS);
  const lastDay = Math.min(floorTo(toMs, DAY_MS), floorTo(nowMs, DAY_MS));
  if (firstDay >= lastDay) return [{ grain: 'hourly', from: fromMs, to: toMs, sign: 1 }];
  const out: Segment[] = [];
  if (fromMs < firstDay) out.push({ grain: 'hourly', from: fromMs, to: firstDay, sign: 1 });
  out.push({ grain: 'daily', from: firstDay, to: lastDay, sign: 1 });
  if (lastDay < toMs) out.push({ grain: 'hourly', from: lastDay, to: toMs, sign: 1 });
  return out;
}
