import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { persistedCount } from './service.js';
import { sleep } from './temp.js';

/**
 * Polls until `target` events are persisted for `tenants` and returns when that was first seen
 * (performance.now()). Polls every 20 ms, which bounds the error of an end-to-end figure. Throws
 * if the count stops moving for `stallMs`: a stuck pipeline must fail the run, not hang it.
 */
export async function waitPersisted(
  db: pg.Pool,
  tenants: string[],
  target: number,
  stallMs = 60_000,
): Promise<number> {
  let last = -1;
  let movedAt = performance.now();
  for (;;) {
    const n = await persistedCount(db, tenants);
    const now = performance.now();
    if (n >= target) return now;
    if (n !== last) {
      last = n;
      movedAt = now;
    } else if (now - movedAt > stallMs) {
      throw new Error(`persisted count stuck at ${n} of ${target} for ${stallMs} ms`);
    }
    await sleep(20);
  }
}
