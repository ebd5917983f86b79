import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, inject, it } from 'vitest';
import { parseResult } from './lib/report.js';

/**
 * Keeps the benchmark scripts working: each scenario runs with `--quick` as its own process and
 * must exit 0 and print one parsable RESULT line with the documented keys. Nothing here is about
 * speed (this machine is shared and noisy; speed is what the scripts report, not what tests
 * assert), but the correctness figures the scripts compute (rows exported, events lost) are exact.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** A bound on a hung script, not a speed expectation: a busy two-core machine can be very slow. */
const TIMEOUT_MS = 15 * 60_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `bench/run.ts <scenario> --quick`. With `shareServer`, on the test PostgreSQL server (the
 * script creates and drops its own databases there); otherwise it starts its own embedded one.
 */
function runBench(scenario: string, shareServer: boolean): Promise<Run> {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const k of Object.keys(env)) if (/^(DATABASE_URL|TRANSPORT|SQS_.*|BENCH_.*)$/.test(k)) delete env[k];
  if (shareServer) env.DATABASE_URL = inject('pgAdminUrl');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', scenario, '--quick'], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs a scenario and returns its RESULT, failing with its output when it did not succeed. */
async function result(scenario: string, shareServer = true): Promise<any> {
  const run = await runBench(scenario, shareServer);
  const parsed = parseResult(run.stdout);
  if (run.code !== 0 || !parsed) {
    throw new Error(
      `bench ${scenario} exited ${run.code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`,
    );
  }
  expect(parsed.scenario).toBe(scenario);
  expect(parsed.quick).toBe(true);
  // Every run says what the machine's CPUs did (a scenario keeps them busy; steal may be 0).
  const cpu = parsed.machine_cpu as { busy_pct: number; steal_pct: number; io_stall_pct: number };
  expect(cpu.busy_pct).toBeGreaterThan(0);
  expect(cpu.busy_pct + cpu.steal_pct).toBeLessThanOrEqual(100);
  expect(cpu.io_stall_pct).toBeGreaterThanOrEqual(0);
  expect(cpu.io_stall_pct).toBeLessThanOrEqual(100);
  expect(run.stdout).toContain('machine CPU, whole run');
  return parsed;
}

const latency = { n: expect.any(Number), p50: expect.any(Number), p99: expect.any(Number) };

describe('benchmark scripts (--quick)', () => {
  it('ingest: three bulk sizes, the raw COPY ceiling, their ratio and the offered-load latency', {
    timeout: TIMEOUT_MS,
  }, async () => {
    const r = await result('ingest');
    for (const size of [1, 100, 500]) {
      expect(r[`bulk_${size}`]).toMatchObject({
        events: expect.any(Number),
        events_per_s: expect.any(Number),
        accepted_per_s: expect.any(Number),
        http_ms: latency,
      });
      expect(r[`bulk_${size}`].events % size).toBe(0);
      expect(r[`bulk_${size}`].http_ms.n).toBe(r[`bulk_${size}`].events / size);
    }
    expect(r.raw_copy_rows_per_s).toBeGreaterThan(0);
    expect(r.ratio).toBeCloseTo(r.bulk_500.events_per_s / r.raw_copy_rows_per_s, 2);
    expect(r.offered).toMatchObject({ offered_per_s: 10_000, failed: 0, http_ms: latency });
    expect(r.offered.http_ms.n).toBe(r.offered.requests);
  });

  it('search: every canonical shape timed or listed as skipped', { timeout: TIMEOUT_MS }, async () => {
    const r = await result('search');
    expect(r.events).toBe(50_000);
    const shapes = [
      'last_24h',
      'user_id',
      'action',
      'resource',
      'severity',
      'request_id',
      'ip_cidr',
      'ip_exact',
      'metadata',
      'combined',
      'q_rare',
      'q_common',
      'q_phrase_exclusion',
      'page_20_cursor',
      'stats_30d',
    ];
    expect([...Object.keys(r.shapes), ...Object.keys(r.skipped)].sort()).toEqual([...shapes].sort());
    for (const s of Object.values<any>(r.shapes)) expect(s.ms).toMatchObject(latency);
    // Page 20 exists only if the walk found 20 full pages; the last-24h page is a full page.
    if (r.shapes.last_24h) expect(r.shapes.last_24h.rows).toBe(50);
    expect(r.background_ingest).toMatchObject({ offered_per_s: 2000, failed: 0 });
  });

  it('visible: search and stream delays of every probe event', { timeout: TIMEOUT_MS }, async () => {
    // This one starts its own embedded PostgreSQL, the default a user gets.
    const r = await result('visible', false);
    expect(r.samples).toBe(100);
    expect(r.missing_search).toBe(0);
    expect(r.search_ms).toMatchObject({ ...latency, n: 100 });
    if (r.stream_skipped === null) {
      expect(r.missing_stream).toBe(0);
      expect(r.stream_ms).toMatchObject({ ...latency, n: 100 });
    } else {
      expect(r.stream_ms).toBeNull();
    }
  });

  it('export: every loaded row, in CSV and NDJSON, with rows/s and peak RSS', {
    timeout: TIMEOUT_MS,
  }, async () => {
    const r = await result('export');
    if (r.skipped !== null) return; // this build has no export endpoint
    for (const format of ['csv', 'ndjson']) {
      expect(r[format]).toMatchObject({
        rows: 50_000,
        rows_per_s: expect.any(Number),
        peak_rss_mb: expect.any(Number),
      });
      expect(r[format].peak_rss_mb).toBeGreaterThan(0);
    }
  });

  it('chaos: every acknowledged event stored once and intact, on both transports', {
    timeout: TIMEOUT_MS,
  }, async () => {
    const r = await result('chaos');
    expect(r.ok).toBe(true);
    for (const transport of ['embedded', 'sqs']) {
      expect(r[transport]).toMatchObject({
        acknowledged: 10_000,
        stored: 10_000,
        lost: 0,
        duplicated: 0,
        corrupted: 0,
        sequence_gaps: 0,
      });
      const kills = Object.values<number>(r[transport].kills).reduce((a, b) => a + b, 0);
      expect(kills).toBeGreaterThanOrEqual(4);
    }
  });
});
