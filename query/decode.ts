import { openText, sealAad } from '../infra/crypto/aead.js';
import type { TenantKeyring } from '../infra/crypto/tenant-keys.js';
import type { StoredEvent } from '../infra/schema/event.js';

/**
 * Columns every read path selects (but an export's COPY, see `COPY_EXPORT_COLUMNS`), with
 * timestamps in one fixed UTC format (microseconds).
 */
export const EVENT_COLUMNS = `tenant_id, id::text AS id, seq::text AS sequence,
  to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred_at,
  to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS received_at,
  user_id, session_id, action, resource_type, resource_id, severity, host(ip_address) AS ip_address,
  user_agent, message, request_id, key_id, sealed`;

/** A `timestamp` as PostgreSQL prints it with `DateStyle` ISO: `2026-05-01 10:00:00.5`, `0044-03-15 00:00:00 BC`. */
const ISO_TIMESTAMP = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?(?: BC)?$/;

/**
 * The `EVENT_COLUMNS` text of a timestamp from PostgreSQL's own text of the UTC time
 * (`(ts AT TIME ZONE 'UTC')::text` under `DateStyle` ISO, as an export selects it: `to_char`
 * cost PostgreSQL about 2 µs a call, a fifth of its work per exported row): exactly
 * what `to_char(…, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')` prints (all six fraction digits; the year as
 * printed, at least four digits, BC unmarked). Throws on anything else, such as `infinity`.
 */
export function utcTimestamp(iso: string): string {
  const m = ISO_TIMESTAMP.exec(iso);
  if (!m) throw new Error(`unexpected timestamp text: ${iso}`);
  return `${m[1]}T${m[2]}.${(m[3] ?? '').padEnd(6, '0')}Z`;
}

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
  const [event] = await decodeRows(keyring, [row]);
  return event!;
}

/** Opens the `sealed` column of rows, looking up each distinct data key once. */
export interface SealedOpener {
  /** True when `open(row)` can run now: the row has nothing sealed, or its key is loaded. */
  ready(row: EventRow): boolean;
  /** Loads the keys `rows` need. */
  load(rows: EventRow[]): Promise<void>;
  /**
   * The row's sealed plaintext (the JSON text `{"before":…,"after":…,"metadata":…}`, see
   * `sealedMembers`), or undefined when it has none. Synchronous: an export opens a million rows,
   * and a promise (and a keyring lookup) per row was a large share of its CPU time.
   */
  open(row: EventRow): string | undefined;
  /** The data key of the row's (tenant, key_id), once `load` has loaded it. */
  key(row: EventRow): Buffer | undefined;
}

export function sealedOpener(keyring: TenantKeyring): SealedOpener {
  const keys = new Map<string, Buffer>();
  // Consecutive rows almost always share a key: remembered, so no map key is built per row.
  let lastTenant: string | undefined;
  let lastKeyId: number | undefined;
  let lastKey: Buffer | undefined;
  const keyOf = (row: EventRow): Buffer | undefined => {
    if (row.tenant_id !== lastTenant || row.key_id !== lastKeyId || !lastKey) {
      lastKey = keys.get(`${row.tenant_id}/${row.key_id}`);
      lastTenant = row.tenant_id;
      lastKeyId = row.key_id;
    }
    return lastKey;
  };
  return {
    ready: (row) => !row.sealed || keyOf(row) !== undefined,
    async load(rows) {
      for (const row of rows) {
        const id = `${row.tenant_id}/${row.key_id}`;
        if (row.sealed && !keys.has(id)) keys.set(id, (await keyring.key(row.tenant_id, row.key_id)).key);
      }
    },
    open: (row) => (row.sealed ? openWith(row, row.sealed, keyOf(row)) : undefined),
    key: keyOf,
  };
}

/** Every row of `rows`, decoded (see `sealedOpener`). */
export async function decodeRows(keyring: TenantKeyring, rows: EventRow[]): Promise<StoredEvent[]> {
  const opener = sealedOpener(keyring);
  await opener.load(rows);
  return rows.map((row) => decodeWith(row, opener.open(row)));
}

/** The sealed plaintext of `row`; `key` is the data key of its (tenant, key_id). */
function openWith(row: EventRow, sealed: Buffer, key: Buffer | undefined): string {
  return openText(loadedKey(row, key), sealed, sealAad(row.tenant_id, row.id));
}

/** `key`, which `SealedOpener.load` has loaded for `row`, or an error if it did not. */
export function loadedKey(row: EventRow, key: Buffer | undefined): Buffer {
  if (!key) throw new Error(`no data key for ${row.tenant_id}/${row.key_id}`);
  return key;
}

/** Decodes one row; `sealed` is its opened sealed plaintext, when it has one. */
export function decodeWith(row: EventRow, sealed: string | undefined): StoredEvent {
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
  if (sealed !== undefined) {
    const opened = JSON.parse(sealed) as Pick<StoredEvent, 'before' | 'after' | 'metadata'>;
    if (opened.before !== undefined) event.before = opened.before;
    if (opened.after !== undefined) event.after = opened.after;
    if (opened.metadata !== undefined) event.metadata = opened.metadata;
  }
  return event;
}
