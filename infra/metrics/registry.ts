import type pg from 'pg';
import client from 'prom-client';

/**
 * Prometheus metrics of one daemon. Labels carry only our own vocabulary (stage, queue, route
 * pattern, status): never a tenant id, user id or any value from an event, which would leak
 * across tenants and explode cardinality.
 */
export function createMetrics(daemon: string, processMetrics = true) {
  const registry = new client.Registry();
  registry.setDefaultLabels({ daemon });
  // A worker thread leaves the process-wide metrics (CPU, memory, event loop) to the main thread.
  if (processMetrics) client.collectDefaultMetrics({ register: registry });
  const latencyBuckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
  return {
    registry,
    /** The `daemon` label on every series. */
    daemon,
    /** Other threads of this daemon (the stage worker) whose metrics `/metrics` merges in. */
    sources: [] as MetricsSource[],
    httpDuration: new client.Histogram({
      name: 'auditlog_http_request_duration_seconds',
      help: 'HTTP request duration by route pattern and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: latencyBuckets,
      registers: [registry],
    }),
    eventsIn: new client.Counter({
      name: 'auditlog_stage_events_in_total',
      help: 'Events received by a stage',
      labelNames: ['stage'] as const,
      registers: [registry],
    }),
    eventsOut: new client.Counter({
      name: 'auditlog_stage_events_out_total',
      help: 'Events a stage completed',
      labelNames: ['stage'] as const,
      registers: [registry],
    }),
    eventsFailed: new client.Counter({
      name: 'auditlog_stage_events_failed_total',
      help: 'Events in batches that failed an attempt',
      labelNames: ['stage'] as const,
      registers: [registry],
    }),
    batchSize: new client.Histogram({
      name: 'auditlog_stage_batch_events',
      help: 'Events per processed batch',
      labelNames: ['stage'] as const,
      buckets: [1, 10, 50, 100, 500, 1000, 5000, 10000],
      registers: [registry],
    }),
    stageDuration: new client.Histogram({
      name: 'auditlog_stage_duration_seconds',
      help: 'Processing time of one batch',
      labelNames: ['stage'] as const,
      buckets: latencyBuckets,
      registers: [registry],
    }),
    queueLag: new client.Histogram({
      name: 'auditlog_queue_lag_seconds',
      help: 'Time from enqueue to the start of processing',
      labelNames: ['queue'] as const,
      buckets: latencyBuckets,
      registers: [registry],
    }),
    deadLettered: new client.Counter({
      name: 'auditlog_queue_dead_lettered_total',
      help: 'Messages that failed their last attempt and go to the dead-letter queue',
      labelNames: ['queue'] as const,
      registers: [registry],
    }),
    copyRows: new client.Counter({
      name: 'auditlog_pg_copy_rows_total',
      help: 'Rows written with COPY by the persist stage',
      registers: [registry],
    }),
    statsCache: new client.Counter({
      name: 'auditlog_stats_cache_requests_total',
      help: 'Tenant-wide stats requests over settled rollup buckets, by what the cache did: hit (every settled sum cached), miss (some read and cached), stale (the revision moved: all read again)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    eventsEnqueued: new client.Counter({
      name: 'auditlog_ingest_events_total',
      help: 'Events accepted by ingest and durably enqueued',
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Another registry's metrics, as `Registry.getMetricsAsJSON()` gives them. */
export type MetricsSource = () => Promise<client.MetricObjectWithValues<client.MetricValue<string>>[]>;

/**
 * The Prometheus text for `/metrics`: the daemon's own registry, summed with its other threads'
 * (same names and labels add up, so a counter reads the same whichever thread runs the stage).
 */
export async function renderMetrics(metrics: Metrics): Promise<string> {
  if (metrics.sources.length === 0) return metrics.registry.metrics();
  const all = await Promise.all([metrics.registry.getMetricsAsJSON(), ...metrics.sources.map((s) => s())]);
  return client.AggregatorRegistry.aggregate(all).metrics();
}

/** Pool usage gauges, sampled at scrape time. */
export function registerPoolMetrics(metrics: Metrics, pool: pg.Pool): void {
  new client.Gauge({
    name: 'auditlog_pg_pool_connections',
    help: 'PostgreSQL pool connections by state',
    labelNames: ['state'] as const,
    registers: [metrics.registry],
    collect() {
      this.set({ state: 'total' }, pool.totalCount);
      this.set({ state: 'idle' }, pool.idleCount);
      this.set({ state: 'waiting' }, pool.waitingCount);
    },
  });
}
