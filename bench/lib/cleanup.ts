import { note } from './report.js';

type Cleanup = () => Promise<void> | void;

/** Registered in order; run in reverse (last started, first stopped), like a stack of `finally`s. */
const cleanups: Cleanup[] = [];
let running: Promise<void> | undefined;

/** Registers work to undo at exit: stop a process, drop a database, remove a temp folder. */
export function onCleanup(fn: Cleanup): void {
  cleanups.push(fn);
}

/** Runs every registered cleanup once, newest first; a failing one does not stop the others. */
export function runCleanup(): Promise<void> {
  running ??= (async () => {
    while (cleanups.length > 0) {
      const fn = cleanups.pop()!;
      try {
        await fn();
      } catch (err) {
        note(`cleanup failed: ${(err as Error).message}`);
      }
    }
  })();
  return running;
}

/**
 * Runs a scenario as the process body: cleans up after it (also on SIGINT/SIGTERM, where it exits
 * 130/143), and sets the exit code from its result. A thrown error exits 1 after cleanup, so a
 * failed run never looks like a successful one.
 */
export async function runScenario(body: () => Promise<number>): Promise<void> {
  const onSignal = (signal: NodeJS.Signals) => {
    note(`${signal}: cleaning up`);
    void runCleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // A failure nobody awaited yet (a background task) still ends the run with cleanup and exit 1.
  const onStray = (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error)?.stack ?? err}\n`);
    void runCleanup().finally(() => process.exit(1));
  };
  process.once('unhandledRejection', onStray);
  process.once('uncaughtException', onStray);
  let code = 1;
  try {
    code = await body();
  } catch (err) {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
  } finally {
    await runCleanup();
  }
  // exit(): a stray keep-alive socket or timer must not keep a finished bench alive.
  process.exit(code);
}
