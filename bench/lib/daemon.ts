import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { onCleanup } from './cleanup.js';
import { freePort, sleep } from './temp.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Tail of each daemon's output kept for error messages. */
const OUTPUT_LIMIT = 32 * 1024;
/** Bound on a start that never becomes healthy (several tsx processes on two cores are slow). */
const START_TIMEOUT_MS = 120_000;

/** A `bin/daemon.ts` child process that can be killed and started again on the same port. */
export interface Daemon {
  readonly name: string;
  /** `http://127.0.0.1:<port>`; stays the same across restarts. */
  readonly url: string;
  /** Pid of the current process (the node process itself, not a launcher). */
  pid(): number | undefined;
  running(): boolean;
  /** Starts it (again) and waits until `/healthz` answers 200. */
  start(): Promise<void>;
  /** SIGKILL: a crash, no graceful shutdown. Resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM (graceful), then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** Peak resident set size (VmHWM) of the current process, in bytes. */
  peakRss(): number;
  /** Resets the peak RSS counter to the current RSS (Linux `clear_refs` 5). */
  resetPeakRss(): void;
  output(): string;
}

/**
 * Creates (without starting) a daemon running `node --import tsx bin/daemon.ts <names>` with
 * `env` plus HOST/PORT. Not `npx tsx`: npx and the tsx CLI put parent processes in front of the
 * daemon, so a SIGKILL would hit the launcher and leave the daemon running, and /proc figures would
 * describe the launcher. Stopped at exit.
 */
export async function createDaemon(names: string, env: Record<string, string>): Promise<Daemon> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = '';

  const alive = () => child !== undefined && child.exitCode === null && child.signalCode === null;

  const daemon: Daemon = {
    name: names,
    url,
    pid: () => (alive() ? child?.pid : undefined),
    running: alive,
    async start() {
      if (alive()) return;
      // BENCH_CPU_PROF=<dir>: each daemon writes a V8 CPU profile there when it stops gracefully.
      const prof = process.env.BENCH_CPU_PROF
        ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(process.env.BENCH_CPU_PROF)}`]
        : [];
      const proc = spawn(process.execPath, [...prof, '--import', 'tsx', 'bin/daemon.ts', names], {
        cwd: ROOT,
        env: { ...inherited(), ...env, HOST: '127.0.0.1', PORT: String(port) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child = proc;
      const append = (chunk: Buffer) => {
        output = (output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
      };
      proc.stdout?.on('data', append);
      proc.stderr?.on('data', append);
      exited = new Promise((resolve) => proc.once('exit', () => resolve()));
      const deadline = Date.now() + START_TIMEOUT_MS;
      for (;;) {
        if (!alive()) throw new Error(`daemon ${names} exited during start:\n${output}`);
        try {
          const res = await fetch(`${url}/healthz`);
          if (res.status === 200) return;
        } catch {
          // not listening yet
        }
        if (Date.now() > deadline) throw new Error(`daemon ${names} did not become healthy:\n${output}`);
        await sleep(100);
      }
    },
    async kill() {
      if (alive()) child?.kill('SIGKILL');
      await exited;
    },
    async stop(graceMs = 20_000) {
      if (!alive()) return;
      child?.kill('SIGTERM');
      const timer = setTimeout(() => child?.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
    peakRss() {
      const pid = daemon.pid();
      if (pid === undefined) return Number.NaN;
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
      return kb === undefined ? Number.NaN : Number(kb) * 1024;
    },
    resetPeakRss() {
      const pid = daemon.pid();
      if (pid !== undefined) fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    },
    output: () => output,
  };
  onCleanup(() => daemon.stop(5_000));
  return daemon;
}

/** Only what a child needs from our environment: never our DATABASE_URL or PORT by accident. */
function inherited(): Record<string, string> {
  const keep = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ', 'NODE_OPTIONS'];
  const env: Record<string, string> = {};
  for (const k of keep) if (process.env[k] !== undefined) env[k] = process.env[k]!;
  return env;
}
