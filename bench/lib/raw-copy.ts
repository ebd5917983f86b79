import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { configureFromEnv } from '../../infra/config.js';
import { seal } from '../../infra/crypto/aead.js';
import { metaToken } from '../../infra/crypto/tenant-keys.js';
import { PartitionManager } from '../../infra/db/partitions.js';
import { uuidv7 } from '../../infra/uuid.js';
import { copyField, copyTokenArray } from '../../stages/persist/copy-text.js';
import type { GeneratedEvent } from './events.js';

/** Rows per COPY statement (each its own transaction, as a bulk loader would commit). */
const ROWS_PER_COPY = 10_000;

const COLUMNS =
  'tenant_id, seq, id, occurred_at, received_at, user_id, session_id, action, resource_type, resource_id, severity, ip_address, user_agent, message, request_id, key_id, sealed, meta_idx, tsv';

/** A finished row in COPY text form, minus the encoding work the timed part repeats. */
interface RawRow {
  fields: (string | number | null)[];
  sealedHex: string;
  metaIdx: string[];
  tsv: string;
}

/**
 * Rows equivalent to what persist writes for `events`: same columns, a real AES-GCM `sealed` value
 * of the same plaintext, five blind-index tokens and a tsvector with the same words. The tsvector
 * is given as text (lexemes quoted), because `to_tsvector` is part of the pipeline's INSERT, not
 * of a raw COPY.
 */
export function rawRows(tenant: string, events: GeneratedEvent[]): RawRow[] {
  const key = randomBytes(32);
  const indexKey = randomBytes(32);
  const now = new Date().toISOString();
  return events.map((e, i) => {
    const id = uuidv7();
    const sealed = seal(
      key,
      Buffer.from(JSON.stringify({ before: e.before, after: e.after, metadata: e.metadata })),
      Buffer.from(`${tenant}/${id}`),
    );
    const metaText = Object.values(e.metadata).join(' ');
    const words = new Set(
      [e.message, e.action, e.resource_type, e.resource_id, e.user_id, metaText]
        .join(' ')
        .toLowerCase()
        .split(/[^a-z0-9]+/)
        .filter((w) => w.length > 0),
    );
    return {
      fields: [
        tenant,
        i + 1,
        id,
        now,
        now,
        e.user_id,
        e.session_id,
        e.action,
        e.resource_type,
        e.resource_id,
        e.severity,
        e.ip_address,
        e.user_agent,
        e.message,
        e.request_id,
        1,
      ],
      sealedHex: sealed.toString('hex'),
      metaIdx: Object.entries(e.metadata).map(([k, v]) => metaToken(indexKey, k, String(v))),
      tsv: [...words].map((w) => `'${w}'`).join(' '),
    };
  });
}

function line(r: RawRow): string {
  return `${r.fields.map((f) => copyField(f)).join('\t')}\t\\\\x${r.sealedHex}\t${copyTokenArray(r.metaIdx)}\t${copyField(r.tsv)}\n`;
}

/**
 * The raw ceiling: COPYs `rows` straight into `events` (same table, partitions and indexes as the
 * pipeline writes) over one connection, encoding included, and returns rows per second. The
 * database must be fresh and migrated; its tenant row is created here.
 */
export async function rawCopyRate(databaseUrl: string, tenant: string, rows: RawRow[]): Promise<number> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  try {
    await pool.query(`INSERT INTO tenants (id, name) VALUES ($1, $1)`, [tenant]);
    // The daemons' partition width (the bench passes no PARTITION_* setting to them).
    await new PartitionManager(pool, configureFromEnv({}).PARTITION_DAYS).ensure([Date.now()]);
    const client = await pool.connect();
    try {
      const started = performance.now();
      for (let i = 0; i < rows.length; i += ROWS_PER_COPY) {
        const chunk = rows.slice(i, i + ROWS_PER_COPY);
        const stream = client.query(copyFrom(`COPY events (${COLUMNS}) FROM STDIN`));
        async function* text() {
          for (let j = 0; j < chunk.length; j += 500) {
            let s = '';
            for (const r of chunk.slice(j, j + 500)) s += line(r);
            yield s;
          }
        }
        await pipeline(text, stream);
      }
      const ms = performance.now() - started;
      const { rows: counted } = await client.query<{ n: string }>('SELECT count(*)::text AS n FROM events');
      if (Number(counted[0]?.n) !== rows.length) throw new Error(`raw COPY stored ${counted[0]?.n} rows`);
      return (rows.length * 1000) / ms;
    } finally {
      client.release();
    }
  } finally {
    await pool.end();
  }
}
