import type { FastifyRequest } from 'fastify';
import type { Context } from '../context.js';
import { type ReadRecord, recordRead } from './self-audit.js';

/** What a route adds to the request's own facts (caller, request id, query, address, user agent). */
export type RequestRead = Pick<ReadRecord, 'tenantId' | 'action' | 'operation' | 'resourceId'> & {
  /** Defaults to the request's validated query string. */
  filters?: Record<string, unknown>;
};

/**
 * Records the read of an HTTP request (see `recordRead`): the caller, the fastify request id,
 * the query string as filters, and the caller's address and user agent. Call it once the scope
 * is resolved, and return no data before it resolves: query/read.ts `audited` runs it alongside
 * the read and withholds the result until the event is queued. Stats and other read routes use
 * this too.
 */
export function recordRequestRead(
  ctx: Pick<Context, 'enqueue' | 'tenants' | 'log'>,
  request: FastifyRequest,
  read: RequestRead,
): Promise<void> {
  const { filters, ...rest } = read;
  const record: ReadRecord = {
    ...rest,
    principal: request.principal,
    requestId: request.id,
    filters: filters ?? ((request.query ?? {}) as Record<string, unknown>),
    ip: request.ip,
  };
  const agent = request.headers['user-agent'];
  if (agent) record.userAgent = agent;
  return recordRead(ctx, record);
}
