import { open } from '../infra/crypto/aead.js';
import type { TenantKeyring } from '../infra/crypto/tenant-keys.js';
import type { StoredEvent } from '../infra/schema/event.js';
import { sealAad } from '../stages/encrypt/handler.js';

/** Columns every read path selects, with timestamps in one fixed UTC format (microseconds). */
export const EVENT_COLUMNS = `tenant_id, id::text AS id, seq::text AS sequence,
  to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred_at,
  to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS received_at,
  user_id, session_id, action, resource_type, resource_id, severity, host(ip_address) AS ip_address,
  user_agent, message, request_id, key_id, sealed`;

export interface EventRow {
  tenant_id: string;
  id: string;
  sequence: string;
  occurred_at: string;
  received_at: string;
  user_id: string | null;
  session_id: string | null;
  action: string;
  resource_type: string;
  resource_id: string | null;
  severity: StoredEvent['severity'];
  ip_address: string | null;
  user_agent: string | null;
  message: string | null;
  request_id: string | null;
  key_id: number;
  sealed: Buffer | null;
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

/** Turns a row into the API shape, opening the sealed fields with the tenant's key. */
export async function decodeRow(keyring: TenantKeyring, row: EventRow): Promise<StoredEvent> {
  const key = row.sealed ? (await keyring.key(row.tenant_id, row.key_id)).key : undefined;
  return decodeWith(row, key);
}

/**
 * `decodeRow` for many rows: each distinct data key is looked up once, and the returned function
 * decodes any of `rows` synchronously. An export decodes a million rows, and a promise (and a
 * keyring lookup) per row was a large share of its CPU time; decoding row by row as they are
 * formatted also lets each event be garbage as soon as its text is written.
 */
export async function rowDecoder(
  keyring: TenantKeyring,
  rows: EventRow[],
): Promise<(row: EventRow) => StoredEvent> {
  const keys = new Map<string, Buffer>();
  for (const row of rows) {
    const id = `${row.tenant_id}/${row.key_id}`;
    if (row.sealed && !keys.has(id)) keys.set(id, (await keyring.key(row.tenant_id, row.key_id)).key);
  }
  return (row) => decodeWith(row, keys.get(`${row.tenant_id}/${row.key_id}`));
}

/** Every row of `rows`, decoded (see `rowDecoder`). */
export async function decodeRows(keyring: TenantKeyring, rows: EventRow[]): Promise<StoredEvent[]> {
  return rows.map(await rowDecoder(keyring, rows));
}

/** Decodes one row; `key` is the data key of its (tenant, key_id), needed when it is sealed. */
function decodeWith(row: EventRow, key: Buffer | undefined): StoredEvent {
  const event: StoredEvent = {
    tenant_id: row.tenant_id,
    id: row.id,
    sequence: row.sequence,
    occurred_at: row.occurred_at,
    received_at: row.received_at,
    action: row.action,
    resource_type: row.resource_type,
    severity: row.severity,
  };
  for (const k of OPTIONAL) {
    const v = row[k];
    if (v !== null) event[k] = v;
  }
  if (row.sealed) {
    if (!key) throw new Error(`no data key for ${row.tenant_id}/${row.key_id}`);
    const opened = JSON.parse(open(key, row.sealed, sealAad(row.tenant_id, row.id)).toString()) as Pick<
      StoredEvent,
      'before' | 'after' | 'metadata'
    >;
    if (opened.before !== undefined) event.before = opened.before;
    if (opened.after !== undefined) event.after = opened.after;
    if (opened.metadata !== undefined) event.metadata = opened.metadata;
  }
  return event;
}
