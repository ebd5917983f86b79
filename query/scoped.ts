import type pg from 'pg';
import type { ReadScope } from '../infra/auth/access.js';
import type { Context } from '../infra/context.js';
import type { SortMode } from './cursor.js';
import { ORDER_BY } from './order.js';
import type { ScopedWhere } from './where.js';

/** The database role reads run as (migration 002); row-level security applies to it. */
export const READER_ROLE = 'auditlog_reader';

/** A row's position: enough to fetch it, nothing about its content. */
export interface RowKey {
  occurred_at: string;
  seq: string;
}

const KEY_COLUMNS = `to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred_at,
  seq::text AS seq`;

/** What a read may do inside {@link withTenantScope}. */
export interface TenantTx {
  readonly scope: ReadScope;
  /**
   * Runs a statement as `auditlog_reader`. Row-level security shows it only the scope's tenant
   * (and, for the `user` role, the user's) rows of `events` and `event_ids`, even if the SQL
   * forgets the condition. Every statement that returns event data goes through here.
   */
  query<R extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
  /**
   * Keys of the rows matching `where`, in `mode` order, at most `limit`. See "Why two phases".
   * The clause must come from `buildWhere` for this very scope, or this throws.
   */
  keys(where: ScopedWhere, mode: SortMode, limit: number): Promise<RowKey[]>;
  /**
   * Opens a server-side cursor over the keys of every row matching `where` (for exports) and
   * returns a function fetching the next `n` keys; an empty array means the end.
   */
  keyCursor(where: ScopedWhere, mode: SortMode): Promise<(n: number) => Promise<RowKey[]>>;
}

/**
 * Runs `fn` in a read-only transaction scoped to one tenant: the one helper every read path
 * (get, search, correlation, export) uses. Inside it:
 * - the session runs as `auditlog_reader` (`SET LOCAL ROLE`), which may only SELECT, and only
 *   through the row-level-security policies of migration 002;
 * - `auditlog.tenant` / `auditlog.user` are set transaction-locally, so the policies see the scope.
 * Both end with the transaction, so a pooled connection never carries them into a writer's work.
 * REPEATABLE READ gives an export one snapshot across all its statements.
 *
 * Why two phases (keys, then rows): PostgreSQL evaluates a query's own conditions after the
 * policy's unless their functions are LEAKPROOF, and the full-text (`@@`), array (`@>`) and inet
 * (`<<=`) operators are not (only a superuser can mark them). Under RLS they therefore cannot use
 * the GIN and inet indexes, and a rare-term search would scan the whole tenant. So the matching
 * (`keys`, `keyCursor`) runs as the owner role, on a WHERE clause that `buildWhere` built for this
 * scope (checked here), and returns only (occurred_at, seq) positions; the rows themselves are
 * then read with `query`, under RLS. A bug that dropped the tenant from the match could produce
 * another tenant's positions, but never its data: the row read filters them out.
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
  let broken: Error | undefined;
  try {
    await client.query(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL ROLE ${READER_ROLE}`);
    await client.query(
      `SELECT set_config('auditlog.tenant', $1, true), set_config('auditlog.user', $2, true)`,
      [scope.tenantId, scope.userId ?? ''],
    );
    const result = await fn(tenantTx(client, scope));
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((rollbackErr: Error) => {
      broken = rollbackErr; // the connection is unusable: the pool must discard it
    });
    throw err;
  } finally {
    client.release(broken);
  }
}

function tenantTx(client: pg.PoolClient, scope: ReadScope): TenantTx {
  const check = (where: ScopedWhere) => {
    if (
      where.scope.tenantId !== scope.tenantId ||
      where.scope.userId !== scope.userId ||
      where.params[0] !== scope.tenantId
    ) {
      throw new Error('WHERE clause was built for a different scope');
    }
  };
  /** Runs `fn` as the owner role, then switches back to the reader whatever happens. */
  const asOwner = async <T>(fn: () => Promise<T>): Promise<T> => {
    await client.query('SET LOCAL ROLE NONE');
    try {
      return await fn();
    } finally {
      await client.query(`SET LOCAL ROLE ${READER_ROLE}`);
    }
  };
  let cursors = 0;
  return {
    scope,
    query: (sql, params) => client.query(sql, params),
    async keys(where, mode, limit) {
      check(where);
      const n = where.params.length;
      const { rows } = await asOwner(() =>
        client.query<RowKey>(
          `SELECT ${KEY_COLUMNS} FROM events WHERE ${where.sql} ORDER BY ${ORDER_BY[mode]} LIMIT $${n + 1}`,
          [...where.params, limit],
        ),
      );
      return rows;
    },
    async keyCursor(where, mode) {
      check(where);
      const name = `scoped_keys_${++cursors}`;
      // The cursor's query is planned and permission-checked at DECLARE, as the owner; FETCH
      // only pulls from it, so it can run in the reader role.
      await asOwner(() =>
        client.query(
          `DECLARE ${name} NO SCROLL CURSOR FOR SELECT ${KEY_COLUMNS} FROM events WHERE ${where.sql} ORDER BY ${ORDER_BY[mode]}`,
          where.params,
        ),
      );
      return async (count: number) => {
        const { rows } = await client.query<RowKey>(`FETCH ${Math.max(1, Math.floor(count))} FROM ${name}`);
        return rows;
      };
    },
  };
}
