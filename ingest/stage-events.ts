import { requireWriter, writeTenant } from '../infra/auth/access.js';
import type { Principal } from '../infra/auth/principal.js';
import { HttpError } from '../infra/http/errors.js';
import type { Batch } from '../infra/schema/batch.js';
import { type EventInput, LIMITS, type StagedEvent } from '../infra/schema/event.js';
import { utcTimestamp, type ValidationIssue, validateEvent } from '../infra/schema/validate.js';
import { fitsUtf8 } from '../infra/utf8.js';
import { uuidv7 } from '../infra/uuid.js';

/**
 * Whether a value is larger than an event may be, as JSON; false when it is nested too deeply to
 * serialize (a stack overflow, which would be a 500), leaving validateEvent to reject it with a 400.
 */
function tooLargeForAnEvent(value: unknown): boolean {
  try {
    return !fitsUtf8(JSON.stringify(value), LIMITS.eventBytes);
  } catch {
    return false;
  }
}

/**
 * Validates a whole request and turns it into per-tenant batches with every default filled in.
 * Throws a 400 listing every bad item by index and field path (`indexed`), or a 403 for a tenant
 * the caller may not write; in either case nothing is enqueued.
 */
export function stageEvents(principal: Principal, inputs: unknown[], indexed: boolean): Batch<StagedEvent>[] {
  requireWriter(principal);
  const now = Date.now();
  if (!indexed && inputs.length === 1 && tooLargeForAnEvent(inputs[0])) {
    throw new HttpError(413, 'event_too_large', `an event may be at most ${LIMITS.eventBytes} bytes`);
  }
  const issues: ValidationIssue[] = [];
  inputs.forEach((input, index) => {
    for (const issue of validateEvent(input, now)) issues.push(indexed ? { index, ...issue } : issue);
  });
  if (issues.length > 0) {
    throw new HttpError(400, 'validation_failed', `${issues.length} problem(s) in the request`, issues);
  }
  const receivedAt = new Date(now).toISOString();
  const batches = new Map<string, StagedEvent[]>();
  for (const input of inputs as EventInput[]) {
    const tenantId = writeTenant(principal, input.tenant_id);
    // Object.assign, not `{ ...input, tenant_id, ... }`: V8 builds that literal on a slow path
    // for these parsed objects, measured at 9 µs per event (4.4 ms of a 500-event request's
    // 10 ms here) against 1 µs. Same own properties; no setter can run, because validateEvent
    // rejects every key outside the schema (`__proto__` included).
    const event: StagedEvent = Object.assign({}, input, {
      tenant_id: tenantId,
      id: input.id?.toLowerCase() ?? uuidv7(now),
      // validateEvent guarantees utcTimestamp succeeds; UTC is what PostgreSQL can always parse.
      occurred_at: input.occurred_at === undefined ? receivedAt : utcTimestamp(input.occurred_at)!.iso,
      received_at: receivedAt,
      severity: input.severity ?? 'INFO',
    });
    const list = batches.get(tenantId);
    if (list) list.push(event);
    else batches.set(tenantId, [event]);
  }
  return [...batches].map(([tenant_id, events]) => ({ v: 1, tenant_id, events }));
}
