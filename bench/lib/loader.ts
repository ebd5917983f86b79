import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { configureFromEnv } from '../../infra/config.js';
import { type Context, createContext } from '../../infra/context.js';
import type { Batch } from '../../infra/schema/batch.js';
import type { StagedEvent } from '../../infra/schema/event.js';
import { uuidv7 } from '../../infra/uuid.js';
import { encryptStage } from '../../stages/encrypt/handler.js';
import { persistStage } from '../../stages/persist/handler.js';
import { eventGenerator, type GeneratedEvent, rng } from './events.js';
import { fmt, note } from './report.js';
import type { BenchEnv } from './service.js';

/** Events per persist transaction: large enough that per-transaction costs vanish. */
const CHUNK = 5_000;
/** Chunks prepared (encrypted) in the bench process while the database stores the previous one. */
const IN_FLIGHT = 2;
const DAY_MS = 86_400_000;

export interface LoadPlan {
  /** Events to load in total. */
  events: number;
  /** Tenant ids; the first one is the heavy tenant. */
  tenants: string[];
  /** Share of all events that belongs to the first tenant (the skew: 0.3). */
  heavyShare: number;
  /** Events span `[now - days, now)`, loaded oldest first so sequence follows time. */
  days: number;
}

/** What a scenario needs to know about the loaded data to query it. */
export interface LoadedData {
  /** Events loaded per tenant. */
  perTenant: Map<string, number>;
  /** A uniform sample of the heavy tenant's events (values that certainly exist). */
  sample: GeneratedEvent[];
  eventsPerSecond: number;
}

/**
 * The fast loader. It skips HTTP and the queues but not the real work: events go through the
 * encrypt stage's handler (sealed with each tenant's data key from the real keyring, blind-index
 * tokens, masked metadata text) and the persist stage's handler (COPY into staging, one
 * INSERT…SELECT assigning gapless per-tenant sequences, rollups), in chunks of 5,000 events.
 * Only masking is skipped: generated content holds nothing to mask.
 */
export async function loadEvents(env: BenchEnv, plan: LoadPlan): Promise<LoadedData> {
  // The loader's own context; always the embedded transport, which it never uses.
  const config = configureFromEnv({ ...env.env, TRANSPORT: 'embedded', PG_POOL_MAX: '4' });
  const ctx = await createContext(config, { daemon: 'bench-loader', log: pino({ level: 'silent' }) });
  try {
    return await load(ctx, plan);
  } finally {
    await ctx.close();
  }
}

async function load(ctx: Context, plan: LoadPlan): Promise<LoadedData> {
  const r = rng(42);
  const persist = persistStage(false);
  const next = eventGenerator(7, 'load');
  const others = plan.tenants.length - 1;
  // The other tenants share the rest with a mild skew (weight 1/(i+1)^0.5), as real tenants differ.
  const weights = plan.tenants.slice(1).map((_, i) => 1 / Math.sqrt(i + 1));
  const weightSum = weights.reduce((a, b) => a + b, 0);
  const cumulative: number[] = [];
  let acc = 0;
  for (const w of weights) {
    acc += w / weightSum;
    cumulative.push(acc);
  }
  const pickTenant = () => {
    if (others === 0 || r() < plan.heavyShare) return plan.tenants[0]!;
    const x = r();
    let lo = 0;
    while (cumulative[lo]! < x && lo < cumulative.length - 1) lo++;
    return plan.tenants[lo + 1]!;
  };
  const perTenant = new Map<string, number>();
  const sample: GeneratedEvent[] = [];
  const sampleEvery = Math.max(1, Math.floor((plan.events * plan.heavyShare) / 2000));
  let heavySeen = 0;

  const now = Date.now();
  const start = now - plan.days * DAY_MS;
  const step = (plan.days * DAY_MS) / plan.events;
  let made = 0;
  const makeChunk = (): Batch<StagedEvent>[] => {
    const byTenant = new Map<string, StagedEvent[]>();
    const receivedAt = new Date().toISOString();
    const end = Math.min(plan.events, made + CHUNK);
    for (; made < end; made++) {
      const ms = Math.floor(start + made * step);
      const tenant = pickTenant();
      const e = next();
      const at = new Date(ms).toISOString();
      if (tenant === plan.tenants[0] && heavySeen++ % sampleEvery === 0)
        sample.push({ ...e, occurred_at: at });
      const staged = { ...e, tenant_id: tenant, id: uuidv7(ms), occurred_at: at, received_at: receivedAt };
      const list = byTenant.get(tenant);
      if (list) list.push(staged as StagedEvent);
      else byTenant.set(tenant, [staged as StagedEvent]);
      perTenant.set(tenant, (perTenant.get(tenant) ?? 0) + 1);
    }
    return [...byTenant].map(([tenant_id, events]) => ({ v: 1, tenant_id, events }));
  };

  const started = performance.now();
  let lastNote = started;
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;
  while (made < plan.events) {
    const batches = makeChunk();
    const sealed = await encryptStage.handle(batches, ctx);
    const p: Promise<void> = persist.handle(sealed, ctx).then(
      () => {
        inFlight.delete(p);
      },
      (err) => {
        inFlight.delete(p);
        failure ??= err;
      },
    );
    inFlight.add(p);
    if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
    if (failure) throw failure;
    if (performance.now() - lastNote > 10_000) {
      lastNote = performance.now();
      note(`loaded ${fmt(made)} of ${fmt(plan.events)} events`);
    }
  }
  await Promise.all(inFlight);
  if (failure) throw failure;
  const ms = performance.now() - started;
  // Data at rest, as autovacuum and the checkpointer leave it a few minutes after a bulk load,
  // done at once so every run starts from the same state: ANALYZE, so the planner sees the loaded
  // distribution; VACUUM, which sets the rows' commit hint bits and the visibility map (without
  // it, the first read of each loaded page pays for the hint bits: the export's first format
  // measured 42k instead of 52k rows/s); CHECKPOINT, so reads do not write back dirty pages.
  await ctx.pool.query('VACUUM (ANALYZE)');
  await ctx.pool.query('CHECKPOINT');
  return { perTenant, sample, eventsPerSecond: Math.round((plan.events * 1000) / ms) };
}
