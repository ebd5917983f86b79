import { Worker } from 'node:worker_threads';
import type { Context } from '../infra/context.js';
import type { MetricsSource } from '../infra/metrics/registry.js';
import { workerBootstrap } from '../infra/worker-bootstrap.js';
import type { Runner } from './runner.js';

/** What the host hands the worker thread (structured-cloned). */
export interface StageWorkerData {
  config: Context['config'];
  daemon: string;
  stages: string[];
}

/** Messages between the host and the stage worker. */
export type ToWorker = { type: 'metrics'; id: number } | { type: 'stop'; timeoutMs: number };
export type FromWorker =
  | { type: 'ready' }
  | { type: 'failed'; message: string }
  | { type: 'metrics'; id: number; metrics: Awaited<ReturnType<MetricsSource>> };

/**
 * Runs the named stages in a worker thread with its own context (pool, transport, keyring,
 * metrics) on this daemon's configuration and database, so in a daemon that also serves HTTP
 * (`all`) the stages use the second core and never hold up a request on this event loop. The
 * worker's metrics are merged into this daemon's `/metrics`. Resolves once the worker's runners
 * are receiving. `stop` stops them gracefully (as on the main thread) and ends the thread. A
 * worker that dies on its own is fatal: the daemon exits 1 instead of running without stages.
 */
export async function startStageWorker(ctx: Context, stages: string[]): Promise<Runner> {
  const data: StageWorkerData = {
    config: { ...ctx.config, DATABASE_URL: ctx.databaseUrl },
    daemon: ctx.metrics.daemon,
    stages,
  };
  const worker = new Worker(workerBootstrap(import.meta.url, 'worker'), { eval: true, workerData: data });
  const pending = new Map<number, (m: Awaited<ReturnType<MetricsSource>>) => void>();
  let nextId = 0;
  let stopping = false;
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));

  await new Promise<void>((resolve, reject) => {
    const onMessage = (m: FromWorker) => {
      if (m.type === 'ready') resolve();
      if (m.type === 'failed') reject(new Error(`stage worker failed to start: ${m.message}`));
    };
    worker.on('message', onMessage);
    worker.once('error', reject);
    exited.then((code) => reject(new Error(`stage worker exited during start (code ${code})`)));
  });

  worker.on('message', (m: FromWorker) => {
    if (m.type !== 'metrics') return;
    pending.get(m.id)?.(m.metrics);
    pending.delete(m.id);
  });
  worker.on('error', (err) => ctx.log.fatal({ err }, 'stage worker crashed'));
  exited.then((code) => {
    for (const resolve of pending.values()) resolve([]);
    pending.clear();
    if (stopping) return;
    ctx.log.fatal({ code }, 'stage worker exited unexpectedly; exiting');
    process.exit(1);
  });

  ctx.metrics.sources.push(
    () =>
      new Promise((resolve) => {
        const id = nextId++;
        pending.set(id, resolve);
        worker.postMessage({ type: 'metrics', id } satisfies ToWorker);
      }),
  );

  return {
    done: exited.then(() => {}),
    async stop(timeoutMs = 20_000) {
      if (!stopping) {
        stopping = true;
        worker.postMessage({ type: 'stop', timeoutMs } satisfies ToWorker);
      }
      await exited;
    },
  };
}
