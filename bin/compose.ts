import type { Verifier } from '../infra/auth/verifier.js';
import { createVerifier } from '../infra/auth/verifier.js';
import type { Context } from '../infra/context.js';
import { buildServer } from '../infra/http/server.js';
import { ingestRoutes } from '../ingest/routes.js';
import { tenantRoutes } from '../ingest/tenants.js';
import { queryRoutes } from '../query/routes.js';
import { statsRoutes } from '../query/stats-routes.js';
import { stageChains } from '../stages/chains.js';
import { type Runner, startRunner } from '../stages/runner.js';
import { startStageWorker } from '../stages/worker-host.js';
import { streamRoutes } from '../stream/routes.js';
import { type StreamService, startStream } from '../stream/service.js';

export const DAEMONS = [
  'ingest',
  'mask',
  'encrypt',
  'persist',
  'index',
  'query',
  'stream',
  'archive',
] as const;
export type DaemonName = (typeof DAEMONS)[number];

export function parseDaemons(spec: string): DaemonName[] {
  if (spec === 'all') return [...DAEMONS];
  const names = spec.split(',').map((s) => s.trim());
  for (const n of names) {
    if (!(DAEMONS as readonly string[]).includes(n)) {
      throw new Error(`unknown daemon "${n}"; expected "all" or a comma list of ${DAEMONS.join(', ')}`);
    }
  }
  return names as DaemonName[];
}

export interface Running {
  /** The bound HTTP address, e.g. `http://127.0.0.1:8080`. */
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts the named daemons in this process on one context. Consecutive stages are fused into one
 * runner (no queue hop between them); `all` therefore runs mask→encrypt→persist in memory, which
 * is the fast zero-setup default. Stages next to HTTP roles run in a worker thread (see
 * `STAGE_WORKER`). Every process serves `/healthz` and `/metrics`.
 */
export async function startDaemons(ctx: Context, names: DaemonName[], verifier?: Verifier): Promise<Running> {
  const chains = stageChains(ctx.config, names);

  const routes = [];
  if (names.includes('ingest')) routes.push(ingestRoutes(ctx), tenantRoutes(ctx));
  if (names.includes('query')) routes.push(queryRoutes(ctx), statsRoutes(ctx));
  if (names.includes('stream')) routes.push(streamRoutes());
  const verify = verifier ?? (await createVerifier(ctx.config));
  const app = await buildServer(ctx, { routes, verifier: verify });
  // The stream shares the daemon's HTTP server: it takes WebSocket upgrades on /api/v1/logs/stream.
  const stream: StreamService | undefined = names.includes('stream')
    ? await startStream(ctx, app.server, verify)
    : undefined;
  // Serving HTTP too (e.g. `all`)? Then the stages run in a worker thread: the second core, and
  // no request waits behind a batch on this event loop.
  const serves = names.some((n) => n === 'ingest' || n === 'query' || n === 'stream');
  const runners: Runner[] =
    chains.length > 0 && serves && ctx.config.STAGE_WORKER
      ? [
          await startStageWorker(
            ctx,
            chains.flat().map((s) => s.name),
          ),
        ]
      : chains.map((chain) => startRunner(ctx, chain));
  const maintenance = setInterval(
    () => {
      ctx.partitions
        .ensureAhead(ctx.config.PARTITION_DAYS_AHEAD)
        .catch((err) => ctx.log.warn({ err }, 'partition upkeep failed'));
    },
    60 * 60 * 1000,
  );
  maintenance.unref();
  const url = await app.listen({ host: ctx.config.HOST, port: ctx.config.PORT });
  ctx.log.info(
    { url, daemons: names, runners: chains.map((c) => c.map((s) => s.name).join('→')) },
    'started',
  );

  let stopped: Promise<void> | undefined;
  return {
    url,
    stop() {
      stopped ??= (async () => {
        clearInterval(maintenance);
        // Order matters: stop taking requests, drain the stages, then close pools. Stream clients
        // get their 1001 "going away" close first, while the pool can still serve their reads.
        await stream?.close();
        await app.close();
        await Promise.all(runners.map((r) => r.stop()));
        await ctx.close();
      })();
      return stopped;
    },
  };
}
