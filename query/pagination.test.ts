import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http, startTestService, type TestService } from '../test/harness.js';
import { createTenants, ingest, QUERY_DAEMONS, waitStored } from './test-support.js';

/**
 * Keyset pagination while events keep arriving: newer ones, and backfills landing between and
 * behind the pages already read. Every event that existed before the first page must come back
 * exactly once, in strict order, and nothing may come back twice.
 */
const T0 = Date.parse('2026-04-01T00:00:00Z');
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();
const N = 240;

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService([...QUERY_DAEMONS]);
  await createTenants(svc, ['pager-desc', 'pager-asc']);
});
afterAll(async () => svc?.stop());

interface Row {
  id: string;
  sequence: string;
  occurred_at: string;
}

/** Reads every page of `query` while `between` runs after each page; returns the rows in order. */
async function pageWhile(
  token: string,
  query: Record<string, string>,
  between: (page: number) => Promise<void>,
) {
  const rows: Row[] = [];
  let cursor: string | null = null;
  let page = 0;
  do {
    const qs = new URLSearchParams({ ...query, ...(cursor ? { cursor } : {}) });
    const res = await http(svc.url, 'GET', `/api/v1/logs?${qs}`, { token });
    expect(res.status, res.text).toBe(200);
    rows.push(...res.body.data);
    cursor = res.body.next_cursor;
    await between(page++);
  } while (cursor);
  return rows;
}

/** Compares rows by (occurred_at, sequence): -1 when a < b, 0 when equal, 1 when a > b. */
function compare(a: Row, b: Row): number {
  if (a.occurred_at !== b.occurred_at) return a.occurred_at < b.occurred_at ? -1 : 1;
  return Math.sign(Number(a.sequence) - Number(b.sequence));
}

describe.each([
  // compare(previous, next): 1 when previous sorts after next (newest first), -1 for oldest first.
  ['desc', 1],
  ['asc', -1],
] as const)('GET /logs sort=%s under concurrent inserts', (sort, direction) => {
  it('returns every pre-existing event exactly once, in strict order', async () => {
    const tenant = `pager-${sort}`;
    const token = await svc.token(tenant, 'auditor', 'pager-auditor');
    const base = 0;
    // Pairs of events share an occurred_at, so the seq tiebreaker is exercised at page borders.
    const original = Array.from({ length: N }, (_, i) => ({
      id: randomUUID(),
      action: 'CREATE',
      resource_type: 'doc',
      resource_id: `d-${i}`,
      occurred_at: at(base + Math.floor(i / 2)),
    }));
    await ingest(svc, tenant, original);
    await waitStored(svc, tenant, N);

    const inserted: string[] = [];
    const sent: Promise<unknown>[] = [];
    const rows = await pageWhile(
      token,
      { from: at(base - 1000), to: at(base + 5000), limit: '17', sort },
      async (page) => {
        // Not awaited: these land while later pages are read. Newer events, backfills in the
        // middle of the range, and events exactly at a time that was already paged.
        const extra = [
          { occurred_at: at(base + 200 + page) },
          { occurred_at: at(base + 60) },
          { occurred_at: at(base + (page % 3) * 5) },
          { occurred_at: at(base - 500) },
        ].map((e) => ({ ...e, id: randomUUID(), action: 'UPDATE', resource_type: 'doc' }));
        inserted.push(...extra.map((e) => e.id));
        sent.push(ingest(svc, tenant, extra));
        // Let the persist stage make progress between some pages.
        if (page % 2 === 0) await new Promise((r) => setTimeout(r, 30));
      },
    );
    await Promise.all(sent);

    const seen = rows.map((r) => r.id);
    expect(new Set(seen).size).toBe(seen.length);
    const originals = new Set<string>(original.map((e) => e.id));
    expect(seen.filter((id) => originals.has(id)).sort()).toEqual([...originals].sort());
    const allowed = new Set([...originals, ...inserted]);
    expect(seen.filter((id) => !allowed.has(id))).toEqual([]);
    for (let i = 1; i < rows.length; i++) {
      expect([i, compare(rows[i - 1]!, rows[i]!)]).toEqual([i, direction]);
    }
    // Afterwards everything is there: the concurrent events were real inserts, not lost.
    await waitStored(svc, tenant, N + inserted.length);
  });
});
