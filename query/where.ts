import type { ReadScope } from '../infra/auth/access.js';
import type { Cursor } from './cursor.js';
import type { Filters } from './filters.js';

/**
 * Builds a parameterized WHERE clause. The tenant (and, for the `user` role, the user) condition
 * comes first and is unconditional: this function is the single place every query path gets its
 * scope from. Values only ever travel as parameters.
 */
export function buildWhere(
  scope: ReadScope,
  filters: Filters,
  cursor?: Cursor,
  direction: 'asc' | 'desc' = 'desc',
) {
  const params: unknown[] = [scope.tenantId];
  const clauses = ['tenant_id = $1'];
  const add = (sql: (p: string) => string, value: unknown) => {
    params.push(value);
    clauses.push(sql(`$${params.length}`));
  };
  if (scope.userId !== undefined) add((p) => `user_id = ${p}`, scope.userId);
  if (filters.user_id !== undefined) add((p) => `user_id = ${p}`, filters.user_id);
  if (filters.from !== undefined) add((p) => `occurred_at >= ${p}::timestamptz`, filters.from);
  if (filters.to !== undefined) add((p) => `occurred_at < ${p}::timestamptz`, filters.to);
  if (filters.action !== undefined) add((p) => `action = ANY(${p}::text[])`, filters.action.split(','));
  if (filters.resource_type !== undefined) add((p) => `resource_type = ${p}`, filters.resource_type);
  if (filters.resource_id !== undefined) add((p) => `resource_id = ${p}`, filters.resource_id);
  if (filters.severity !== undefined) add((p) => `severity = ANY(${p}::text[])`, filters.severity.split(','));
  if (filters.request_id !== undefined) add((p) => `request_id = ${p}`, filters.request_id);
  if (cursor) {
    params.push(cursor.occurredAt, cursor.seq);
    const op = direction === 'desc' ? '<' : '>';
    clauses.push(`(occurred_at, seq) ${op} ($${params.length - 1}::timestamptz, $${params.length}::bigint)`);
  }
  return { sql: clauses.join(' AND '), params };
}
