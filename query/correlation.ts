import Type, { type Static } from 'typebox';
import { prepared } from '../infra/db/prepared.js';
import type { TenantTx } from './scoped.js';
import { buildWhere } from './where.js';

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
 * Counts and spans a request's events. Only the scope and the request id apply, not the other
 * filters of the search: the summary describes the request, the page shows what was asked for.
 * Uses the (tenant_id, request_id, seq) index, under row-level security.
 */
export async function correlate(tx: TenantTx, requestId: string): Promise<Correlation> {
  const where = buildWhere(tx.scope, { request_id: requestId });
  const { rows } = await tx.query<{
    count: number;
    first_at: string | null;
    last_at: string | null;
    span_ms: number | null;
  }>(
    prepared(
      `SELECT count(*)::int AS count,
            to_char(min(occurred_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS first_at,
            to_char(max(occurred_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS last_at,
            (extract(epoch FROM max(occurred_at) - min(occurred_at)) * 1000)::float8 AS span_ms
       FROM events WHERE ${where.sql}`,
      where.params,
    ),
  );
  const row = rows[0];
  return {
    request_id: requestId,
    count: row?.count ?? 0,
    first_at: row?.first_at ?? null,
    last_at: row?.last_at ?? null,
    span_ms: row?.span_ms ?? null,
  };
}
