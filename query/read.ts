import type { FastifyReply, FastifyRequest } from 'fastify';
import { type RequestRead, recordRequestRead } from '../infra/audit/request.js';
import { type ReadScope, readScope } from '../infra/auth/access.js';
import type { Context } from '../infra/context.js';
import type { ExportQuery, SearchQuery } from './filters.js';
import { type ParsedQuery, parseQuery, resolveFilters } from './search-request.js';
import type { ResolvedFilters } from './where.js';

/** A search or export request, ready to run: its scope, parsed query and resolved filters. */
export interface PreparedRead {
  scope: ReadScope;
  parsed: ParsedQuery;
  filters: ResolvedFilters;
}

/**
 * Runs `read` while the request's self-audit event is being queued (`recordRequestRead`), and
 * hands its result back only once that event is durably queued. Both start together because the
 * durable enqueue (a queue write shared with ingest through group commit) would otherwise add its
 * whole latency to every read.
 *
 * Still fail closed: when the event cannot be queued, the audit's error is thrown (503
 * `audit_unavailable`, or 404 `tenant_not_found`), whatever the read did, and a result the read
 * produced is dropped through `discard` (an export's body, which holds a connection, is destroyed
 * before a byte of it is sent). Nothing read leaves the process unaudited. The audit's error wins
 * over the read's, as it did when the audit ran first.
 */
export async function audited<T>(
  ctx: Pick<Context, 'enqueue' | 'tenants' | 'log'>,
  request: FastifyRequest,
  reply: FastifyReply,
  record: RequestRead,
  read: () => Promise<T>,
  discard?: (result: T) => void,
): Promise<T> {
  const audit = recordRequestRead(ctx, request, record);
  // Every read response names its request id, so a caller can find the read's own audit event.
  reply.header('x-request-id', request.id);
  const [logged, result] = await Promise.allSettled([audit, read()]);
  if (logged.status === 'rejected') {
    if (result.status === 'fulfilled') discard?.(result.value);
    throw logged.reason;
  }
  if (result.status === 'rejected') throw result.reason;
  return result.value;
}

/**
 * The prologue search and export share: resolves the scope and parses the query (so every 400 is
 * answered before a read is recorded), then runs `read` with the resolved filters under `audited`.
 */
export function prepareRead<T>(
  ctx: Context,
  request: FastifyRequest,
  reply: FastifyReply,
  query: SearchQuery | ExportQuery,
  record: Pick<RequestRead, 'action' | 'operation'>,
  read: (prepared: PreparedRead) => Promise<T>,
  discard?: (result: T) => void,
): Promise<T> {
  const scope = readScope(request.principal, query.tenant_id);
  const parsed = parseQuery(query);
  return audited(
    ctx,
    request,
    reply,
    { tenantId: scope.tenantId, ...record },
    async () => read({ scope, parsed, filters: await resolveFilters(ctx, scope.tenantId, parsed) }),
    discard,
  );
}
