import type { EventRow } from './decode.js';
import { sealedMembers } from './sealed-members.js';

/**
 * The JSON text of a row's event, byte for byte `JSON.stringify(decodeWith(row, sealed))`, built
 * from the row's columns and the sealed members' own text: no event object, no parse of the
 * sealed plaintext and no second serialization of it (an export does this a million times).
 * Key order is `decodeWith`'s: the required fields, the present optional ones, then before,
 * after and metadata. `JSON.stringify` of a string is what quotes and escapes each value.
 */
export function eventJson(row: EventRow, sealed: string | undefined): string {
  const q = JSON.stringify;
  let text = `{"tenant_id":${q(row.tenant_id)},"id":${q(row.id)},"sequence":${q(row.sequence)},"occurred_at":${q(row.occurred_at)},"received_at":${q(row.received_at)},"action":${q(row.action)},"resource_type":${q(row.resource_type)},"severity":${q(row.severity)}`;
  if (row.user_id !== null) text += `,"user_id":${q(row.user_id)}`;
  if (row.session_id !== null) text += `,"session_id":${q(row.session_id)}`;
  if (row.resource_id !== null) text += `,"resource_id":${q(row.resource_id)}`;
  if (row.ip_address !== null) text += `,"ip_address":${q(row.ip_address)}`;
  if (row.user_agent !== null) text += `,"user_agent":${q(row.user_agent)}`;
  if (row.message !== null) text += `,"message":${q(row.message)}`;
  if (row.request_id !== null) text += `,"request_id":${q(row.request_id)}`;
  if (sealed !== undefined) {
    const [before, after, metadata] = sealedMembers(sealed);
    if (before !== undefined) text += `,"before":${before}`;
    if (after !== undefined) text += `,"after":${after}`;
    if (metadata !== undefined) text += `,"metadata":${metadata}`;
  }
  return `${text}}`;
}
