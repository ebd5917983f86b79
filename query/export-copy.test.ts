import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { seal, sealAad } from '../infra/crypto/aead.js';
import type { TenantKeyring } from '../infra/crypto/tenant-keys.js';
import { ByteChunks } from './byte-chunks.js';
import { binaryCopy, type CopyField } from './copy-test-support.js';
import { type EventRow, utcTimestamp } from './decode.js';
import { DecryptThreads } from './decrypt-threads.js';
import { COPY_GROUP_ROWS, copyExport } from './export-copy.js';
import { EXPORT_FORMATS } from './export-format.js';
import type { TenantTx } from './scoped.js';
import { buildWhere } from './where.js';

/**
 * `copyExport` on a COPY stream made here: every row's sealed value opened with its own data key
 * (inline and on threads alike), rows in order across groups and chunks, and a row that claims
 * another tenant refused rather than opened.
 */
const KEYS = new Map([
  [1, randomBytes(32)],
  [2, randomBytes(32)],
]);
const keyring = {
  key: async (_tenant: string, keyId: number) => {
    const key = KEYS.get(keyId);
    if (!key) throw new Error(`no key ${keyId}`);
    return { keyId, key };
  },
} as unknown as TenantKeyring;

interface Row {
  row: EventRow;
  plaintext: string | undefined;
  tuple: CopyField[];
}

function makeRow(i: number, tenant = 'acme'): Row {
  const keyId = 1 + (i % 2);
  const id = `0193a3a5-0000-7000-8000-${String(i).padStart(12, '0')}`;
  const plaintext = i % 5 === 0 ? undefined : JSON.stringify({ metadata: { n: i, note: 'é "q"' } });
  const sealed =
    plaintext === undefined ? null : seal(KEYS.get(keyId)!, Buffer.from(plaintext), sealAad(tenant, id));
  const occurred = `2026-05-01 10:00:${String(i % 60).padStart(2, '0')}.5`;
  const row: EventRow = {
    tenant_id: tenant,
    id,
    sequence: String(i + 1),
    occurred_at: utcTimestamp(occurred),
    received_at: utcTimestamp(occurred),
    user_id: `u${i % 3}`,
    session_id: null,
    action: 'UPDATE',
    resource_type: 'order',
    resource_id: `o-${i}`,
    severity: 'INFO',
    ip_address: null,
    user_agent: null,
    message: i % 7 === 0 ? 'line\nbreak, "quoted"' : null,
    request_id: null,
    key_id: keyId,
    sealed,
  };
  const tuple: CopyField[] = [
    keyId,
    tenant,
    id,
    row.sequence,
    occurred,
    occurred,
    row.user_id,
    null,
    row.action,
    row.resource_type,
    row.resource_id,
    row.severity,
    null,
    null,
    row.message,
    null,
    sealed,
  ];
  return { row, plaintext, tuple };
}

/** A transaction whose COPY returns `output` in chunks of `chunk` bytes. */
function fakeTx(output: Buffer, chunk: number): TenantTx {
  const scope = { tenantId: 'acme' };
  return {
    scope,
    query: async () => ({ rows: [] }),
    copyRows: async () => {
      const chunks: Buffer[] = [];
      for (let at = 0; at < output.length; at += chunk) chunks.push(output.subarray(at, at + chunk));
      return Readable.from(chunks);
    },
  } as unknown as TenantTx;
}

async function run(rows: Row[], format: 'json' | 'ndjson' | 'csv', threads?: DecryptThreads) {
  const out = new ByteChunks(4096);
  const parts: Buffer[] = [];
  const tx = fakeTx(binaryCopy(rows.map((r) => r.tuple)), 1000);
  const count = await copyExport(
    { keyring },
    tx,
    buildWhere(tx.scope, {}),
    'seq-asc',
    format,
    threads,
    out,
    async () => {
      parts.push(...out.take());
    },
  );
  return { count, text: Buffer.concat(parts).toString('utf8') };
}

const threads = new DecryptThreads(1);
afterAll(() => threads.close());

describe('copyExport', () => {
  const rows = Array.from({ length: 2 * COPY_GROUP_ROWS + 17 }, (_, i) => makeRow(i));

  for (const format of ['json', 'ndjson', 'csv'] as const) {
    it(`formats every row in order with its opened sealed value (${format}, inline and on a thread)`, async () => {
      const expected = rows.map((r, i) => EXPORT_FORMATS[format].row(r.row, r.plaintext, i)).join('');
      for (const pool of [undefined, threads]) {
        const { count, text } = await run(rows, format, pool);
        expect(count).toBe(rows.length);
        expect(text).toBe(expected);
      }
    });
  }

  it('refuses a row of another tenant, and a value that does not authenticate', async () => {
    const foreign = [...rows.slice(0, 3), makeRow(3, 'globex')];
    for (const pool of [undefined, threads]) {
      await expect(run(foreign, 'ndjson', pool)).rejects.toThrow('export row outside the scope tenant');
    }
    // A sealed value moved to another row (same tenant and key): its AAD no longer matches.
    const moved = rows.slice(0, 4).map((r) => ({ ...r, tuple: [...r.tuple] }));
    moved[3]!.tuple[16] = moved[1]!.tuple[16]!;
    moved[3]!.tuple[0] = moved[1]!.tuple[0]!;
    for (const pool of [undefined, threads]) {
      await expect(run(moved, 'ndjson', pool)).rejects.toThrow(/authenticate/);
    }
  });
});
