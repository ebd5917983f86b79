import Type from 'typebox';
import { readScope } from '../infra/auth/access.js';
import type { Context } from '../infra/context.js';
import { ErrorBody } from '../infra/http/errors.js';
import type { App } from '../infra/http/server.js';
import { audited } from './read.js';
import type { StatsCacheUse } from './rollup-tally.js';
import { computeStats, resolveRange, StatsQuery, StatsResponse } from './stats.js';
import { StatsCache } from './stats-cache.js';

const errors = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  422: ErrorBody,
  429: ErrorBody,
  503: ErrorBody,
};

/** `GET /logs/stats`: counts from the persist-maintained rollups, scoped by `readScope`. */
export function statsRoutes(ctx: Context) {
  const max = ctx.config.STATS_CACHE_MAX_COUNTS;
  const cache: StatsCacheUse | undefined =
    max > 0
      ? { cache: new StatsCache(max), count: (result) => ctx.metrics.statsCache.inc({ result }) }
      : undefined;
  return async (app: App) => {
    app.get(
      '/logs/stats',
      {
        schema: {
          summary: 'Event statistics: counts by severity, action, resource type, top users and a time series',
          description:
            'Counts come from rollups kept by the persist stage in the same transaction as the events, so ' +
            'they are exact and include every stored event. The range is widened to whole UTC hours and the ' +
            'response gives the effective from/to. Auditors and admins get tenant-wide stats; the user role ' +
            'gets stats over its own events only (at most STATS_USER_MAX_EVENTS events, else 422). Every ' +
            'call is itself recorded as a VIEW event (resource_type audit_log) in the tenant read.',
          tags: ['query'],
          querystring: StatsQuery,
          response: {
            200: {
              ...StatsResponse,
              description: 'Counts over the effective range [from, to)',
              headers: {
                'x-request-id': Type.String({
                  description: 'Request id; the self-audit event of this read carries it',
                }),
              },
            },
            ...errors,
          },
        },
      },
      async (request, reply) => {
        const scope = readScope(request.principal, request.query.tenant_id);
        // Range errors are the caller's: answer them before recording a read that did not happen.
        resolveRange(request.query, Date.now());
        // Self-audit queued while the stats are read; fails closed (503) when it cannot be recorded.
        return audited(
          ctx,
          request,
          reply,
          { tenantId: scope.tenantId, action: 'VIEW', operation: 'stats' },
          () => computeStats(ctx, scope, request.query, { cache }),
        );
      },
    );
  };
}
