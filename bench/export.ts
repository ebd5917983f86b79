/**
 * `npm run bench -- export [--quick] [--rows N]`: loads N events (default 1M) into one tenant with
 * the fast loader, then streams `GET /api/v1/logs/export` as CSV and as NDJSON from a query daemon
 * process, reporting rows/s and that process's peak RSS (VmHWM from /proc, reset before each
 * format). Skipped when this build has no export endpoint. The daemon runs with the heap cap
 * docker-compose.yml gives the query service (`QUERY_NODE_OPTIONS`): an export's working set is a
 * chunk or two, and without a cap V8 lets garbage pile up to well past 100 MB before collecting.
 */
import { performance } from 'node:perf_hooks';
import { parseBenchArgs } from './lib/cli.js';
import { HttpClient } from './lib/http-client.js';
import { loadEvents } from './lib/loader.js';
import { fmt, note, printResult, printSummary } from './lib/report.js';
import { benchEnv } from './lib/service.js';
import { rate } from './lib/stats.js';

const OPTIONS = {
  rows: { full: 1_000_000, quick: 50_000, help: 'events to load and export' },
};
const TENANT = 'export';
/** As in docker-compose.yml's query service. */
const QUERY_NODE_OPTIONS = '--max-old-space-size=128';
const FORMATS = ['csv', 'ndjson'] as const;
const MB = 1024 * 1024;

interface FormatResult {
  rows: number;
  rows_per_s: number;
  mb: number;
  seconds: number;
  /** Peak RSS of the query process during this export (MB). */
  peak_rss_mb: number;
  /** RSS of the query process just before it (MB). */
  start_rss_mb: number;
}

/** Runs the export scenario; exits 1 if an export returned a wrong row count. */
export async function runExport(argv: string[]): Promise<number> {
  const { quick, values } = parseBenchArgs(argv, OPTIONS);
  const env = await benchEnv('export');
  await env.createTenants([TENANT]);
  note(`loading ${fmt(values.rows)} events`);
  const loaded = await loadEvents(env, { events: values.rows, tenants: [TENANT], heavyShare: 1, days: 30 });
  // Exports are bounded by this instant: the service's own self-audit events come after it.
  const to = new Date().toISOString();
  note(`loaded at ${fmt(loaded.eventsPerSecond)} events/s`);

  // The query service alone, as deployed behind the ALB's read rules.
  const daemon = await env.daemon('query', { NODE_OPTIONS: QUERY_NODE_OPTIONS });
  await daemon.start();
  const client = new HttpClient(daemon.url, 2);
  const token = await env.token(TENANT, 'auditor', 'bench-auditor');

  const results: Partial<Record<(typeof FORMATS)[number], FormatResult>> = {};
  let skipped: string | undefined;
  let mismatch = false;
  for (const format of FORMATS) {
    const path = `/api/v1/logs/export?${new URLSearchParams({ format, to })}`;
    daemon.resetPeakRss();
    const startRss = daemon.peakRss();
    let lines = 0;
    let lastByte = 0x0a;
    const started = performance.now();
    const res = await client.request('GET', path, {
      token,
      sink: (chunk) => {
        for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) lines++;
        lastByte = chunk[chunk.length - 1] ?? lastByte;
      },
    });
    const ms = performance.now() - started;
    if (res.status === 404 || res.status === 400) {
      skipped = `HTTP ${res.status}`;
      note(`export skipped: ${skipped}`);
      break;
    }
    if (res.status !== 200) throw new Error(`export ${format}: HTTP ${res.status}`);
    if (lastByte !== 0x0a) lines++;
    // CSV has a header row; generated content has no line breaks inside fields.
    const rows = format === 'csv' ? lines - 1 : lines;
    if (rows !== values.rows) {
      mismatch = true;
      note(`export ${format} returned ${rows} rows, expected ${values.rows}`);
    }
    results[format] = {
      rows,
      rows_per_s: rate(rows, ms),
      mb: Math.round((res.bytes / MB) * 10) / 10,
      seconds: Math.round(ms / 100) / 10,
      peak_rss_mb: Math.round(daemon.peakRss() / MB),
      start_rss_mb: Math.round(startRss / MB),
    };
  }
  client.close();
  await daemon.stop();

  printSummary(`export${quick ? ' (quick)' : ''}: ${fmt(values.rows)} rows`, [
    ['loader', `${fmt(loaded.eventsPerSecond)} events/s`],
    ...(skipped
      ? [['export', `skipped (${skipped})`] as [string, string]]
      : Object.entries(results).map(([format, r]): [string, string] => [
          format,
          `${fmt(r.rows_per_s)} rows/s (${fmt(r.rows)} rows, ${r.mb} MB in ${r.seconds} s), peak RSS ${r.peak_rss_mb} MB (from ${r.start_rss_mb} MB)`,
        ])),
  ]);
  printResult('export', { quick, rows: values.rows, ...results, skipped: skipped ?? null });
  return mismatch ? 1 : 0;
}
