import { performance } from 'node:perf_hooks';
import { eventGenerator } from './events.js';
import type { HttpClient } from './http-client.js';
import { openLoop } from './load.js';
import { type LatencySummary, rate, summarize } from './stats.js';

/** Events per background request. */
const BULK = 100;
/** Requests in flight at most; a tick that finds this many still waiting is counted as `shed`. */
const MAX_IN_FLIGHT = 16;

/** What a background ingest did: `shed` ticks were not sent because the service fell behind. */
export interface BackgroundReport {
  sent: number;
  /** Events accepted per second over the whole run. */
  achieved_per_s: number;
  shed: number;
  failed: number;
  http_ms: LatencySummary;
}

/** A running background ingest; `stop()` ends it and reports what it did. */
export interface BackgroundIngest {
  stop(): Promise<BackgroundReport>;
}

/**
 * Posts `perSecond` events in 100-event bulks at a fixed rate (open loop) until stopped, each bulk
 * to a tenant drawn by `pickTenant` with that tenant's writer token: the "while ingest continues"
 * condition of the search and visibility targets. When the service falls so far behind that
 * MAX_IN_FLIGHT requests are outstanding, further ticks are shed (and counted) rather than piled
 * up without bound, which would turn a slow run into an endless one.
 */
export function backgroundIngest(
  client: HttpClient,
  perSecond: number,
  tokens: Map<string, string>,
  pickTenant: () => string,
): BackgroundIngest {
  const next = eventGenerator(99, 'bg');
  const abort = new AbortController();
  const latencies: number[] = [];
  let failed = 0;
  let shed = 0;
  let inFlight = 0;
  const started = performance.now();
  const done = openLoop(
    perSecond / BULK,
    Number.POSITIVE_INFINITY,
    async () => {
      if (inFlight >= MAX_IN_FLIGHT) {
        shed++;
        return;
      }
      inFlight++;
      const tenant = pickTenant();
      const body = JSON.stringify({ events: Array.from({ length: BULK }, next) });
      try {
        const res = await client.request('POST', '/api/v1/logs/bulk', { token: tokens.get(tenant)!, body });
        if (res.status === 202) latencies.push(res.ms);
        else failed++;
      } catch {
        failed++;
      } finally {
        inFlight--;
      }
    },
    abort.signal,
  );
  return {
    async stop() {
      abort.abort();
      await done;
      const sent = latencies.length * BULK;
      return {
        sent,
        achieved_per_s: rate(sent, performance.now() - started),
        shed: shed * BULK,
        failed,
        http_ms: summarize(latencies),
      };
    },
  };
}
