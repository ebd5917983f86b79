import client, { type Registry } from 'prom-client';

/**
 * Metrics of the stream service, in the daemon's registry. Labels are our own vocabulary only
 * (a disconnect reason, an HTTP status): never a tenant id, user id or filter value.
 */
export function createStreamMetrics(registry: Registry) {
  // A registry rejects a second metric of the same name; reuse it if this process registered it.
  const reuse = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T) ?? make();
  return {
    connections: reuse(
      'auditlog_stream_connections',
      () =>
        new client.Gauge({
          name: 'auditlog_stream_connections',
          help: 'Open WebSocket stream connections',
          registers: [registry],
        }),
    ),
    delivered: reuse(
      'auditlog_stream_events_delivered_total',
      () =>
        new client.Counter({
          name: 'auditlog_stream_events_delivered_total',
          help: 'Events queued to stream clients (replayed and live)',
          registers: [registry],
        }),
    ),
    disconnects: reuse(
      'auditlog_stream_disconnects_total',
      () =>
        new client.Counter({
          name: 'auditlog_stream_disconnects_total',
          help: 'Stream connections ended, by reason (slow_consumer, idle_timeout, heartbeat, token_expired, going_away, internal_error, client)',
          labelNames: ['reason'] as const,
          registers: [registry],
        }),
    ),
    refused: reuse(
      'auditlog_stream_refused_total',
      () =>
        new client.Counter({
          name: 'auditlog_stream_refused_total',
          help: 'Upgrade requests refused before the upgrade, by HTTP status',
          labelNames: ['status'] as const,
          registers: [registry],
        }),
    ),
  };
}

export type StreamMetrics = ReturnType<typeof createStreamMetrics>;
