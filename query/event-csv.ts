import type { StoredEvent } from '../infra/schema/event.js';
import { csvCell } from './csv.js';
import type { EventRow } from './decode.js';
import { sealedMembers } from './sealed-members.js';

/** CSV columns, in order: every event field; before/after/metadata as JSON text. */
export const CSV_COLUMNS = [
  'tenant_id',
  'id',
  'sequence',
  'occurred_at',
  'received_at',
  'user_id',
  'session_id',
  'action',
  'resource_type',
  'resource_id',
  'severity',
  'ip_address',
  'user_agent',
  'message',
  'request_id',
  'before',
  'after',
  'metadata',
] as const satisfies readonly (keyof StoredEvent)[];

/**
 * One CSV row (CRLF-terminated) of a row's event in `CSV_COLUMNS` order: the same cells as
 * `csvRow` of the decoded event's fields, with before/after/metadata as their JSON text (taken
 * from the sealed plaintext as is, see `sealedMembers`) and a string value as the string itself.
 */
export function eventCsv(row: EventRow, sealed: string | undefined): string {
  const [before, after, metadata] = sealed === undefined ? [] : sealedMembers(sealed);
  return (
    `${csvCell(row.tenant_id)},${csvCell(row.id)},${csvCell(row.sequence)},${csvCell(row.occurred_at)},` +
    `${csvCell(row.received_at)},${csvCell(row.user_id)},${csvCell(row.session_id)},${csvCell(row.action)},` +
    `${csvCell(row.resource_type)},${csvCell(row.resource_id)},${csvCell(row.severity)},` +
    `${csvCell(row.ip_address)},${csvCell(row.user_agent)},${csvCell(row.message)},${csvCell(row.request_id)},` +
    `${jsonCell(before)},${jsonCell(after)},${jsonCell(metadata)}\r\n`
  );
}

/** A before/after/metadata cell from the member's JSON text. */
export function jsonCell(json: string | undefined): string {
  if (json === undefined) return '';
  // A JSON string is exported as the string itself, not as JSON text.
  return csvCell(json.charCodeAt(0) === 0x22 ? (JSON.parse(json) as string) : json);
}
