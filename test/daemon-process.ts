import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './global-setup.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Output kept per stream for diagnostics; older text is dropped. */
const OUTPUT_LIMIT = 64 * 1024;

/** One `bin/daemon.ts` running as its own OS process. */
export interface DaemonProcess {
  /** The daemon spec it was started with, e.g. `persist`. */
  readonly name: string;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly child: ChildProcess;
  /** Resolves with the exit code (null when a signal ended it) and that signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything it wrote to stdout and stderr so far (the tail, when long). */
  output(): string;
  /** Resolves once stdout or stderr contains `text`; rejects if the process exits first. */
  waitForOutput(text: string): Promise<void>;
}

/**
 * Spawns `node --import tsx bin/daemon.ts <name>` with exactly `env` (plus PATH/HOME/TMPDIR) and a
 * free port, and waits until its `/healthz` answers 200.
 *
 * Not `npx tsx`: npx and the tsx CLI each put a parent process in front of the daemon, and a
 * SIGKILL sent to a parent cannot be relayed, so the daemon itself would survive the "crash".
 */
export async function startDaemonProcess(name: string, env: Record<string, string>): Promise<DaemonProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'bin/daemon.ts', name], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
      ...env,
      HOST: '127.0.0.1',
      PORT: String(port),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const waiters = new Set<() => void>();
  const append = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
    for (const w of waiters) w();
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let exitedNow: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      exitedNow = { code, signal };
      for (const w of waiters) w();
      resolve(exitedNow);
    });
  });
  const url = `http://127.0.0.1:${port}`;
  const daemon: DaemonProcess = {
    name,
    url,
    child,
    exited,
    output: () => output,
    waitForOutput: (text) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (output.includes(text)) {
            waiters.delete(check);
            resolve();
          } else if (exitedNow) {
            waiters.delete(check);
            reject(new Error(`${name} exited (${JSON.stringify(exitedNow)}) before printing ${text}`));
          }
        };
        waiters.add(check);
        check();
      }),
  };
  try {
    await waitHealthy(daemon, () => exitedNow);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return daemon;
}

async function waitHealthy(
  daemon: DaemonProcess,
  exitedNow: () => { code: number | null; signal: NodeJS.Signals | null } | undefined,
): Promise<void> {
  // Starting several tsx processes at once on a small machine takes a while; this is a bound
  // on a failure, not a speed assertion.
  const deadline = Date.now() + 180_000;
  for (;;) {
    const exit = exitedNow();
    if (exit) {
      throw new Error(`${daemon.name} exited during start (${JSON.stringify(exit)}):\n${daemon.output()}`);
    }
    try {
      const res = await fetch(`${daemon.url}/healthz`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${daemon.name} did not become healthy:\n${daemon.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Stops a daemon for test cleanup: SIGTERM, then SIGKILL if it is still running after `graceMs`.
 * A no-op for one that already exited.
 */
export async function stopDaemonProcess(daemon: DaemonProcess, graceMs = 30_000): Promise<void> {
  if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) return;
  daemon.child.kill('SIGTERM');
  const timer = setTimeout(() => daemon.child.kill('SIGKILL'), graceMs);
  await daemon.exited;
  clearTimeout(timer);
}
