import { describe, expect, it } from 'vitest';
import {
  COMPLEMENT_FROM_HOURS,
  type Segment,
  segments,
  seriesSegments,
  WEEK_COMPLEMENT_FROM_DAYS,
} from './stats-segments.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const at = (iso: string) => Date.parse(iso);
/** A `now` after every range below, unless a test is about today. */
const LATER = at('2030-01-01T00:00:00Z');

/**
 * Rollups as persist keeps them, over a made-up history: a count per hour, and the daily and
 * weekly buckets as the sums of their hours (what makes subtracting hours from a day exact).
 */
function history(fromMs: number, hours: number, seed = 7) {
  let x = seed;
  const rnd = () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
  const hourly = new Map<number, number>();
  for (let i = 0; i < hours; i++) hourly.set(fromMs + i * HOUR, rnd() < 0.2 ? 0 : 1 + Math.floor(rnd() * 50));
  const sumOver = (grainOf: (t: number) => number) => {
    const m = new Map<number, number>();
    for (const [t, n] of hourly) m.set(grainOf(t), (m.get(grainOf(t)) ?? 0) + n);
    return m;
  };
  const monday = (t: number) => Math.floor((t - 4 * DAY) / (7 * DAY)) * 7 * DAY + 4 * DAY;
  return {
    hourly,
    daily: sumOver((t) => Math.floor(t / DAY) * DAY),
    weekly: sumOver(monday),
    monday,
  };
}

type History = ReturnType<typeof history>;

function sumSegments(h: History, segs: Segment[]): number {
  let total = 0;
  for (const s of segs) {
    for (const [bucket, n] of h[s.grain]) if (bucket >= s.from && bucket < s.to) total += s.sign * n;
  }
  return total;
}

function sumHours(h: History, fromMs: number, toMs: number): number {
  let total = 0;
  for (const [t, n] of h.hourly) if (t >= fromMs && t < toMs) total += n;
  return total;
}

describe('segments', () => {
  it('reads a trailing 30-day range as whole weeks, whole days and today by the hour', () => {
    const from = at('2026-10-29T21:00:00Z');
    const to = at('2026-11-28T22:00:00Z');
    const now = at('2026-11-28T21:55:00Z');
    expect(segments(from, to, now)).toEqual([
      { grain: 'hourly', from, to: at('2026-10-30T00:00:00Z'), sign: 1 },
      { grain: 'daily', from: at('2026-10-30T00:00:00Z'), to: at('2026-11-02T00:00:00Z'), sign: 1 },
      { grain: 'weekly', from: at('2026-11-02T00:00:00Z'), to: at('2026-11-23T00:00:00Z'), sign: 1 },
      { grain: 'daily', from: at('2026-11-23T00:00:00Z'), to: at('2026-11-28T00:00:00Z'), sign: 1 },
      // Today: persist is still updating its daily (and this week's weekly) rows.
      { grain: 'hourly', from: at('2026-11-28T00:00:00Z'), to, sign: 1 },
    ]);
  });

  it('reads a past day mostly inside as the day minus the hours outside', () => {
    const from = at('2026-11-23T00:00:00Z'); // a Monday
    const to = at('2026-11-26T22:00:00Z');
    expect(segments(from, to, LATER).slice(-2)).toEqual([
      { grain: 'daily', from: at('2026-11-26T00:00:00Z'), to: at('2026-11-27T00:00:00Z'), sign: 1 },
      { grain: 'hourly', from: to, to: at('2026-11-27T00:00:00Z'), sign: -1 },
    ]);
  });

  it('reads a settled week mostly inside as the week minus its days and hours outside', () => {
    const from = at('2026-10-29T21:00:00Z');
    const to = at('2026-11-28T22:00:00Z'); // a Saturday; that week ended before LATER
    expect(segments(from, to, LATER).slice(-4)).toEqual([
      { grain: 'weekly', from: at('2026-11-02T00:00:00Z'), to: at('2026-11-23T00:00:00Z'), sign: 1 },
      { grain: 'weekly', from: at('2026-11-23T00:00:00Z'), to: at('2026-11-30T00:00:00Z'), sign: 1 },
      { grain: 'hourly', from: to, to: at('2026-11-29T00:00:00Z'), sign: -1 },
      { grain: 'daily', from: at('2026-11-29T00:00:00Z'), to: at('2026-11-30T00:00:00Z'), sign: -1 },
    ]);
    // At the start: a week from its Monday 02:00 is the week minus two hours. A day of it that is
    // itself read as a complement (Tuesday from 03:00 on) is added back as hours.
    const monday = at('2026-11-02T00:00:00Z');
    expect(segments(monday + 2 * HOUR, monday + 7 * DAY, LATER)).toEqual([
      { grain: 'weekly', from: monday, to: monday + 7 * DAY, sign: 1 },
      { grain: 'hourly', from: monday, to: monday + 2 * HOUR, sign: -1 },
    ]);
    expect(segments(monday + DAY + 3 * HOUR, monday + 7 * DAY, LATER)).toEqual([
      { grain: 'weekly', from: monday, to: monday + 7 * DAY, sign: 1 },
      { grain: 'daily', from: monday, to: monday + DAY, sign: -1 },
      { grain: 'hourly', from: monday + DAY, to: monday + DAY + 3 * HOUR, sign: -1 },
    ]);
    // Fewer than WEEK_COMPLEMENT_FROM_DAYS days inside: day by day.
    const short = segments(monday + (7 - WEEK_COMPLEMENT_FROM_DAYS) * DAY + HOUR, monday + 7 * DAY, LATER);
    expect(short.some((seg) => seg.grain === 'weekly')).toBe(false);
  });

  it('never complements this week, whose weekly bucket persist is still updating', () => {
    const now = at('2026-11-28T10:00:00Z'); // Saturday; the week started Monday 2026-11-23
    const segs = segments(at('2026-11-23T02:00:00Z'), at('2026-11-28T11:00:00Z'), now);
    expect(segs.some((seg) => seg.grain === 'weekly')).toBe(false);
    expect(segs.at(-1)).toEqual({
      grain: 'hourly',
      from: at('2026-11-28T00:00:00Z'),
      to: at('2026-11-28T11:00:00Z'),
      sign: 1,
    });
  });

  it('never reads a daily or weekly bucket of today or later', () => {
    const now = at('2026-11-25T10:30:00Z'); // a Wednesday
    const segs = segments(at('2026-11-01T00:00:00Z'), at('2026-12-31T00:00:00Z'), now);
    for (const s of segs)
      if (s.grain !== 'hourly') expect(s.to).toBeLessThanOrEqual(at('2026-11-25T00:00:00Z'));
    expect(segs.at(-1)).toEqual({
      grain: 'hourly',
      from: at('2026-11-25T00:00:00Z'),
      to: at('2026-12-31T00:00:00Z'),
      sign: 1,
    });
    expect(segments(at('2026-11-25T03:00:00Z'), at('2026-11-25T09:00:00Z'), now)).toEqual([
      { grain: 'hourly', from: at('2026-11-25T03:00:00Z'), to: at('2026-11-25T09:00:00Z'), sign: 1 },
    ]);
  });

  it('reads a short range hour by hour, and a day boundary inside it on both sides', () => {
    expect(segments(at('2026-11-27T21:00:00Z'), at('2026-11-28T02:00:00Z'), LATER)).toEqual([
      { grain: 'hourly', from: at('2026-11-27T21:00:00Z'), to: at('2026-11-28T00:00:00Z'), sign: 1 },
      { grain: 'hourly', from: at('2026-11-28T00:00:00Z'), to: at('2026-11-28T02:00:00Z'), sign: 1 },
    ]);
  });

  it('subtracts from a day only from COMPLEMENT_FROM_HOURS hours of it on', () => {
    const day = at('2026-11-28T00:00:00Z');
    expect(segments(day, day + (COMPLEMENT_FROM_HOURS - 1) * HOUR, LATER)).toEqual([
      { grain: 'hourly', from: day, to: day + (COMPLEMENT_FROM_HOURS - 1) * HOUR, sign: 1 },
    ]);
    expect(segments(day + 2 * HOUR, day + (COMPLEMENT_FROM_HOURS + 2) * HOUR, LATER)).toEqual([
      { grain: 'daily', from: day, to: day + DAY, sign: 1 },
      { grain: 'hourly', from: day, to: day + 2 * HOUR, sign: -1 },
      { grain: 'hourly', from: day + (COMPLEMENT_FROM_HOURS + 2) * HOUR, to: day + DAY, sign: -1 },
    ]);
  });

  it('starts weeks on Monday 00:00 UTC, as date_trunc(week) does', () => {
    const monday = at('2026-11-23T00:00:00Z');
    expect(new Date(monday).getUTCDay()).toBe(1);
    expect(segments(monday, monday + 7 * DAY, LATER)).toEqual([
      { grain: 'weekly', from: monday, to: monday + 7 * DAY, sign: 1 },
    ]);
    // One hour short of the week: the week minus that hour.
    expect(segments(monday + HOUR, monday + 7 * DAY, LATER)).toEqual([
      { grain: 'weekly', from: monday, to: monday + 7 * DAY, sign: 1 },
      { grain: 'hourly', from: monday, to: monday + HOUR, sign: -1 },
    ]);
  });

  it('counts exactly what the hours count, for every range of a 70-day history', () => {
    const start = at('2026-08-30T00:00:00Z');
    const h = history(start, 70 * 24);
    // Every (from, to) pair at 7-hour steps (coprime with days and weeks, so every alignment).
    let checked = 0;
    // `now` after the history, and in the middle of it (the part from that day on by the hour).
    for (const now of [LATER, start + 40 * DAY + 5 * HOUR]) {
      for (let from = start; from < start + 70 * DAY; from += 7 * HOUR) {
        for (let to = from + HOUR; to <= start + 70 * DAY; to += 7 * HOUR) {
          const segs = segments(from, to, now);
          const range = `${new Date(from).toISOString()} – ${new Date(to).toISOString()}`;
          expect(sumSegments(h, segs), range).toBe(sumHours(h, from, to));
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(4000);
  });

  it('works before 1970 and on dates far apart', () => {
    const start = at('1969-12-20T00:00:00Z');
    const h = history(start, 30 * 24, 3);
    expect(h.monday(at('1969-12-24T05:00:00Z'))).toBe(at('1969-12-22T00:00:00Z'));
    for (const [from, to] of [
      [start + 5 * HOUR, start + 29 * DAY + 3 * HOUR],
      [start, start + 30 * DAY],
      [start + 50 * HOUR, start + 51 * HOUR],
    ] as const) {
      expect(sumSegments(h, segments(from, to, LATER))).toBe(sumHours(h, from, to));
    }
  });
});

describe('seriesSegments', () => {
  /** The series as the query builds it: each segment's rows summed into their bucket. */
  function seriesOf(h: History, segs: Segment[], step: number): Map<number, number> {
    const out = new Map<number, number>();
    for (const s of segs) {
      expect(s.sign).toBe(1);
      expect(s.grain).not.toBe('weekly');
      for (const [bucket, n] of h[s.grain]) {
        if (bucket < s.from || bucket >= s.to || n === 0) continue;
        const b = Math.floor(bucket / step) * step;
        out.set(b, (out.get(b) ?? 0) + n);
      }
    }
    return out;
  }
  function hoursBy(h: History, fromMs: number, toMs: number, step: number): Map<number, number> {
    const out = new Map<number, number>();
    for (const [t, n] of h.hourly) {
      if (t < fromMs || t >= toMs || n === 0) continue;
      const b = Math.floor(t / step) * step;
      out.set(b, (out.get(b) ?? 0) + n);
    }
    return out;
  }

  it('reads whole settled days from the daily totals, edge hours and today from the hourly ones', () => {
    const from = at('2026-10-29T21:00:00Z');
    const to = at('2026-11-28T22:00:00Z');
    const now = at('2026-11-28T21:55:00Z');
    expect(seriesSegments({ fromMs: from, toMs: to, interval: 'day' }, now)).toEqual([
      { grain: 'hourly', from, to: at('2026-10-30T00:00:00Z'), sign: 1 },
      { grain: 'daily', from: at('2026-10-30T00:00:00Z'), to: at('2026-11-28T00:00:00Z'), sign: 1 },
      { grain: 'hourly', from: at('2026-11-28T00:00:00Z'), to, sign: 1 },
    ]);
    expect(seriesSegments({ fromMs: from, toMs: to, interval: 'hour' }, now)).toEqual([
      { grain: 'hourly', from, to, sign: 1 },
    ]);
  });

  it('gives every bucket exactly its hours, for every range of a 20-day history', () => {
    const start = at('2026-08-30T00:00:00Z');
    const h = history(start, 20 * 24, 11);
    let checked = 0;
    for (const now of [LATER, start + 12 * DAY + 5 * HOUR]) {
      for (let from = start; from < start + 20 * DAY; from += 5 * HOUR) {
        for (let to = from + HOUR; to <= start + 20 * DAY; to += 5 * HOUR) {
          for (const [interval, step] of [
            ['day', DAY],
            ['hour', HOUR],
          ] as const) {
            const segs = seriesSegments({ fromMs: from, toMs: to, interval }, now);
            expect(seriesOf(h, segs, step)).toEqual(hoursBy(h, from, to, step));
            checked++;
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(4000);
  });
});
