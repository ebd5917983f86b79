import { createHash } from 'node:crypto';

/** The fields a client sends that must come back unchanged (after masking, which test data avoids). */
const FIELDS = [
  'tenant_id',
  'id',
  'occurred_at',
  'user_id',
  'session_id',
  'action',
  'resource_type',
  'resource_id',
  'severity',
  'ip_address',
  'user_agent',
  'message',
  'before',
  'after',
  'metadata',
  'request_id',
] as const;

/** JSON with object keys sorted at every level, so equal content gives equal text. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * SHA-256 of an event's content fields, the same for the event as sent and as read back. The
 * timestamp is compared as an instant (the API may print more fractional digits than were sent).
 */
export function contentHash(event: Record<string, unknown>): string {
  const picked: Record<string, unknown> = {};
  for (const f of FIELDS) {
    const v = event[f];
    if (v === undefined || v === null) continue;
    picked[f] = f === 'occurred_at' ? new Date(String(v)).toISOString() : v;
  }
  return createHash('sha256').update(canonical(picked)).digest('base64url');
}
