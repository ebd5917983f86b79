import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, http, startTestService, type TestService } from './harness.js';

/**
 * The issue's "done when" script, as a test: two tenants, 1,000 events posted in bulk to one,
 * read back masked and decrypted within seconds, invisible to the other tenant's tokens.
 */
describe('pipeline end to end (embedded transport, real PostgreSQL)', () => {
  let svc: TestService;

  beforeAll(async () => {
    svc = await startTestService();
    for (const id of ['acme', 'globex']) await svc.createTenant(id);
  });
  afterAll(async () => svc?.stop());

  it('stores 1,000 bulk events once, masked, encrypted at rest, readable only by their tenant', async () => {
    const writer = await svc.token('acme', 'admin', 'app');
    const events = Array.from({ length: 1000 }, (_, i) => ({
      user_id: `u-${i % 10}`,
      action: i % 2 ? 'UPDATE' : 'CREATE',
      resource_type: 'order',
      resource_id: `o-${i}`,
      occurred_at: new Date(Date.now() - i * 1000).toISOString(),
      message: `order ${i} paid by john.doe@example.com with card 4111 1111 1111 1111`,
      metadata: { password: 'hunter2', plan: 'gold', seq: i },
      before: { status: 'new' },
      after: { status: 'paid', token: 'tok_live_abc' },
      request_id: `req-${Math.floor(i / 100)}`,
    }));
    const res = await http(svc.url, 'POST', '/api/v1/logs/bulk', { token: writer, body: { events } });
    expect(res.status).toBe(202);
    expect(res.body.accepted).toBe(1000);
    expect(new Set(res.body.ids).size).toBe(1000);

    const auditor = await svc.token('acme', 'auditor', 'aud');
    const all: any[] = await eventually(async () => {
      const rows: any[] = [];
      let cursor: string | null = null;
      do {
        const page: any = await http(
          svc.url,
          'GET',
          // Every read is itself audited (resource_type audit_log): count only the posted orders.
          `/api/v1/logs?limit=1000&resource_type=order${cursor ? `&cursor=${cursor}` : ''}`,
          { token: auditor },
        );
        expect(page.status).toBe(200);
        rows.push(...page.body.data);
        cursor = page.body.next_cursor;
      } while (cursor);
      return rows.length === 1000 ? rows : undefined;
    });
    expect(new Set(all.map((e) => e.id))).toEqual(new Set(res.body.ids));
    const sample = all.find((e) => e.resource_id === 'o-7');
    expect(sample.message).toBe('order 7 paid by j***@example.com with card [CARD ****1111]');
    expect(sample.metadata).toEqual({ password: '[REDACTED]', plan: 'gold', seq: 7 });
    expect(sample.after).toEqual({ status: 'paid', token: '[REDACTED]' });
    expect(sample.before).toEqual({ status: 'new' });
    // Sequence numbers are gapless 1..1000 for the tenant.
    expect(all.map((e) => Number(e.sequence)).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 1000 }, (_, i) => i + 1),
    );

    // At rest: no clear before/after/metadata, no unmasked secrets anywhere in the row.
    const db = new pg.Client({ connectionString: svc.config.DATABASE_URL });
    await db.connect();
    const { rows } = await db.query(
      `SELECT events::text AS row FROM events WHERE tenant_id = 'acme' AND resource_type = 'order'`,
    );
    await db.end();
    expect(rows).toHaveLength(1000);
    for (const { row } of rows) {
      expect(row).not.toContain('hunter2');
      expect(row).not.toContain('john.doe');
      expect(row).not.toContain('4111 1111 1111 1111');
      expect(row).not.toContain('tok_live_abc');
      expect(row).not.toContain('"status"');
      expect(row).not.toContain('gold"');
    }

    // The other tenant sees none of it, whatever it asks for.
    const other = await svc.token('globex', 'admin', 'intruder');
    const theirs = await http(svc.url, 'GET', '/api/v1/logs?limit=1000', { token: other });
    expect(theirs.status).toBe(200);
    // All it can see are the audit events of its own reads.
    expect(
      theirs.body.data.filter((e: any) => e.tenant_id !== 'globex' || e.resource_type !== 'audit_log'),
    ).toEqual([]);
    const byId = await http(svc.url, 'GET', `/api/v1/logs/${sample.id}`, { token: other });
    expect(byId.status).toBe(404);
    const named = await http(svc.url, 'GET', '/api/v1/logs?tenant_id=acme', { token: other });
    expect(named.status).toBe(403);
  });
  it("gives a tenant's sequential requests increasing sequence numbers while other tenants load the pipeline", async () => {
    const writer = await svc.token('acme', 'admin', 'app');
    const noisy = await svc.token('globex', 'admin', 'app');
    const bulk = (tag: string, n: number) => ({
      events: Array.from({ length: n }, (_, i) => ({
        action: 'CREATE',
        resource_type: tag,
        resource_id: String(i),
      })),
    });
    // Background load in another tenant, concurrent with every acme request.
    let loading = true;
    const load = (async () => {
      while (loading) {
        await Promise.all(
          Array.from({ length: 4 }, () =>
            http(svc.url, 'POST', '/api/v1/logs/bulk', { token: noisy, body: bulk('noise', 200) }),
          ),
        );
      }
    })();
    const requests = 25;
    for (let r = 0; r < requests; r++) {
      const res = await http(svc.url, 'POST', '/api/v1/logs/bulk', {
        token: writer,
        body: bulk(`ordered-${r}`, 40),
      });
      expect(res.status).toBe(202);
    }
    loading = false;
    await load;
    const db = new pg.Client({ connectionString: svc.config.DATABASE_URL });
    await db.connect();
    try {
      const rows = await eventually(async () => {
        const { rows } = await db.query<{ resource_type: string; resource_id: string }>(
          `SELECT resource_type, resource_id FROM events
            WHERE tenant_id = 'acme' AND resource_type LIKE 'ordered-%' ORDER BY seq`,
        );
        return rows.length === requests * 40 ? rows : undefined;
      }, 60_000);
      // Acknowledged order is stored order: request by request, and within a request.
      const expected = Array.from({ length: requests }, (_, r) =>
        Array.from({ length: 40 }, (_, i) => `ordered-${r}/${i}`),
      ).flat();
      expect(rows.map((row) => `${row.resource_type}/${row.resource_id}`)).toEqual(expected);
    } finally {
      await db.end();
    }
  });
});
