import type { ReadScope } from '../infra/auth/access.js';
import type { Cursor, SortMode } from './cursor.js';
import type { Filters } from './filters.js';
import { isHostAddress, parseIpFilter } from './ip.js';

/** Filters after resolution: metadata filters become blind-index tokens (see `metadataTokens`). */
export type ResolvedFilters = Filters & {
  /** Blind-index tokens that must all be present in `meta_idx`. */
  metaTokens?: string[];
};

/** A WHERE clause that is known to start with the scope's tenant (and user) condition. */
export interface ScopedWhere {
  sql: string;
  params: unknown[];
  /** The scope the clause was built for; `withTenantScope` checks it against its own. */
  scope: ReadScope;
  /**
   * True when every condition uses LEAKPROOF operators only (text, timestamptz and bigint
   * comparisons), so PostgreSQL still uses the indexes under row-level security and the rows can
   * be matched and read in one phase, as the reader (see "Why two phases" at `withTenantScope`).
   * Full-text (`@@`) and metadata (`@>`) conditions are not.
   */
  leakproof: boolean;
  /**
   * The order in which the clause is plan-stable, or false. `'time'` when its conditions besides
   * time, cursor and tenant are equalities on exactly the columns before `occurred_at` in one of
   * the page indexes of migrations 001 and 002 (none, the user, one action, one severity, a
   * resource type and id, or one ip address); `'seq'` when they are one equality on `request_id`,
   * the column before `seq` in the (tenant, request_id, seq) index. In that order such a page is
   * that index's ordered scan up to the limit whatever the values, so its matching statement may
   * be prepared and run from a cached generic plan (see `TenantTx.keys`). Any other clause's best
   * plan depends on its values. (`sortModeOf` gives a request_id search the sequence order and
   * every other one a time order.)
   */
  planStable: false | 'time' | 'seq';
  /**
   * Set when the clause's only condition besides time, cursor and tenant is one list of at most
   * `MERGE_MAX_VALUES` values of a column that alone leads a page index (`severity = ANY($n::text[])`,
   * or `action`). In a time order its page is then a merge of one ordered index scan per value,
   * each up to the limit, instead of a read and sort of every match (see `TenantTx.keys`). `list`
   * is the condition's text in `sql`; `count` the number of distinct values in parameter `param`.
   */
  merge?: { list: string; column: string; param: number; count: number };
}

/** Whether `where` is plan-stable in `mode` (see `ScopedWhere.planStable`). */
export function stableIn(where: ScopedWhere, mode: SortMode): boolean {
  return where.planStable !== false && mode.startsWith(where.planStable);
}

/**
 * Most values of a list merged one branch per value (see `ScopedWhere.merge`). Each branch is
 * planned over the slice's partitions until the statement's generic plan is kept, so a long list
 * (actions are free-form) stays one `= ANY` statement.
 */
export const MERGE_MAX_VALUES = 8;

/** Column sets that are exactly an index's columns before `occurred_at` (migrations 001, 002). */
const INDEX_PREFIXES = ['', 'user_id', 'action', 'severity', 'resource_id,resource_type', 'ip_address'];

/**
 * Builds a parameterized WHERE clause. The tenant (and, for the `user` role, the user) condition
 * comes first and is unconditional: this function is the single place every query path gets its
 * scope from. Values only ever travel as parameters.
 */
export function buildWhere(scope: ReadScope, filters: ResolvedFilters, cursor?: Cursor): ScopedWhere {
  const params: unknown[] = [scope.tenantId];
  const clauses = ['tenant_id = $1'];
  let leakproof = true;
  /** Conditions besides the tenant, time and cursor bounds. */
  let conditions = 0;
  let list: ScopedWhere['merge'];
  /** Columns compared with one value by `=`; undefined once any other condition is added. */
  let equal: Set<string> | undefined = new Set();
  /** A time or sequence bound: it changes which rows and partitions are read, not which index serves. */
  const bound = (sql: (p: string) => string, value: unknown) => {
    params.push(value);
    clauses.push(sql(`$${params.length}`));
  };
  const add = (sql: (p: string) => string, value: unknown, isLeakproof = true, equalTo?: string) => {
    bound(sql, value);
    conditions++;
    leakproof &&= isLeakproof;
    if (equalTo === undefined) equal = undefined;
    else equal?.add(equalTo);
  };
  if (scope.userId !== undefined) add((p) => `user_id = ${p}`, scope.userId, true, 'user_id');
  if (filters.user_id !== undefined) add((p) => `user_id = ${p}`, filters.user_id, true, 'user_id');
  if (filters.from !== undefined) bound((p) => `occurred_at >= ${p}::timestamptz`, filters.from);
  if (filters.to !== undefined) bound((p) => `occurred_at < ${p}::timestamptz`, filters.to);
  // One value is compared with `=`, not `= ANY(array)`: with an array the planner does not read
  // the (tenant, column, occurred_at) index in time order, so it read every match and sorted them
  // (all 5,869 CRITICAL events of a 600k-event tenant for a 50-row page: 23 ms).
  const oneOf = (column: string, listed: string) => {
    const values = [...new Set(listed.split(','))];
    if (values.length === 1) add((p) => `${column} = ${p}`, values[0], true, column);
    else {
      add((p) => `${column} = ANY(${p}::text[])`, values);
      // The condition just added, as it stands in `sql`.
      list = { list: clauses[clauses.length - 1]!, column, param: params.length, count: values.length };
    }
  };
  if (filters.action !== undefined) oneOf('action', filters.action);
  if (filters.resource_type !== undefined)
    add((p) => `resource_type = ${p}`, filters.resource_type, true, 'resource_type');
  if (filters.resource_id !== undefined)
    add((p) => `resource_id = ${p}`, filters.resource_id, true, 'resource_id');
  if (filters.severity !== undefined) oneOf('severity', filters.severity);
  if (filters.request_id !== undefined)
    add((p) => `request_id = ${p}`, filters.request_id, true, 'request_id');
  // websearch_to_tsquery never raises on user input (unbalanced quotes, stray operators), and
  // 'simple' matches how persist built tsv: lowercased words, no stemming, no stop words.
  if (filters.q !== undefined) add((p) => `tsv @@ websearch_to_tsquery('simple', ${p})`, filters.q, false);
  if (filters.ip_address !== undefined) {
    const ip = parseIpFilter(filters.ip_address);
    // One address is compared with `=`: inet equality is LEAKPROOF and a parameter can bound the
    // (tenant, ip, occurred_at) index, so the page is that index's ordered scan, read in one phase.
    // A range is its first and last address, compared with `>=` and `<=` (LEAKPROOF too, so an
    // export of it is read in one phase): the same rows as `<<=`, which is not LEAKPROOF, because
    // stored addresses are host addresses (the event schema refuses a prefix) and inet orders
    // addresses of one family by their bits, and the families apart.
    if (isHostAddress(ip)) add((p) => `ip_address = ${p}::inet`, ip, true, 'ip_address');
    else {
      const range = (p: string) =>
        `ip_address >= host(network(${p}::inet))::inet AND ip_address <= host(broadcast(${p}::inet))::inet`;
      add(range, ip);
    }
  }
  if (filters.metaTokens !== undefined && filters.metaTokens.length > 0) {
    add((p) => `meta_idx @> ${p}::text[]`, filters.metaTokens, false);
  }
  if (cursor) {
    const op = cursor.mode.endsWith('desc') ? '<' : '>';
    if (cursor.mode.startsWith('seq')) bound((p) => `seq ${op} ${p}::bigint`, cursor.seq);
    else {
      params.push(cursor.occurredAt, cursor.seq);
      clauses.push(
        `(occurred_at, seq) ${op} ($${params.length - 1}::timestamptz, $${params.length}::bigint)`,
      );
    }
  }
  const columns = equal === undefined ? undefined : [...equal].sort().join(',');
  const planStable =
    columns === undefined
      ? false
      : INDEX_PREFIXES.includes(columns)
        ? 'time'
        : columns === 'request_id'
          ? 'seq'
          : false;
  const where: ScopedWhere = { sql: clauses.join(' AND '), params, scope, leakproof, planStable };
  if (list && conditions === 1 && list.count <= MERGE_MAX_VALUES && INDEX_PREFIXES.includes(list.column)) {
    where.merge = list;
  }
  return where;
}
