import { performance } from 'node:perf_hooks';
import { sleep } from './temp.js';

/**
 * Closed-loop load: `concurrency` workers each run `task(i)` for the next index until `total` have
 * run, or until `maxMs` has passed (no new task starts after it; `--quick` uses this to stay
 * short on a busy machine). Throughput is then limited by the server, not by a chosen rate.
 * Returns how many tasks ran.
 */
export async function closedLoop(
  total: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
  maxMs = Number.POSITIVE_INFINITY,
): Promise<number> {
  const deadline = performance.now() + maxMs;
  let next = 0;
  const worker = async () => {
    while (next < total && performance.now() < deadline) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  return next;
}

/**
 * Open-loop load: starts `fire(i)` at a fixed rate for `durationMs`, whether or not earlier calls
 * have finished, as independent clients would. A closed loop would slow down with the server and
 * hide queueing delay (coordinated omission); this does not. Resolves when every call has ended.
 */
export async function openLoop(
  perSecond: number,
  durationMs: number,
  fire: (i: number) => Promise<void>,
  signal?: AbortSignal,
): Promise<{ fired: number }> {
  const interval = 1000 / perSecond;
  const total = Math.floor((durationMs / 1000) * perSecond);
  const started = performance.now();
  const pending = new Set<Promise<void>>();
  // The first failure is kept and rethrown once every call has ended: a rejection must not go
  // unhandled while later calls are still being fired (that would end the process without cleanup).
  let failure: { error: unknown } | undefined;
  let i = 0;
  while (i < total && !signal?.aborted && !failure) {
    const due = started + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    // Fire everything that is due (timers are coarse; a late wake-up must not lower the rate).
    while (i < total && started + i * interval <= performance.now()) {
      const p: Promise<void> = fire(i++).then(
        () => {
          pending.delete(p);
        },
        (error: unknown) => {
          pending.delete(p);
          failure ??= { error };
        },
      );
      pending.add(p);
    }
  }
  await Promise.all(pending);
  if (failure) throw failure.error;
  return { fired: i };
}
