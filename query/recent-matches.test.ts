import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../infra/schema/event.js';
import { startTestService, type TestService } from '../test/harness.js';
import { plainWord, recentMatchKeys } from './recent-matches.js';
import { withTenantScope } from './scoped.js';
import { allPages, expectedOrder, QUERY_DAEMONS, seedWithDecoy } from './test-support.js';
import { narrowed } from './time-windows.js';
import { buildWhere } from './where.js';

const HOUR = 3_600_000;

/**
 * A full-text search first tests the rows of the rest of its clause in page order
 * (`recentMatchKeys`) and falls back to the full-text index when they do not fill the page. Both
 * paths, and the switch between them, must give exactly the pages one statement would.
 */
describe('recent-first full-text matching', () => {
  let svc: TestService;
  const now = Date.now();
  const MESSAGES = [
    'user signed in to the portal', // matches "signed in" -Lyon
    'order changed by the user',
    'user signed in from Lyon', // excluded
    'user signed out in time', // no phrase: "signed" and "in" are not adjacent
    'invoice quarantined for review', // the rare term
  ];
  // Ages in hours: most within the last day (the first slice), some older; pairs share an instant.
  const AGES = [0.1, 0.2, 0.2, 0.5, 1, 1, 2, 3, 4, 5, 6, 8, 10, 12, 12, 15, 18, 20, 23, 30, 50, 80, 200, 400];
  const fixture = AGES.map((age, i) => ({
    occurred_at: new Date(now - age * HOUR).toISOString(),
    action: 'VIEW',
    resource_type: 'page',
    resource_id: `p${i}`,
    message: MESSAGES[i % 7 === 6 ? 4 : i % 4]!,
  }));
  type Fixture = (typeof fixture)[number];
  let ids: string[] = [];

  beforeAll(async () => {
    svc = await startTestService([...QUERY_DAEMONS]);
    ids = await seedWithDecoy(svc, 'ft', 'ft-decoy', fixture);
  }, 120_000);
  afterAll(async () => svc?.stop());

  const phrase = (e: Fixture) => e.message.includes('signed in') && !e.message.includes('Lyon');
  const rare = (e: Fixture) => e.message.includes('quarantined');
  const expected = (keep: (e: Fixture) => boolean, sort: 'asc' | 'desc') =>
    expectedOrder(fixture, ids, keep, sort);

  it('returns a prefix of the full match, and all of it once every row is read', async () => {
    const scope = { tenantId: 'ft' };
    const from = new Date(now - 26 * HOUR).toISOString();
    for (const mode of ['time-desc', 'time-asc'] as const) {
      for (const [q, keep] of [
        ['"signed in" -Lyon', phrase],
        ['quarantined', rare],
      ] as const) {
        await withTenantScope(svc.ctx, scope, async (tx) => {
          // The rest of the clause, in the first slice: the last 26 hours, the page's events only.
          const where = narrowed(buildWhere(scope, { resource_type: 'page' }), { from: Date.parse(from) });
          const whole = await tx.keys(buildWhere(scope, { resource_type: 'page', q, from }), mode, 100);
          const inSlice = fixture.filter((e) => Date.parse(e.occurred_at) >= Date.parse(from));
          expect(whole).toHaveLength(inSlice.filter(keep).length);
          for (const rows of [1, 2, 3, 4, 7, 13, inSlice.length, 1000]) {
            for (const limit of [1, 3, 5, 100]) {
              const got = await recentMatchKeys(tx, where, q, mode, limit, rows);
              const label = `${mode} ${q} rows ${rows} limit ${limit}`;
              expect(got, label).toEqual(whole.slice(0, got.length));
              if (rows >= inSlice.length) expect(got, label).toEqual(whole.slice(0, limit));
            }
          }
        });
      }
    }
  });

  for (const sort of ['desc', 'asc'] as const) {
    for (const [name, q, keep] of [
      ['a phrase with an exclusion', '"signed in" -Lyon', phrase],
      // One plain word skips the recent-first read; two words take it.
      ['a rare term', 'quarantined', rare],
      ['two words', 'quarantined review', rare],
    ] as const) {
      it(`pages ${name}, sort=${sort}, exactly as one statement would`, async () => {
        const token = await svc.token('ft', 'auditor');
        const want = expected(keep, sort);
        expect(want.length).toBeGreaterThan(2);
        // asc from 3 days back, so the oldest-first walk is sliced too; desc over everything.
        const bound: Record<string, string> =
          sort === 'asc' ? { from: new Date(now - 72 * HOUR).toISOString() } : {};
        const keepBound = (id: string) =>
          sort === 'desc' || Date.parse(fixture[ids.indexOf(id)]!.occurred_at) >= now - 72 * HOUR;
        for (const limit of [1, 2, 5, 50]) {
          const params = new URLSearchParams({
            ...bound,
            q,
            resource_type: 'page',
            sort,
            limit: String(limit),
          });
          const got = (await allPages(svc, token, params.toString())).map((r: StoredEvent) => r.id);
          expect(got, `limit ${limit}`).toEqual(want.filter(keepBound));
        }
      });
    }
  }
});

describe('plainWord', () => {
  it('is one lexeme of letters and digits; anything the planner may misestimate is not', () => {
    for (const q of ['quarantined', ' Perth ', 'abc123', '2026', 'Été', 'Zürich'])
      expect(plainWord(q), q).toBe(true);
    for (const q of [
      '',
      '"signed in"',
      '-Lyon',
      'signed in',
      'a OR b',
      'foo-bar',
      'foo_bar',
      'j.doe@example.com',
      'quarantined*',
    ]) {
      expect(plainWord(q), q).toBe(false);
    }
  });
});
