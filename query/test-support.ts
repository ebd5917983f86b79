import { expect } from 'vitest';
import type { StoredEvent } from '../infra/schema/event.js';
import { eventually, http, type TestService } from '../test/harness.js';

/** Test helpers shared by the query tests: tenants, ingest through the real pipeline, waiting. */

/** The daemons a query test needs: the whole write pipeline (self-audit goes through it) and query. */
export const QUERY_DAEMONS = ['ingest', 'mask', 'encrypt', 'persist', 'query'] as const;

export async function createTenants(svc: TestService, ids: string[]): Promise<void> {
  for (const id of ids) await svc.createTenant(id);
}

/** Posts events through the bulk API (in requests of 1,000) and returns their ids in order. */
export async function ingest(svc: TestService, tenant: string, events: object[]): Promise<string[]> {
  const token = await svc.token(tenant, 'admin', 'writer');
  const ids: string[] = [];
  for (let i = 0; i < events.length; i += 1000) {
    const res = await http(svc.url, 'POST', '/api/v1/logs/bulk', {
      token,
      body: { events: events.slice(i, i + 1000) },
    });
    expect(res.status).toBe(202);
    ids.push(...res.body.ids);
  }
  return ids;
}

/**
 * Creates `tenant` and `decoy`, ingests `events` into both and waits until they are stored; returns
 * the ids in `tenant`. The decoy holds the same content, so a read that leaked across tenants would
 * return the wrong ids.
 */
export async function seedWithDecoy(
  svc: TestService,
  tenant: string,
  decoy: string,
  events: object[],
): Promise<string[]> {
  await createTenants(svc, [tenant, decoy]);
  const ids = await ingest(svc, tenant, events);
  await ingest(svc, decoy, events);
  await waitStored(svc, tenant, events.length);
  await waitStored(svc, decoy, events.length);
  return ids;
}

/** Waits until `count` events of `tenant` other than self-audit events are stored. */
export async function waitStored(svc: TestService, tenant: string, count: number): Promise<void> {
  await eventually(async () => {
    const { rows } = await svc.ctx.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM events WHERE tenant_id = $1 AND resource_type <> 'audit_log'`,
      [tenant],
    );
    return rows[0]?.n === count ? true : undefined;
  }, 60_000);
}

/** Every page of a search, following next_cursor; fails on any non-200. */
export async function allPages(svc: TestService, token: string, query: string): Promise<StoredEvent[]> {
  const rows: StoredEvent[] = [];
  let cursor: string | null = null;
  do {
    const sep = query ? '&' : '';
    const res: { status: number; body: { data: StoredEvent[]; next_cursor: string | null }; text: string } =
      await http(
        svc.url,
        'GET',
        `/api/v1/logs?${query}${cursor ? `${sep}cursor=${encodeURIComponent(cursor)}` : ''}`,
        { token },
      );
    expect(res.status, res.text).toBe(200);
    rows.push(...res.body.data);
    cursor = res.body.next_cursor;
  } while (cursor);
  return rows;
}

/**
 * The ids of the `fixture` events (ingested in order, with `ids`) that `keep` selects, in a page's
 * time order: by `occurred_at`, ties by submission order (their sequence), newest first for desc.
 */
export function expectedOrder<E extends { occurred_at: string }>(
  fixture: E[],
  ids: string[],
  keep: (e: E) => boolean,
  sort: 'asc' | 'desc',
): string[] {
  const rows = fixture.map((e, i) => ({ e, i, id: ids[i]! })).filter(({ e }) => keep(e));
  rows.sort((a, b) => Date.parse(a.e.occurred_at) - Date.parse(b.e.occurred_at) || a.i - b.i);
  if (sort === 'desc') rows.reverse();
  return rows.map((r) => r.id);
}
