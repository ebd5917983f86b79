import type { Context } from '../infra/context.js';
import type { ByteChunks } from './byte-chunks.js';
import { tupleSplitter } from './copy-tuples.js';
import type { SortMode } from './cursor.js';
import { type DecryptThreads, type Opened, type OpenRequest, openPacked } from './decrypt-threads.js';
import type { ExportFormatName } from './filters.js';
import type { TenantTx } from './scoped.js';
import { copy, F, formatTuple, TUPLE_FIELDS, type TupleFields, tupleFields } from './tuple-format.js';
import type { ScopedWhere } from './where.js';

/**
 * The columns of an export read by binary COPY, in the order of `tuple-format.ts`'s `F`: key_id
 * (an int4), then the event's columns as text, timestamps as PostgreSQL's ISO text of the UTC
 * time (needs `DateStyle` ISO), `sealed` raw.
 */
export const COPY_EXPORT_COLUMNS = `key_id, tenant_id, id::text, seq::text,
  (occurred_at AT TIME ZONE 'UTC')::text, (received_at AT TIME ZONE 'UTC')::text,
  user_id, session_id, action, resource_type, resource_id, severity, host(ip_address),
  user_agent, message, request_id, sealed`;

/**
 * Rows per group: split from the COPY output, opened by one decrypt request and formatted
 * together. Much smaller groups pay a thread round trip per few rows.
 */
export const COPY_GROUP_ROWS = 250;

/** Groups whose sealed values are being opened while the oldest is formatted and written. */
const GROUPS_AHEAD = 3;

/** A group of tuples, where their fields are, and (once opened) their sealed plaintexts. */
interface Group {
  data: Buffer;
  fields: TupleFields;
  /** For each row, the index of its plaintext in `opened`, or -1 when it has no sealed value. */
  item: Int32Array;
  opened: Promise<Opened | undefined>;
}

const ignore = () => {};

/** Whether `data[s, e)` holds exactly the bytes of `bytes`. */
function sameBytes(data: Buffer, s: number, e: number, bytes: Buffer): boolean {
  if (e - s !== bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (data[s + i] !== bytes[i]) return false;
  return true;
}

/**
 * The one-phase export (a `where.leakproof` clause, see `exportRows`) read by binary COPY, so no
 * driver makes a string of every field: the output is split into groups of whole tuples
 * (`tupleSplitter`); each group's sealed values are packed, with their AAD (the row's own tenant
 * and id bytes), into one request to `threads` (or opened inline without them); and the rows are
 * formatted from the tuples' bytes into `out` (`formatTuple`), in order, as their groups come
 * back.
 *
 * `written` writes what `out` holds and resolves once more may follow. While it has not resolved
 * the COPY stream is not read, so the database waits (backpressure): memory stays at a few groups
 * whatever the export's size. Resolves with the number of rows.
 */
export async function copyExport(
  ctx: Pick<Context, 'keyring'>,
  tx: TenantTx,
  where: ScopedWhere,
  mode: SortMode,
  format: ExportFormatName,
  threads: DecryptThreads | undefined,
  out: ByteChunks,
  written: () => Promise<void>,
): Promise<number> {
  await tx.query(`SELECT set_config('datestyle', 'ISO', true)`);
  const stream = await tx.copyRows(where, mode, COPY_EXPORT_COLUMNS);
  const splitter = tupleSplitter(TUPLE_FIELDS, COPY_GROUP_ROWS);
  const tenant = Buffer.from(tx.scope.tenantId);
  const keys = new Map<number, Promise<Buffer>>();
  const keyOf = (keyId: number) => {
    let key = keys.get(keyId);
    if (!key) {
      key = ctx.keyring.key(tx.scope.tenantId, keyId).then((k) => k.key);
      keys.set(keyId, key);
    }
    return key;
  };

  /** Packs the group's sealed values and sends them to be opened. */
  const open = (data: Buffer, fields: TupleFields): Group => {
    const { rows, starts, ends } = fields;
    const item = new Int32Array(rows).fill(-1);
    const keyIds: number[] = [];
    const keyIndex = new Uint16Array(rows);
    let items = 0;
    let size = 0;
    for (let r = 0; r < rows; r++) {
      const base = r * TUPLE_FIELDS;
      if (starts[base + F.sealed]! < 0) continue;
      // Row-level security already keeps other tenants' rows out; the data key is looked up for
      // this scope's tenant, so a row that claimed another tenant must fail, not be opened.
      if (!sameBytes(data, starts[base + F.tenantId]!, ends[base + F.tenantId]!, tenant)) {
        throw new Error('export row outside the scope tenant');
      }
      const keyId = data.readInt32BE(starts[base + F.keyId]!);
      let k = keyIds.indexOf(keyId);
      if (k < 0) k = keyIds.push(keyId) - 1;
      keyIndex[items] = k;
      item[r] = items++;
      // AAD: `${tenant}/${id}` (see `sealAad`), then the ciphertext.
      size += tenant.length + 1 + (ends[base + F.id]! - starts[base + F.id]!);
      size += ends[base + F.sealed]! - starts[base + F.sealed]!;
    }
    if (items === 0) return { data, fields, item, opened: Promise.resolve(undefined) };
    // Its own ArrayBuffer (never a slice of Node's shared pool), so it can be transferred.
    const packed = Buffer.from(new ArrayBuffer(size));
    const packedEnds = new Uint32Array(items * 2);
    let at = 0;
    for (let r = 0; r < rows; r++) {
      const i = item[r]!;
      if (i < 0) continue;
      const base = r * TUPLE_FIELDS;
      at = copy(packed, at, tenant, 0, tenant.length);
      packed[at++] = 0x2f; // '/'
      at = copy(packed, at, data, starts[base + F.id]!, ends[base + F.id]!);
      packedEnds[2 * i] = at;
      at = copy(packed, at, data, starts[base + F.sealed]!, ends[base + F.sealed]!);
      packedEnds[2 * i + 1] = at;
    }
    const opened = Promise.all(keyIds.map(keyOf)).then((loaded) => {
      const request: OpenRequest = {
        id: 0,
        // Copies: a view would clone (or transfer) the pool slab around a key.
        keys: loaded.map((k) => new Uint8Array(k)),
        keyIndex: keyIndex.slice(0, items),
        data: new Uint8Array(packed.buffer),
        ends: packedEnds,
      };
      return threads ? threads.openRequest(request) : openPacked(request);
    });
    opened.catch(ignore); // observed when the group's turn to be formatted comes
    return { data, fields, item, opened };
  };

  let index = 0;
  /** Formats the group's rows into `out`, in order, once its sealed values are open. */
  const emit = async (group: Group) => {
    const opened = await group.opened;
    const plain = opened && Buffer.from(opened.data.buffer, opened.data.byteOffset, opened.data.byteLength);
    for (let r = 0; r < group.fields.rows; r++) {
      const i = group.item[r]!;
      if (i < 0 || !opened) formatTuple(format, out, group.data, group.fields, r, undefined, 0, 0, index++);
      else {
        const start = i === 0 ? 0 : opened.ends[i - 1]!;
        formatTuple(format, out, group.data, group.fields, r, plain, start, opened.ends[i]!, index++);
      }
    }
  };

  const ahead: Group[] = [];
  const add = (data: Buffer, rows: number) => ahead.push(open(data, tupleFields(data, rows)));
  for await (const chunk of stream) {
    for (const group of splitter.push(chunk as Buffer)) {
      add(group.data, group.rows);
      if (ahead.length > GROUPS_AHEAD) await emit(ahead.shift()!);
    }
    await written();
  }
  const rest = splitter.end();
  if (rest) add(rest.data, rest.rows);
  while (ahead.length > 0) await emit(ahead.shift()!);
  await written();
  return index;
}
