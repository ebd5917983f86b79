import type { ReadScope } from '../infra/auth/access.js';
import type { StoredEvent } from '../infra/schema/event.js';
import type { StreamFilters } from './protocol.js';

/** Decides whether one decoded event goes to one subscriber. */
export type Matcher = (event: StoredEvent) => boolean;

/**
 * Compiles a subscriber's scope and filters into one predicate, with the same meaning as
 * `query/where.ts` gives them in SQL (comma lists are "any of", everything else is equality, all
 * conditions are ANDed). The scope checks come first and are unconditional: the feed reads whole
 * tenants, so this predicate is what keeps a `user` to its own events, and the tenant check is a
 * second guard behind the feed's per-tenant routing.
 */
export function compileMatcher(scope: ReadScope, filters: StreamFilters): Matcher {
  const checks: Matcher[] = [(e) => e.tenant_id === scope.tenantId];
  const userId = scope.userId;
  if (userId !== undefined) checks.push((e) => e.user_id === userId);
  const equal = (key: 'user_id' | 'resource_type' | 'resource_id' | 'request_id') => {
    const want = filters[key];
    if (want !== undefined) checks.push((e) => e[key] === want);
  };
  equal('user_id');
  equal('resource_type');
  equal('resource_id');
  equal('request_id');
  if (filters.action !== undefined) {
    const actions = new Set(filters.action.split(','));
    checks.push((e) => actions.has(e.action));
  }
  if (filters.severity !== undefined) {
    const severities = new Set(filters.severity.split(','));
    checks.push((e) => severities.has(e.severity));
  }
  return (e) => {
    for (const check of checks) if (!check(e)) return false;
    return true;
  };
}
