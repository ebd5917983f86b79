import net from 'node:net';
import type { Principal } from '../auth/principal.js';
import type { Context } from '../context.js';
import { HttpError } from '../http/errors.js';
import { StagedEvent } from '../schema/event.js';
import { createAjv } from '../schema/validate.js';
import { serializeEvents } from '../transport/split.js';
import { uuidv7 } from '../uuid.js';

/**
 * Self-audit: every read of audit data is itself an audit event in the tenant that was read.
 *
 * - It enters the normal pipeline (`ctx.enqueue`, the same group commit as ingest), so it is
 *   masked, encrypted, sequenced and protected exactly like any other event. Like every event it
 *   cannot be erased by the tenant: the API has no delete endpoint.
 * - It is recorded before any data is returned, and a read whose audit event cannot be enqueued
 *   fails with 503 `audit_unavailable`: unaudited data never leaves (fail closed). The read itself
 *   may run while the event is being queued (query/read.ts `audited`); its result is held back,
 *   and dropped on failure, until the enqueue resolves.
 * - No feedback loop: only a request from a caller creates a read event, one per request (one per
 *   stream subscription, never one per delivered event), and no pipeline stage reads audit data.
 *   Reading the read events creates one more event, for that one request, and nothing else.
 * - A platform admin reading a tenant is recorded in that tenant as `platform:<sub>`, so the
 *   tenant sees every read of its data, including the operator's.
 */

/** VIEW for get, search, stats and stream subscriptions; EXPORT for exports. */
export type ReadAction = 'VIEW' | 'EXPORT';

/** The read operations that are audited, recorded as `metadata.operation`. */
export type ReadOperation = 'get' | 'search' | 'export' | 'stats' | 'stream';

/** The resource_type of every self-audit event. */
export const AUDIT_RESOURCE_TYPE = 'audit_log';

export interface ReadRecord {
  /** The verified caller. */
  principal: Principal;
  /** The tenant whose data is read: the event is recorded there. */
  tenantId: string;
  action: ReadAction;
  operation: ReadOperation;
  /** Correlates the event with the read request (the fastify request id). */
  requestId: string;
  /**
   * The filters as the caller sent them (query-string parameters). Stored as a nested object in
   * metadata, so the mask stage's key rules apply to them (e.g. a `metadata.password` filter is
   * redacted) and their values stay searchable with `q`.
   */
  filters: Record<string, unknown>;
  /** The event id of a get-by-id. */
  resourceId?: string;
  /** Caller address and user agent, when known. */
  ip?: string;
  userAgent?: string;
}

const checkEvent = createAjv().compile(StagedEvent);

/** The user_id recorded for a caller: its sub, or `platform:<sub>` for a platform admin. */
export function actorOf(p: Principal): string {
  return (p.platform ? `platform:${p.sub}` : p.sub).slice(0, 256);
}

/** Builds the self-audit event of one read. Exported for tests. */
export function readEvent(r: ReadRecord, now = Date.now()): StagedEvent {
  const at = new Date(now).toISOString();
  const filters: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.filters)) {
    if (v !== undefined) filters[k.slice(0, 256)] = String(v);
  }
  const event: StagedEvent = {
    tenant_id: r.tenantId,
    id: uuidv7(now),
    occurred_at: at,
    received_at: at,
    severity: 'INFO',
    action: r.action,
    resource_type: AUDIT_RESOURCE_TYPE,
    user_id: actorOf(r.principal),
    request_id: r.requestId.slice(0, 128),
    message: `${r.operation} of audit events by ${r.principal.role}`,
    metadata: { operation: r.operation, role: r.principal.role, filters },
  };
  if (r.resourceId !== undefined) event.resource_id = r.resourceId.slice(0, 256);
  if (r.ip !== undefined && net.isIP(r.ip) !== 0 && !r.ip.includes('%')) event.ip_address = r.ip;
  if (r.userAgent) event.user_agent = r.userAgent.slice(0, 1024);
  return event;
}

/**
 * Records one read, resolving once the event is durably queued. Throws 404 `tenant_not_found`
 * for a tenant that does not exist (only platform admins can name one; recording there would
 * dead-letter), and 503 `audit_unavailable` when the event cannot be queued.
 *
 * For the stream: call once per subscription, before the first event is sent, never per
 * delivered event (a subscriber of its own tenant would otherwise feed itself forever).
 */
export async function recordRead(ctx: Pick<Context, 'enqueue' | 'tenants' | 'log'>, r: ReadRecord) {
  const event = readEvent(r);
  // A malformed event would dead-letter in the mask stage, possibly with other events merged
  // into the same message by group commit: refuse it here instead.
  if (!checkEvent(event)) {
    throw new Error(`self-audit event is invalid: ${JSON.stringify(checkEvent.errors?.[0])}`);
  }
  const unknown = await ctx.tenants.unknown([r.tenantId]);
  if (unknown.length > 0) throw new HttpError(404, 'tenant_not_found', 'no such tenant');
  try {
    await ctx.enqueue.enqueue([{ tenant_id: r.tenantId, events: serializeEvents([event]) }]);
  } catch (err) {
    ctx.log.error({ err, operation: r.operation }, 'self-audit enqueue failed; refusing the read');
    throw new HttpError(503, 'audit_unavailable', 'the read could not be audited; retry later');
  }
}
