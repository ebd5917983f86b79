/** Test support: the stats oracle both stats test files compare the service with. */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
export const SEVERITIES = ['INFO', 'WARNING', 'ERROR', 'CRITICAL'] as const;

/** One event as a stats test sends it. */
export interface Ev {
  user_id?: string;
  action: string;
  resource_type: string;
  severity: (typeof SEVERITIES)[number];
  occurred_at: string;
}

/** The oracle: stats computed in plain JS from the events we sent, with the documented semantics. */
export function expected(
  events: Ev[],
  tenant: string,
  fromMs: number,
  toMs: number,
  interval: 'hour' | 'day',
  top: number,
  onlyUser?: string,
) {
  const step = interval === 'day' ? DAY : HOUR;
  const inRange = events.filter((e) => {
    const t = Date.parse(e.occurred_at);
    return t >= fromMs && t < toMs && (onlyUser === undefined || e.user_id === onlyUser);
  });
  const tally = (key: (e: Ev) => string | undefined) => {
    const m = new Map<string, number>();
    for (const e of inRange) {
      const k = key(e);
      if (k !== undefined) m.set(k, (m.get(k) ?? 0) + 1);
    }
    return [...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, top);
  };
  const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
  const series = [];
  for (let t = Math.floor(fromMs / step) * step; t < toMs; t += step) {
    series.push({
      bucket: iso(t),
      count: inRange.filter((e) => Math.floor(Date.parse(e.occurred_at) / step) * step === t).length,
    });
  }
  return {
    tenant_id: tenant,
    scope: onlyUser === undefined ? 'tenant' : 'user',
    interval,
    from: iso(fromMs),
    to: iso(toMs),
    total: inRange.length,
    by_severity: Object.fromEntries(
      SEVERITIES.map((s) => [s, inRange.filter((e) => e.severity === s).length]),
    ),
    by_action: tally((e) => e.action).map(([action, count]) => ({ action, count })),
    by_resource_type: tally((e) => e.resource_type).map(([resource_type, count]) => ({
      resource_type,
      count,
    })),
    top_users: tally((e) => e.user_id).map(([user_id, count]) => ({ user_id, count })),
    series,
  };
}
