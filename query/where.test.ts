import { describe, expect, it } from 'vitest';
import { buildWhere, MERGE_MAX_VALUES, stableIn } from './where.js';

describe('buildWhere', () => {
  const scope = { tenantId: 'acme' };

  it('compares one action or severity with =, so the time-ordered index can serve the page', () => {
    const where = buildWhere(scope, { action: 'DELETE', severity: 'CRITICAL' });
    expect(where.sql).toBe('tenant_id = $1 AND action = $2 AND severity = $3');
    expect(where.params).toEqual(['acme', 'DELETE', 'CRITICAL']);
    expect(where.leakproof).toBe(true);
  });

  it('matches any of several values with = ANY of a text array', () => {
    const where = buildWhere(scope, { action: 'CREATE,UPDATE', severity: 'WARNING,ERROR' });
    expect(where.sql).toBe('tenant_id = $1 AND action = ANY($2::text[]) AND severity = ANY($3::text[])');
    expect(where.params).toEqual(['acme', ['CREATE', 'UPDATE'], ['WARNING', 'ERROR']]);
    expect(where.leakproof).toBe(true);
  });

  it('compares one ip address with =, a range with its first and last address (all LEAKPROOF)', () => {
    for (const ip of ['10.0.0.1', '10.0.0.1/32', '2001:db8::1', '2001:db8::1/128']) {
      const where = buildWhere(scope, { ip_address: ip });
      expect(where.sql).toBe('tenant_id = $1 AND ip_address = $2::inet');
      expect(where.params).toEqual(['acme', ip]);
      expect(where.leakproof).toBe(true);
    }
    for (const ip of ['10.0.0.0/24', '10.0.0.1/31', '2001:db8::/64', '0.0.0.0/0']) {
      const where = buildWhere(scope, { ip_address: ip });
      expect(where.sql).toBe(
        'tenant_id = $1 AND ip_address >= host(network($2::inet))::inet AND ip_address <= host(broadcast($2::inet))::inet',
      );
      expect(where.params).toEqual(['acme', ip]);
      expect(where.leakproof).toBe(true);
    }
  });

  it('puts the scope first, the user of the user role included', () => {
    const where = buildWhere({ tenantId: 'acme', userId: 'u1' }, { severity: 'INFO' });
    expect(where.sql).toBe('tenant_id = $1 AND user_id = $2 AND severity = $3');
    expect(where.params).toEqual(['acme', 'u1', 'INFO']);
  });

  it('marks a list of values of one indexed column, alone, for a merge of one scan per value', () => {
    const cursor = { occurredAt: '2026-11-27T10:00:00.000000Z', seq: '9', mode: 'time-desc' as const };
    const from = '2026-11-01T00:00:00Z';
    const severity = buildWhere(scope, { severity: 'WARNING,ERROR', from }, cursor);
    expect(severity.sql).toContain('severity = ANY($3::text[])');
    expect(severity.merge).toEqual({
      list: 'severity = ANY($3::text[])',
      column: 'severity',
      param: 3,
      count: 2,
    });
    expect(buildWhere(scope, { action: 'CREATE,UPDATE,DELETE' }).merge).toEqual({
      list: 'action = ANY($2::text[])',
      column: 'action',
      param: 2,
      count: 3,
    });
    // At most MERGE_MAX_VALUES values; repeated values count once; a list of one is an equality.
    const actions = (n: number) => Array.from({ length: n }, (_, i) => `A${i}`).join(',');
    expect(buildWhere(scope, { action: actions(MERGE_MAX_VALUES) }).merge?.count).toBe(MERGE_MAX_VALUES);
    expect(buildWhere(scope, { action: actions(MERGE_MAX_VALUES + 1) }).merge).toBeUndefined();
    expect(buildWhere(scope, { action: 'LOGIN,LOGIN,VIEW' }).merge?.count).toBe(2);
    expect(buildWhere(scope, { action: 'LOGIN,LOGIN' }).sql).toBe('tenant_id = $1 AND action = $2');
    // Any other condition (the user scope included): one statement, planned for its values.
    for (const [s, filters] of [
      [scope, { severity: 'WARNING,ERROR', action: 'LOGIN' }],
      [scope, { severity: 'WARNING,ERROR', action: 'LOGIN,VIEW' }],
      [scope, { severity: 'WARNING,ERROR', q: 'refund' }],
      [scope, { severity: 'WARNING,ERROR', user_id: 'u1' }],
      [{ tenantId: 'acme', userId: 'u1' }, { severity: 'WARNING,ERROR' }],
      [scope, { severity: 'ERROR' }],
    ] as const) {
      expect(buildWhere(s, filters).merge, JSON.stringify(filters)).toBeUndefined();
    }
  });

  it("is plan-stable only for equalities that are exactly an index prefix, with any time bounds, in that index's order", () => {
    const cursor = { occurredAt: '2026-11-27T10:00:00.000000Z', seq: '9', mode: 'time-desc' as const };
    const stable = (filters: Parameters<typeof buildWhere>[1], s: Parameters<typeof buildWhere>[0] = scope) =>
      buildWhere(s, filters, cursor).planStable;
    const from = '2026-11-01T00:00:00Z';
    expect(stable({})).toBe('time');
    expect(stable({ from, to: '2026-11-30T00:00:00Z' })).toBe('time');
    expect(stable({ user_id: 'u1', from })).toBe('time');
    expect(stable({}, { tenantId: 'acme', userId: 'u1' })).toBe('time');
    expect(stable({ action: 'LOGIN' })).toBe('time');
    expect(stable({ severity: 'ERROR' })).toBe('time');
    expect(stable({ resource_type: 'order', resource_id: 'o-1' })).toBe('time');
    expect(stable({ ip_address: '10.0.0.1' })).toBe('time');
    expect(stable({ ip_address: '2001:db8::1/128', from })).toBe('time');
    // One request: the (tenant, request_id, seq) index, in sequence order.
    const seqCursor = { occurredAt: '2026-11-27T10:00:00.000000Z', seq: '9', mode: 'seq-asc' as const };
    expect(buildWhere(scope, { request_id: 'r-1' }).planStable).toBe('seq');
    expect(buildWhere(scope, { request_id: 'r-1', from }, seqCursor).planStable).toBe('seq');
    expect(stableIn(buildWhere(scope, { request_id: 'r-1' }), 'seq-desc')).toBe(true);
    expect(stableIn(buildWhere(scope, { request_id: 'r-1' }), 'time-desc')).toBe(false);
    expect(stableIn(buildWhere(scope, { action: 'LOGIN' }), 'time-asc')).toBe(true);
    expect(stableIn(buildWhere(scope, { action: 'LOGIN' }), 'seq-asc')).toBe(false);
    // Not an index prefix, or not equality on one value: planned for its values.
    expect(stable({ request_id: 'r-1', action: 'LOGIN' })).toBe(false);
    expect(stable({ request_id: 'r-1' }, { tenantId: 'acme', userId: 'u1' })).toBe(false);
    expect(stable({ resource_type: 'order' })).toBe(false);
    expect(stable({ resource_id: 'o-1' })).toBe(false);
    expect(stable({ action: 'LOGIN', severity: 'ERROR' })).toBe(false);
    expect(stable({ action: 'LOGIN' }, { tenantId: 'acme', userId: 'u1' })).toBe(false);
    expect(stable({ action: 'CREATE,UPDATE' })).toBe(false);
    expect(stable({ q: 'refund' })).toBe(false);
    expect(stable({ ip_address: '10.0.0.0/24' })).toBe(false);
    expect(stable({ ip_address: '10.0.0.1', action: 'LOGIN' })).toBe(false);
    expect(stable({ metaTokens: ['t'] })).toBe(false);
  });
});
