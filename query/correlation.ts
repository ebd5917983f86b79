import type pg from 'pg';
import Type, { type Static } from 'typebox';
import type { ReadScope } from '../infra/auth/access.js';
import { prepared } from '../infra/db/prepared.js';

/** Summary of one request's events, over the whole request (every page), within the caller's scope. */
export const Correlation = Type.Object(
  {
    request_id: Type.String(),
    count: Type.Integer({ minimum: 0, description: 'Events the request produced' }),
    first_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
      description: 'occurred_at of its earliest event',
    }),
    last_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
      description: 'occurred_at of its latest event',
    }),
    span_ms: Type.Union([Type.Number({ minimum: 0 }), Type.Null()], {
      description: 'last_at - first_at in milliseconds (fractional: timestamps have microseconds)',
    }),
  },
  { $id: 'Correlation' },
);
export type Correlation = Static<typeof Correlation>;

/**
 * The statement counting and spanning a request's events: a call of `auditlog_request_summary`
 * (migration 009), which enters the reader role itself and reads under row-level security. Only
 * the scope and the request id apply, not the other filters of the search: the summary describes
 * the request, the page shows what was asked for. Uses the (tenant_id, request_id, seq) index.
 */
export function correlationStatement(scope: ReadScope, requestId: string): pg.QueryConfig {
  return prepared(
    `SELECT event_count::int AS count,
            to_char(first_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS first_at,
            to_char(last_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS last_at,
            (extract(epoch FROM last_at - first_at) * 1000)::float8 AS span_ms
       FROM auditlog_request_summary($1, $2, $3)`,
    [scope.tenantId, scope.userId ?? null, requestId],
  );
}

/** What `correlationStatement` returns. */
export interface CorrelationRow {
  count: number;
  first_at: string | null;
  last_at: string | null;
  span_ms: number | null;
}

/** The correlation of `requestId` from `correlationStatement`'s row. */
export function correlationOf(requestId: string, row: CorrelationRow | undefined): Correlation {
  return {
    request_id: requestId,
    count: row?.count ?? 0,
    first_at: row?.first_at ?? null,
    last_at: row?.last_at ?? null,
    span_ms: row?.span_ms ?? null,
  };
}
