import type pg from 'pg';
import type { ReadScope } from '../infra/auth/access.js';
import { prepared } from '../infra/db/prepared.js';
import { EVENT_COLUMNS } from './decode.js';
import type { RowKey } from './scoped.js';

/**
 * The statement reading the rows at `keys`, in the keys' order, under row-level security: a call
 * of `auditlog_rows_at` (migration 009), which sets the scope, enters the reader role and reads,
 * so it needs no statement before it and no transaction block around it. A key outside the scope
 * yields nothing.
 *
 * `events` is partitioned by time (a week per partition by default). The keys' time range
 * (BETWEEN) bounds the read to the partitions inside it; without it every partition of the table
 * would be planned and probed for every call (a 500-key read took hundreds of milliseconds).
 *
 * A page of keys (up to 100) is read with one index probe per key: each key looks up its own row
 * (`LATERAL … LIMIT 1`; a tenant's sequence number is unique, so there is at most one), in the one
 * partition its instant leaves. The function's plan is cached, so it soon runs a generic plan,
 * which has to be good for any keys, and written as a join of the keys with `events` its generic
 * plans were not: under ingest a page of 51 keys read the 4,700 rows at the keys' instants
 * (events of one bulk request often share an instant) and compared 240,000 pairs (32 ms), and a
 * page of 20 rare matches spread over a month scanned all of the tenant's index entries in each
 * of 27 daily partitions (50 ms). Probed per key, both take 0.3–0.6 ms. A longer list (an export
 * chunk of 1,000 keys, usually a dense run of time) is still one join over the range: per-key
 * probes made such exports 10–25% slower.
 */
export function rowsAtStatement(scope: ReadScope, keys: RowKey[]): pg.QueryConfig {
  const ats = keys.map((k) => k.occurred_at);
  const span = timeSpan(ats);
  return prepared(
    `SELECT ${EVENT_COLUMNS} FROM auditlog_rows_at($1, $2, $3::timestamptz[], $4::bigint[], $5::timestamptz, $6::timestamptz)
       WITH ORDINALITY AS events ORDER BY ordinality`,
    [scope.tenantId, scope.userId ?? null, ats, keys.map((k) => k.seq), span.from, span.to],
  );
}

/**
 * The smallest millisecond range holding every instant of `ats` (microsecond timestamps: `from`
 * is rounded down, `to` up). Parsed rather than compared as text, so any ISO form of a key works;
 * an unparsable one widens the range to everything rather than dropping its row.
 */
function timeSpan(ats: string[]): { from: string; to: string } {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const at of ats) {
    const ms = Date.parse(at);
    if (Number.isNaN(ms)) return { from: '-infinity', to: 'infinity' };
    if (ms < min) min = ms;
    if (ms > max) max = ms;
  }
  return { from: new Date(min).toISOString(), to: new Date(max + 1).toISOString() };
}
