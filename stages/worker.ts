/**
 * Entry of the stage worker thread started by `worker-host.ts`: its own context on the host's
 * configuration and database, one runner per chain of its stages, metrics on request, and a
 * graceful stop (runners drained, context closed) when the host asks.
 */
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { type Context, createContext } from '../infra/context.js';
import { stageChains } from './chains.js';
import { startRunner } from './runner.js';
import type { FromWorker, StageWorkerData, ToWorker } from './worker-host.js';

// Linux keeps a nice value per thread: this lowers the stage thread's CPU priority only. When
// both are busy the HTTP thread wins (accepting writes fast, the backlog waits durably in the
// queue), as it did when both shared one event loop; an idle HTTP thread leaves the core to us.
// Measured: at equal priority the stage thread took so much CPU that ingest accepted 4.6k
// instead of 13k events/s under load; at nice 10 acceptance is as before and the drain faster.
try {
  os.setPriority(0, 10);
} catch {
  // Not permitted (or not Linux): run at normal priority.
}

const port = parentPort;
if (!port) throw new Error('stages/worker.ts runs only as a worker thread');
const { config, daemon, stages } = workerData as StageWorkerData;
const send = (m: FromWorker) => port.postMessage(m);
const log = pino({ level: config.LOG_LEVEL, base: { daemon, thread: 'stages' } });

let ctx: Context;
try {
  ctx = await createContext(config, { daemon, log, processMetrics: false });
} catch (err) {
  send({ type: 'failed', message: (err as Error).message });
  process.exit(1);
}
const chains = stageChains(config, stages);
const runners = chains.map((chain) => startRunner(ctx, chain));
log.info({ runners: chains.map((c) => c.map((s) => s.name).join('→')) }, 'stage worker started');

port.on('message', (m: ToWorker) => {
  if (m.type === 'metrics') {
    ctx.metrics.registry.getMetricsAsJSON().then(
      (metrics) => send({ type: 'metrics', id: m.id, metrics }),
      () => send({ type: 'metrics', id: m.id, metrics: [] }),
    );
    return;
  }
  if (m.type === 'stop') {
    Promise.all(runners.map((r) => r.stop(m.timeoutMs)))
      .then(() => ctx.close())
      .then(
        () => process.exit(0),
        (err) => {
          log.error({ err }, 'stage worker stop failed');
          process.exit(1);
        },
      );
  }
});
send({ type: 'ready' });
