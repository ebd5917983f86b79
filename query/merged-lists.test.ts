import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../infra/schema/event.js';
import { startTestService, type TestService } from '../test/harness.js';
import { withTenantScope } from './scoped.js';
import { allPages, expectedOrder, QUERY_DAEMONS, seedWithDecoy } from './test-support.js';
import { buildWhere } from './where.js';

const HOUR = 3_600_000;

/**
 * A list of values of one indexed column, alone (`severity=WARNING,ERROR`), is matched as a merge of
 * one ordered index scan per value (`ScopedWhere.merge`). Its pages must be exactly those of one
 * statement over the whole list: in both orders, across instants that several values share, and
 * across the time slices of a walk.
 */
describe('lists of values, merged', () => {
  let svc: TestService;
  const now = Date.now();
  const SEVERITIES = ['INFO', 'WARNING', 'ERROR', 'CRITICAL', 'WARNING', 'ERROR', 'INFO'];
  // No VIEW or EXPORT: the reads' own self-audit events have those actions.
  const ACTIONS = ['CREATE', 'UPDATE', 'DELETE', 'LOGIN', 'SHARE'];
  // Ages in hours: most within the last day (the first slice), some in the week, some older;
  // runs of events share an instant, so ties between values are broken by sequence.
  const AGES = [
    0.1, 0.1, 0.1, 0.1, 0.5, 1, 1, 1, 2, 3, 5, 5, 8, 12, 12, 20, 23, 30, 30, 50, 80, 80, 200, 400,
  ];
  const fixture = AGES.map((age, i) => ({
    occurred_at: new Date(now - age * HOUR).toISOString(),
    action: ACTIONS[i % ACTIONS.length]!,
    severity: SEVERITIES[i % SEVERITIES.length]!,
    resource_type: 'doc',
    resource_id: `d${i}`,
    user_id: `u${i % 2}`,
  }));
  type Fixture = (typeof fixture)[number];
  let ids: string[] = [];

  beforeAll(async () => {
    svc = await startTestService([...QUERY_DAEMONS]);
    ids = await seedWithDecoy(svc, 'lists', 'lists-decoy', fixture);
  }, 120_000);
  afterAll(async () => svc?.stop());

  const cases: [string, Record<string, string>, (e: Fixture) => boolean][] = [
    ['two severities', { severity: 'WARNING,ERROR' }, (e) => ['WARNING', 'ERROR'].includes(e.severity)],
    [
      'three actions',
      { action: 'DELETE,CREATE,SHARE' },
      (e) => ['DELETE', 'CREATE', 'SHARE'].includes(e.action),
    ],
    ['a value repeated', { severity: 'ERROR,ERROR' }, (e) => e.severity === 'ERROR'],
    ['a value no event has', { action: 'ARCHIVE,LOGIN' }, (e) => e.action === 'LOGIN'],
  ];

  for (const sort of ['desc', 'asc'] as const) {
    for (const [name, filter, keep] of cases) {
      it(`pages ${name}, sort=${sort}, exactly as one statement would`, async () => {
        const token = await svc.token('lists', 'auditor');
        // asc from 10 days back, so the oldest-first walk is sliced too; desc over everything.
        const bound: Record<string, string> =
          sort === 'asc' ? { from: new Date(now - 240 * HOUR).toISOString() } : {};
        const want = expectedOrder(fixture, ids, keep, sort).filter(
          (id) => sort === 'desc' || Date.parse(fixture[ids.indexOf(id)]!.occurred_at) >= now - 240 * HOUR,
        );
        expect(want.length).toBeGreaterThan(2);
        for (const limit of [1, 2, 3, 50]) {
          const params = new URLSearchParams({ ...bound, ...filter, sort, limit: String(limit) });
          const got = (await allPages(svc, token, params.toString())).map((r: StoredEvent) => r.id);
          expect(got, `limit ${limit}`).toEqual(want);
        }
      });
    }
  }

  it('keeps a user to its own events (a list with the user scope is not merged)', async () => {
    const token = await svc.token('lists', 'user', 'u1');
    const got = (await allPages(svc, token, 'severity=WARNING,ERROR&limit=2')).map((r: StoredEvent) => r.id);
    const want = expectedOrder(
      fixture,
      ids,
      (e) => e.user_id === 'u1' && ['WARNING', 'ERROR'].includes(e.severity),
      'desc',
    );
    expect(want.length).toBeGreaterThan(2);
    expect(got).toEqual(want);
  });

  it('matches the same keys as one statement, for every limit, in both orders', async () => {
    const scope = { tenantId: 'lists' };
    await withTenantScope(svc.ctx, scope, async (tx) => {
      for (const mode of ['time-desc', 'time-asc'] as const) {
        const merged = buildWhere(scope, { severity: 'CRITICAL,INFO,WARNING' });
        expect(merged.merge).toBeDefined();
        // The same clause without its merge: one statement over the whole list.
        const plain = { ...merged, merge: undefined };
        for (const limit of [1, 2, 5, 7, 100]) {
          expect(await tx.keys(merged, mode, limit), `${mode} ${limit}`).toEqual(
            await tx.keys(plain, mode, limit),
          );
        }
      }
    });
  });
});
