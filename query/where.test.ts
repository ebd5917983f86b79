import { describe, expect, it } from 'vitest';
import { buildWhere } from './where.js';

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

  it('puts the scope first, the user of the user role included', () => {
    const where = buildWhere({ tenantId: 'acme', userId: 'u1' }, { severity: 'INFO' });
    expect(where.sql).toBe('tenant_id = $1 AND user_id = $2 AND severity = $3');
    expect(where.params).toEqual(['acme', 'u1', 'INFO']);
  });
});
