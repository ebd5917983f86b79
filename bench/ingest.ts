/**
 * `npm run bench -- ingest [--quick]`: end-to-end ingest throughput (POST → persisted and
 * queryable) for bulk sizes 1, 100 and 500; the raw COPY ceiling measured in the same run; and
 * HTTP latency of 500-event bulks at 10,000 events/s offered (open loop). Requests rotate over
 * `--tenants` tenants (8 by default, as a multi-tenant service sees): one tenant's batches are
 * processed strictly in order, one at a time, so `--tenants 1` measures the single-tenant ceiling.
 */
import { performance } from 'node:perf_hooks';
import { parseBenchArgs } from './lib/cli.js';
import { eventGenerator, type GeneratedEvent } from './lib/events.js';
import { HttpClient } from './lib/http-client.js';
import { closedLoop, openLoop } from './lib/load.js';
import { benchPostgres } from './lib/postgres.js';
import { waitPersisted } from './lib/progress.js';
import { rawCopyRate, rawRows } from './lib/raw-copy.js';
import { fmt, note, printResult, printSummary } from './lib/report.js';
import { benchEnv } from './lib/service.js';
import { type LatencySummary, rate, summarize } from './lib/stats.js';

const OPTIONS = {
  'events-1': { full: 20_000, quick: 2_000, help: 'events sent one per request' },
  'events-100': { full: 200_000, quick: 20_000, help: 'events sent in bulks of 100' },
  'events-500': {
    full: 300_000,
    quick: 30_000,
    help: 'events sent in bulks of 500; also the raw COPY row count',
  },
  tenants: {
    full: 8,
    quick: 8,
    help: 'tenants the requests of each phase rotate over (a tenant is processed in order, one batch at a time)',
  },
  'offered-seconds': { full: 20, quick: 3, help: 'duration of the 10,000 events/s offered-load test' },
  'offered-rate': { full: 10_000, quick: 10_000, help: 'events/s offered in 500-event bulks' },
  'max-seconds': {
    full: 0,
    quick: 4,
    help: 'stop sending a bulk-size phase after this many seconds (0: no limit); keeps --quick short on a busy machine',
  },
};

/** Requests in flight per bulk size: enough to keep the pipeline busy without queueing in the client. */
const CONCURRENCY: Record<number, number> = { 1: 32, 100: 8, 500: 4 };
/** Distinct request bodies per size, serialized once and cycled: the client must stay cheap. */
const DISTINCT_BODIES = 40;

interface SizeResult {
  events: number;
  events_per_s: number;
  accepted_per_s: number;
  http_ms: LatencySummary;
}

/** Runs the ingest scenario with `argv` options; returns the exit code. */
export async function runIngest(argv: string[]): Promise<number> {
  const { quick, values } = parseBenchArgs(argv, OPTIONS);
  const env = await benchEnv('ingest');
  const sizes = [1, 100, 500] as const;
  const tenantCount = Math.max(1, values.tenants);
  const tenantsOf = (phase: string) => Array.from({ length: tenantCount }, (_, k) => `${phase}-${k}`);
  await env.createTenants([...sizes.flatMap((s) => tenantsOf(`bulk-${s}`)), ...tenantsOf('offered')]);
  const daemon = await env.daemon('all');
  note('starting the service (all daemons in one process)');
  await daemon.start();
  const client = new HttpClient(daemon.url, 64);

  const results: Record<string, SizeResult> = {};
  const counts: Record<number, number> = {};
  const maxMs = values['max-seconds'] > 0 ? values['max-seconds'] * 1000 : Number.POSITIVE_INFINITY;
  for (const size of sizes) {
    const tenants = tenantsOf(`bulk-${size}`);
    const total = values[`events-${size}`];
    const tokens = await Promise.all(tenants.map((t) => env.token(t, 'admin', 'bench-writer')));
    const bodies = makeBodies(size, size);
    const requests = Math.ceil(total / size);
    const latencies: number[] = [];
    note(
      `bulk ${size}: ${fmt(total)} events in ${fmt(requests)} requests, ${CONCURRENCY[size]} in flight, ${tenantCount} tenant(s)`,
    );
    const started = performance.now();
    const sent = await closedLoop(
      requests,
      CONCURRENCY[size]!,
      async (i) => {
        const res = await client.request('POST', size === 1 ? '/api/v1/logs' : '/api/v1/logs/bulk', {
          token: tokens[i % tokens.length]!,
          body: bodies[i % bodies.length]!,
        });
        if (res.status !== 202)
          throw new Error(`ingest answered ${res.status}: ${res.body.toString().slice(0, 200)}`);
        latencies.push(res.ms);
      },
      maxMs,
    );
    const acked = performance.now();
    const persisted = await waitPersisted(env.db, tenants, sent * size);
    counts[size] = sent * size;
    results[`bulk_${size}`] = {
      events: sent * size,
      events_per_s: rate(sent * size, persisted - started),
      accepted_per_s: rate(sent * size, acked - started),
      http_ms: summarize(latencies),
    };
  }

  // Offered load: fixed-rate 500-event bulks whatever the response times (open loop).
  const offeredRate = values['offered-rate'];
  const offeredTokens = await Promise.all(
    tenantsOf('offered').map((t) => env.token(t, 'admin', 'bench-writer')),
  );
  const offeredBodies = makeBodies(500, 7);
  const offeredLatencies: number[] = [];
  let offeredFailures = 0;
  note(`offered load: ${fmt(offeredRate)} events/s in 500-event bulks for ${values['offered-seconds']} s`);
  const { fired } = await openLoop(offeredRate / 500, values['offered-seconds'] * 1000, async (i) => {
    const res = await client.request('POST', '/api/v1/logs/bulk', {
      token: offeredTokens[i % offeredTokens.length]!,
      body: offeredBodies[i % offeredBodies.length]!,
    });
    if (res.status === 202) offeredLatencies.push(res.ms);
    else offeredFailures++;
  });
  const offered = {
    offered_per_s: offeredRate,
    requests: fired,
    failed: offeredFailures,
    http_ms: summarize(offeredLatencies),
  };
  client.close();
  await daemon.stop();

  // Raw ceiling, same run: as many rows as the 500-bulk phase, COPYed into a fresh database.
  const rawCount = counts[500]!;
  note(`raw COPY ceiling: ${fmt(rawCount)} rows into a fresh database`);
  const next = eventGenerator(500);
  const rows = rawRows('raw', Array.from({ length: rawCount }, next));
  const rawUrl = await (await benchPostgres()).createDatabase('raw');
  const raw = Math.round(await rawCopyRate(rawUrl, 'raw', rows));
  const best = results.bulk_500!.events_per_s;
  const ratio = Math.round((best / raw) * 100) / 100;

  printSummary(`ingest${quick ? ' (quick)' : ''}, ${tenantCount} tenant(s) per phase`, [
    ...sizes.map((s): [string, string] => {
      const r = results[`bulk_${s}`]!;
      return [
        `bulk ${s}`,
        `${fmt(r.events_per_s)} events/s end-to-end (accepted ${fmt(r.accepted_per_s)}/s), HTTP p50 ${r.http_ms.p50} ms, p99 ${r.http_ms.p99} ms`,
      ];
    }),
    ['raw COPY', `${fmt(raw)} rows/s`],
    ['pipeline / raw', `${ratio} (bulk 500)`],
    [
      `offered ${fmt(offeredRate)}/s`,
      `HTTP p50 ${offered.http_ms.p50} ms, p99 ${offered.http_ms.p99} ms over ${fired} requests (${offeredFailures} failed)`,
    ],
  ]);
  printResult('ingest', {
    quick,
    tenants: tenantCount,
    ...results,
    raw_copy_rows_per_s: raw,
    ratio,
    offered,
  });
  return offeredFailures === 0 ? 0 : 1;
}

/** Serialized request bodies of `size` events (one event alone, or `{"events": [...]}`). */
function makeBodies(size: number, seed: number): Buffer[] {
  const next = eventGenerator(seed * 1000 + size, `b${size}`);
  return Array.from({ length: DISTINCT_BODIES }, () => {
    const events: GeneratedEvent[] = Array.from({ length: size }, next);
    return Buffer.from(JSON.stringify(size === 1 ? events[0] : { events }));
  });
}
