import { performance } from 'node:perf_hooks';
import { cpuShare, cpuSnapshot, describeShare } from './cpu.js';

/** Prefix of the one machine-readable line every scenario prints. */
export const RESULT_PREFIX = 'RESULT ';

/** The machine's CPU counters when this process started: `machine CPU` covers the whole run. */
const STARTED_CPU = cpuSnapshot();

/**
 * Human summary: a title and aligned `label  value` rows, on stdout, ending with what the
 * machine's CPUs did over the whole run (a run with much stolen time measured a slower machine).
 */
export function printSummary(title: string, rows: [string, string | number][]): void {
  rows = [...rows, ['machine CPU, whole run', describeShare(cpuShare(STARTED_CPU))]];
  const width = Math.max(0, ...rows.map(([label]) => label.length));
  const lines = [`\n== ${title} ==`, ...rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`)];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** Progress notes for the operator; stderr, so stdout stays the summary plus the RESULT line. */
export function note(message: string): void {
  const elapsed = ((performance.now() - STARTED) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[bench ${elapsed}s] ${message}\n`);
}
const STARTED = performance.now();

/**
 * Prints the scenario's results as exactly one line, `RESULT {...}`, for comparing runs, with
 * `machine_cpu` (see `CpuShare`) over the whole run. Call it once per process; NaN and Infinity
 * become null (JSON has neither).
 */
export function printResult(scenario: string, results: Record<string, unknown>): void {
  const body = JSON.stringify({ scenario, ...results, machine_cpu: cpuShare(STARTED_CPU) }, (_key, value) =>
    typeof value === 'number' && !Number.isFinite(value) ? null : value,
  );
  process.stdout.write(`${RESULT_PREFIX}${body}\n`);
}

/** The `RESULT` line of a scenario's output, parsed; undefined when there is none. */
export function parseResult(output: string): Record<string, unknown> | undefined {
  const lines = output.split('\n').filter((l) => l.startsWith(RESULT_PREFIX));
  if (lines.length !== 1) return undefined;
  return JSON.parse(lines[0]!.slice(RESULT_PREFIX.length)) as Record<string, unknown>;
}

/** `1234567` → `1,234,567`, for the human summary. */
export function fmt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a';
}
