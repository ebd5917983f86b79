import type { Readable } from 'node:stream';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { ReadScope } from '../infra/auth/access.js';
import type { Context } from '../infra/context.js';
import { prepared } from '../infra/db/prepared.js';
import { type Correlation, type CorrelationRow, correlationOf, correlationStatement } from './correlation.js';
import type { SortMode } from './cursor.js';
import type { EventRow } from './decode.js';
import { ORDER_BY } from './order.js';
import { rowsAtStatement } from './rows-at.js';
import { type ScopedWhere, stableIn } from './where.js';

/** The database role reads run as (migration 002); row-level security applies to it. */
export const READER_ROLE = 'auditlog_reader';

/** A row's position: enough to fetch it, nothing about its content. */
export interface RowKey {
  occurred_at: string;
  seq: string;
}

const KEY_COLUMNS = `to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred_at,
  seq::text AS seq`;

/**
 * The keys statement of a clause whose only condition is a list of values of an indexed column
 * (see `ScopedWhere.merge`): one branch per value, each that value's ordered index scan up to the
 * limit (the last parameter), merged in the page's order and cut at the limit. The first `limit`
 * rows of the whole list are among the first `limit` of their own value, so the result is exactly
 * the one statement's. Each branch is plan-stable (one equality on an index's leading column), so
 * the statement is prepared, one per number of values.
 *
 * Why: with `= ANY` the planner cannot read the (tenant, column, occurred_at) index in time order,
 * so for a 50-row page it walked the time index testing every row (rare values: thousands of rows)
 * or read every match of the slice and sorted them, and planned that over the slice's partitions
 * on every request.
 */
function mergedKeys(where: ScopedWhere, merge: NonNullable<ScopedWhere['merge']>, mode: SortMode): string {
  const limit = `$${where.params.length + 1}`;
  const branches = Array.from({ length: merge.count }, (_, i) => {
    const sql = where.sql.replace(merge.list, () => `${merge.column} = ($${merge.param}::text[])[${i + 1}]`);
    return `(SELECT occurred_at, seq FROM events WHERE ${sql} ORDER BY ${ORDER_BY[mode]} LIMIT ${limit})`;
  });
  return `SELECT ${KEY_COLUMNS} FROM (${branches.join(' UNION ALL ')}) events ORDER BY ${ORDER_BY[mode]} LIMIT ${limit}`;
}

/** What a read may do inside {@link withTenantScope}. */
export interface TenantTx {
  readonly scope: ReadScope;
  /**
   * Runs a statement as `auditlog_reader`. Row-level security shows it only the scope's tenant
   * (and, for the `user` role, the user's) rows of `events` and `event_ids`, even if the SQL
   * forgets the condition. Every statement that returns event data goes through here, or enters
   * the reader role itself (`rowsAt`, `correlate`: functions of migration 009). Unnamed
   * unless given as a `prepared` statement: name only statements whose best plan does not depend
   * on their values (see `keys`).
   */
  query<R extends pg.QueryResultRow>(
    statement: string | pg.QueryConfig,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>>;
  /**
   * Keys of the rows matching `where`, in `mode` order, at most `limit`. See "Why two phases".
   * The clause must come from `buildWhere` for this very scope, or this throws.
   */
  keys(where: ScopedWhere, mode: SortMode, limit: number): Promise<RowKey[]>;
  /**
   * The rows at `keys`, in the keys' order, read as `auditlog_reader` (see `rowsAtStatement`). A
   * key outside the scope yields nothing.
   */
  rowsAt(keys: RowKey[]): Promise<EventRow[]>;
  /** How many events of the scope one request produced, and over what span (see `correlationStatement`). */
  correlate(requestId: string): Promise<Correlation>;
  /**
   * Opens a server-side cursor over the keys of every row matching `where` (for exports) and
   * returns a function fetching the next `n` keys; an empty array means the end.
   */
  keyCursor(where: ScopedWhere, mode: SortMode): Promise<(n: number) => Promise<RowKey[]>>;
  /**
   * Every row matching `where`, in `mode` order, as `auditlog_reader`, as PostgreSQL's binary
   * COPY output of `columns` (see `tupleSplitter`): no per-field parsing on this event loop. One
   * phase instead of two, planned in the reader role, so row-level security applies to every
   * row: meant for a clause whose conditions all keep their indexes under RLS
   * (`where.leakproof`). The clause must come from `buildWhere` for this very scope, or this
   * throws. The stream applies backpressure to the database: while it is not read, the server
   * waits. Until it has ended the transaction can do nothing else, and if the scope's function
   * ends first (by throwing or returning), the connection is discarded instead of committed or
   * rolled back.
   */
  copyRows(where: ScopedWhere, mode: SortMode, columns: string): Promise<Readable>;
}

/**
 * Runs `fn` in a read-only transaction scoped to one tenant: the one helper every read path
 * (get, search, correlation, export) uses. Inside it:
 * - every statement of `query` runs as `auditlog_reader` (`set_config('role', …, true)`, i.e.
 *   `SET LOCAL ROLE`), which may only SELECT, and only through the row-level-security policies of
 *   migration 002;
 * - `auditlog.tenant` / `auditlog.user` are set transaction-locally, so the policies see the scope.
 * Both end with the transaction, so a pooled connection never carries them into a writer's work.
 * REPEATABLE READ gives an export one snapshot across all its statements.
 *
 * Why two phases (keys, then rows): PostgreSQL evaluates a query's own conditions after the
 * policy's unless their functions are LEAKPROOF, and the full-text (`@@`) and array (`@>`)
 * operators are not (only a superuser can mark them). Under RLS they therefore cannot use the GIN
 * indexes, and a rare-term search would scan the whole tenant. So the matching
 * (`keys`, `keyCursor`) runs as the owner role, on a WHERE clause that `buildWhere` built for this
 * scope (checked here), and returns only (occurred_at, seq) positions; the rows themselves are
 * then read with `query`, under RLS. A bug that dropped the tenant from the match could produce
 * another tenant's positions, but never its data: the row read filters them out. A clause whose
 * conditions are all LEAKPROOF keeps its indexes under RLS, so an export of one reads its rows in
 * one phase instead (`copyRows`, as the reader). A search keeps two phases even then: with the
 * policy's conditions in its statement the planner chose worse indexes for a 50-row page.
 *
 * Round trips: every statement is a network round trip and reads are latency-bound, so the role
 * is switched lazily, only when the next statement needs the other one (`rowsAt` sets the scope
 * and enters the reader role within its own statement). `query` never sends a statement without
 * entering the reader role first. COMMIT of a read-only transaction cannot change what was read,
 * so the result is returned without waiting for it; the connection goes back to the pool once it
 * has ended (or is discarded if it failed). A read that needs only keys and the rows at them (a
 * search page) uses {@link withTenantReads} instead: no transaction block at all.
 *
 * This is a guard against mistakes in our own SQL, not a sandbox: all SQL here is ours and
 * parameterized, and the owner role can always `RESET ROLE`.
 */
export async function withTenantScope<T>(
  ctx: Pick<Context, 'pool'>,
  scope: ReadScope,
  fn: (tx: TenantTx) => Promise<T>,
): Promise<T> {
  const client = await ctx.pool.connect();
  const state: TxState = { copying: false };
  let result: T;
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    result = await fn(tenantTx(client, scope, state));
  } catch (err) {
    if (state.copying) {
      // A COPY still streams: no other statement can run on the connection. Discarding it ends
      // the session, and with it the transaction.
      client.release(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
    let broken: Error | undefined;
    await client.query('ROLLBACK').catch((rollbackErr: Error) => {
      broken = rollbackErr; // the connection is unusable: the pool must discard it
    });
    client.release(broken);
    throw err;
  }
  if (state.copying) {
    // The function returned before reading a COPY to its end: a COMMIT would wait behind it
    // forever. Nothing was written, so ending the session loses nothing.
    client.release(new Error('COPY not read to its end'));
    return result;
  }
  client.query('COMMIT').then(
    () => client.release(),
    (err: Error) => client.release(err),
  );
  return result;
}

/**
 * What a read may do inside {@link withTenantReads}: match keys, read the rows at them, and
 * summarize a request: each reading statement enters the reader role itself.
 */
export type TenantReads = Pick<TenantTx, 'scope' | 'keys' | 'rowsAt' | 'correlate'>;

/**
 * Runs `fn` with `keys`, `rowsAt` and `correlate` of one tenant's scope, as `withTenantScope`
 * does, but without a transaction block: each statement is its own implicit transaction. A search
 * page is then two round trips (keys as the owner, and `rowsAt`, which enters the reader role
 * inside its own statement) instead of five (BEGIN, keys, the role switch, the rows, COMMIT), and
 * a correlation's summary one more. A query daemon serving `last_24h` pages used ~0.7 ms less of
 * its own CPU and ~0.3 ms less of PostgreSQL's per request (of ~11.5 ms).
 *
 * What it gives up is one snapshot for all statements, which a page does not need: a key matched
 * in one statement names a row that is still there for the next (events are never updated, and
 * none is deleted while it can be read), and each time slice (`slicedKeys`) is a keyset range of
 * its own, so a row committed between two slices' statements is in the newer snapshot or in
 * neither, exactly as it would be for a later page. Nothing here writes or keeps a setting: the
 * reader role and the scope end with `rowsAt`'s statement. A failed statement leaves the
 * connection idle outside any transaction; it is discarded anyway.
 */
export async function withTenantReads<T>(
  ctx: Pick<Context, 'pool'>,
  scope: ReadScope,
  fn: (reads: TenantReads) => Promise<T>,
): Promise<T> {
  const client = await ctx.pool.connect();
  let result: T;
  try {
    result = await fn(tenantReads(client, scope));
  } catch (err) {
    client.release(err instanceof Error ? err : new Error(String(err)));
    throw err;
  }
  client.release();
  return result;
}

/**
 * `keys`, `rowsAt` and `correlate` on `client`, each one statement: the whole of
 * {@link withTenantReads}, and what `withTenantScope`'s transaction adds its role bookkeeping to.
 */
function tenantReads(client: pg.PoolClient, scope: ReadScope): TenantReads {
  return {
    scope,
    async keys(where, mode, limit) {
      checkScope(scope, where);
      const { rows } = await client.query<RowKey>(keysStatement(where, mode, limit));
      return rows;
    },
    async rowsAt(keys) {
      if (keys.length === 0) return [];
      const { rows } = await client.query<EventRow>(rowsAtStatement(scope, keys));
      return rows;
    },
    async correlate(requestId) {
      const { rows } = await client.query<CorrelationRow>(correlationStatement(scope, requestId));
      return correlationOf(requestId, rows[0]);
    },
  };
}

/** What `withTenantScope` must know of its transaction when it ends. */
interface TxState {
  /** A COPY's output has not all been read (see `TenantTx.copyRows`). */
  copying: boolean;
}

/**
 * A clause's SQL with each `$n` read from the transaction-local setting `auditlog.copy_<n>`, and
 * the statement that sets those settings from `params` (as parameters). COPY takes no bind
 * parameters, and values never travel inside SQL text. A text setting stands for a parameter
 * because every placeholder `buildWhere` writes is compared with a text column or cast
 * explicitly (`::timestamptz`, `::bigint`, `::text[]`).
 */
function settingsWhere(where: ScopedWhere): { sql: string; set: pg.QueryConfig } {
  const values = where.params.map(settingText);
  return {
    sql: where.sql.replace(/\$(\d+)/g, (_, n: string) => `current_setting('auditlog.copy_${n}')`),
    set: {
      text: `SELECT ${values.map((_, i) => `set_config('auditlog.copy_${i + 1}', $${i + 1}, true)`).join(', ')}`,
      values,
    },
  };
}

/** A parameter's text as PostgreSQL reads it: strings as is, string arrays as an array literal. */
function settingText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) {
    return `{${value.map((v) => `"${v.replace(/["\\]/g, '\\$&')}"`).join(',')}}`;
  }
  throw new Error(`no setting text for a ${typeof value} parameter`);
}

/** Throws unless `where` was built (by `buildWhere`) for `scope`. */
function checkScope(scope: ReadScope, where: ScopedWhere): void {
  if (
    where.scope.tenantId !== scope.tenantId ||
    where.scope.userId !== scope.userId ||
    where.params[0] !== scope.tenantId
  ) {
    throw new Error('WHERE clause was built for a different scope');
  }
}

/**
 * The statement of `TenantTx.keys`. Unnamed, so planned for its values every time: a cached
 * generic plan cannot tell a heavy tenant or user, or a common term, from a rare one. In the
 * 5M-event search run, matching statements with cached plans took p99 from 90 to 367 ms (user_id)
 * and from 88 to 945 ms (combined filters), and a full-text match 0.1–0.8 s. Except a clause
 * plan-stable in its order (see `ScopedWhere.planStable`): its best plan is one index's ordered
 * scan for any values, and planning it over a month of daily partitions cost 5–7 ms of a 6–8 ms
 * read.
 */
function keysStatement(where: ScopedWhere, mode: SortMode, limit: number): pg.QueryConfig {
  const values = [...where.params, limit];
  if (where.merge && mode.startsWith('time')) return prepared(mergedKeys(where, where.merge, mode), values);
  const text = `SELECT ${KEY_COLUMNS} FROM events WHERE ${where.sql} ORDER BY ${ORDER_BY[mode]} LIMIT $${where.params.length + 1}`;
  return stableIn(where, mode) ? prepared(text, values) : { text, values };
}

function tenantTx(client: pg.PoolClient, scope: ReadScope, state: TxState): TenantTx {
  const check = (where: ScopedWhere) => checkScope(scope, where);
  const reads = tenantReads(client, scope);
  // The transaction starts as the owner (the session role), without the scope settings.
  let reader = false;
  /** Sets the scope and enters the reader role, in one statement (values as parameters). */
  const asReader = async () => {
    if (reader) return;
    await client.query(
      prepared(
        `SELECT set_config('auditlog.tenant', $1, true), set_config('auditlog.user', $2, true),
                set_config('role', $3, true)`,
        [scope.tenantId, scope.userId ?? '', READER_ROLE],
      ),
    );
    reader = true;
  };
  /** Back to the owner role for a match; the next `query` switches to the reader again. */
  const asOwner = async () => {
    if (!reader) return;
    // Cleared first: if the statement fails, the transaction is aborted and nothing else runs.
    reader = false;
    await client.query('SET LOCAL ROLE NONE');
  };
  let cursors = 0;
  /**
   * Declares a cursor (in the current role) over `columns` of the rows `where` matches, in `mode`
   * order; returns the FETCH statement for its next `count` rows.
   */
  const declare = async (prefix: string, columns: string, where: ScopedWhere, mode: SortMode) => {
    const name = `${prefix}_${++cursors}`;
    await client.query(
      `DECLARE ${name} NO SCROLL CURSOR FOR SELECT ${columns} FROM events WHERE ${where.sql} ORDER BY ${ORDER_BY[mode]}`,
      where.params,
    );
    return (count: number) => `FETCH ${Math.max(1, Math.floor(count))} FROM ${name}`;
  };
  return {
    scope,
    async query(statement, params) {
      await asReader();
      return typeof statement === 'string' ? client.query(statement, params) : client.query(statement);
    },
    async keys(where, mode, limit) {
      await asOwner();
      return reads.keys(where, mode, limit); // checks the clause's scope
    },
    async rowsAt(keys) {
      const rows = await reads.rowsAt(keys);
      // The function set the scope and entered the reader role for the rest of the transaction.
      if (keys.length > 0) reader = true;
      return rows;
    },
    async correlate(requestId) {
      const correlation = await reads.correlate(requestId);
      reader = true; // as for rowsAt
      return correlation;
    },
    async keyCursor(where, mode) {
      check(where);
      // The cursor's query is planned and permission-checked at DECLARE, as the owner; FETCH
      // only pulls from it, so it runs in whichever role is current (normally the reader).
      await asOwner();
      const fetchSql = await declare('scoped_keys', KEY_COLUMNS, where, mode);
      return async (count: number) => {
        const { rows } = await client.query<RowKey>(fetchSql(count));
        return rows;
      };
    },
    async copyRows(where, mode, columns) {
      check(where);
      await asReader();
      const { sql, set } = settingsWhere(where);
      // A COPY is planned for its total cost, not for its first rows as a cursor is: for a large
      // tenant that was a scan of every partition and a sort of the whole export (spilling to
      // disk) before the first byte. A clause plan-stable in its order (see
      // `ScopedWhere.planStable`) has an index that yields its rows in order, so sorts are turned
      // off for it and that index is read, as the cursor read it. Any other clause keeps the
      // planner's choice: for a list of rare values, reading the matches and sorting them beats
      // walking the whole tenant in order.
      const noSort = stableIn(where, mode) ? ", set_config('enable_sort', 'off', true)" : '';
      await client.query({ ...set, text: `${set.text}${noSort}` });
      const stream = client.query(
        copyTo(
          `COPY (SELECT ${columns} FROM events WHERE ${sql} ORDER BY ${ORDER_BY[mode]}) TO STDOUT (FORMAT binary)`,
        ),
      );
      state.copying = true;
      const done = () => {
        state.copying = false;
      };
      stream.once('end', done);
      // When a COPY is cut short, its connection is ended (see `withTenantScope`) and pg then
      // emits "Connection terminated" on the stream, which its reader has usually stopped
      // listening to: unheard, that error would be an uncaught exception that ends the process.
      // The reader still sees every error while it reads (an async iterator listens itself).
      stream.on('error', () => {});
      return stream;
    },
  };
}
