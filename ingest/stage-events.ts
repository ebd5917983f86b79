import { requireWriter, writeTenant } from '../infra/auth/access.js';
import type { Principal } from '../infra/auth/principal.js';
import { HttpError } from '../infra/http/errors.js';
import { type EventInput, LIMITS, type StagedEvent } from '../infra/schema/event.js';
import { checkEventInput, utcTimestamp, type ValidationIssue } from '../infra/schema/validate.js';
import type { SerializedBatch, SerializedEvent } from '../infra/transport/split.js';
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

/** The fields ingest sets on every event, in the order a staged event's JSON starts with them. */
const STAGED_KEYS = ['tenant_id', 'id', 'occurred_at', 'received_at', 'severity'] as const;
type StagedFields = Pick<StagedEvent, (typeof STAGED_KEYS)[number]>;
/** `"key":` of each staged field, as it appears in JSON. */
const KEY_JSON = Object.fromEntries(STAGED_KEYS.map((k) => [k, `${JSON.stringify(k)}:`])) as Record<
  (typeof STAGED_KEYS)[number],
  string
>;

/**
 * The JSON of the staged event `Object.assign({}, input, fields)`, built from the input's own
 * JSON (`json`, from validation) instead of serializing the event again (measured: parse, stage
 * and body bytes of 500 events, median 5.2–6.3 → 4.9–5.5 ms): the fields the input lacks are
 * written in front of its keys. When the input has a field with another value (an upper-case id,
 * a timestamp with an offset, which staging normalizes), the staged event is serialized whole.
 * That fallback uses Object.assign, not `{ ...input, ... }` (a V8 slow path for parsed objects,
 * 9 µs against 1 µs per event); no setter can run, because validation rejects every key outside
 * the schema (`__proto__` included).
 */
export function stagedJson(input: EventInput, json: string, fields: StagedFields): string {
  let head = '';
  for (const key of STAGED_KEYS) {
    const given = (input as Partial<StagedFields>)[key];
    if (given === undefined) head += `${KEY_JSON[key]}${JSON.stringify(fields[key])},`;
    else if (given !== fields[key]) return JSON.stringify(Object.assign({}, input, fields));
  }
  if (head === '') return json;
  // An input always has keys (action and resource_type are required); without, drop the comma.
  return json === '{}' ? `{${head.slice(0, -1)}}` : `{${head}${json.slice(1)}`;
}

/**
 * Validates a whole request and turns it into per-tenant batches of serialized events with every
 * default filled in. Throws a 400 listing every bad item by index and field path (`indexed`), or
 * a 403 for a tenant the caller may not write; in either case nothing is enqueued.
 */
export function stageEvents(principal: Principal, inputs: unknown[], indexed: boolean): SerializedBatch[] {
  requireWriter(principal);
  const now = Date.now();
  if (!indexed && inputs.length === 1 && tooLargeForAnEvent(inputs[0])) {
    throw new HttpError(413, 'event_too_large', `an event may be at most ${LIMITS.eventBytes} bytes`);
  }
  const issues: ValidationIssue[] = [];
  const jsons = inputs.map((input, index) => {
    const checked = checkEventInput(input, now);
    for (const issue of checked.issues) issues.push(indexed ? { index, ...issue } : issue);
    return checked.json;
  });
  if (issues.length > 0) {
    throw new HttpError(400, 'validation_failed', `${issues.length} problem(s) in the request`, issues);
  }
  const receivedAt = new Date(now).toISOString();
  const batches = new Map<string, SerializedEvent[]>();
  for (const [i, input] of (inputs as EventInput[]).entries()) {
    const fields: StagedFields = {
      tenant_id: writeTenant(principal, input.tenant_id),
      id: input.id?.toLowerCase() ?? uuidv7(now),
      // validateEvent guarantees utcTimestamp succeeds; UTC is what PostgreSQL can always parse.
      occurred_at: input.occurred_at === undefined ? receivedAt : utcTimestamp(input.occurred_at)!.iso,
      received_at: receivedAt,
      severity: input.severity ?? 'INFO',
    };
    // A valid event has always been serialized by validation (checkEventInput).
    const event = { id: fields.id, json: stagedJson(input, jsons[i]!, fields) };
    const list = batches.get(fields.tenant_id);
    if (list) list.push(event);
    else batches.set(fields.tenant_id, [event]);
  }
  return [...batches].map(([tenant_id, events]) => ({ tenant_id, events }));
}
