import type { PersistedEvent } from '../schema/batch.js';

const RFC3339 = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * An RFC 3339 timestamp in the exact form PostgreSQL reads events back in (UTC, microseconds,
 * `query/decode.ts`), rounding extra digits exactly as PostgreSQL does (`rint` of the same double:
 * half to even). Index and database then agree to the microsecond, so a cursor taken from either
 * compares the same in both.
 */
export function toUtcMicros(timestamp: string): string {
  const m = RFC3339.exec(timestamp);
  if (!m) throw new Error('not an RFC 3339 timestamp');
  const [, date, hh, mm, ss, frac = '', offset] = m;
  // A leap second (…:60) is read as the first instant of the next minute, as PostgreSQL does.
  const leap = ss === '60' ? 1 : 0;
  let seconds = Date.parse(`${date}T${hh}:${mm}:${leap ? '59' : ss}${offset!.toUpperCase()}`) + leap * 1000;
  let micros = rint(Number(`0.${frac || '0'}`) * 1e6);
  if (micros === 1_000_000) {
    seconds += 1000;
    micros = 0;
  }
  return `${new Date(seconds).toISOString().slice(0, 19)}.${String(micros).padStart(6, '0')}Z`;
}

/** C's rint for non-negative values: round half to even. */
function rint(x: number): number {
  const r = Math.round(x);
  return x % 1 === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** What is indexed for one event. `_id` is the event id, so a redelivered batch overwrites, never duplicates. */
export interface SearchDocument {
  tenant_id: string;
  id: string;
  sequence: string;
  occurred_at: string;
  received_at: string;
  user_id?: string;
  session_id?: string;
  action: string;
  resource_type: string;
  resource_id?: string;
  severity: string;
  ip_address?: string;
  user_agent?: string;
  message?: string;
  request_id?: string;
  meta_idx: string[];
  meta_text: string;
}

const OPTIONAL = [
  'user_id',
  'session_id',
  'resource_id',
  'ip_address',
  'user_agent',
  'message',
  'request_id',
] as const;

/**
 * The searchable, already masked fields of a persisted event. `sealed` and `key_id` are left out
 * on purpose: before/after/metadata exist only encrypted in PostgreSQL.
 */
export function toDocument(e: PersistedEvent): SearchDocument {
  const doc: SearchDocument = {
    tenant_id: e.tenant_id,
    id: e.id,
    sequence: e.sequence,
    occurred_at: toUtcMicros(e.occurred_at),
    received_at: toUtcMicros(e.received_at),
    action: e.action,
    resource_type: e.resource_type,
    severity: e.severity,
    meta_idx: e.meta_idx,
    meta_text: e.meta_text,
  };
  for (const k of OPTIONAL) {
    const v = e[k];
    if (v !== undefined) doc[k] = v;
  }
  return doc;
}
