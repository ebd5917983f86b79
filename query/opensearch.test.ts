import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Batch, PersistedEvent } from '../infra/schema/batch.js';
import { closeSearchIndex, setSearchIndex } from '../infra/search/registry.js';
import { type RecordedRequest, recordingSearchIndex } from '../infra/search/testing.js';
import { indexStage } from '../stages/index/handler.js';
import { eventually, http, startTestService, type TestService } from '../test/harness.js';
import { openSearchKeys, useOpenSearch } from './opensearch.js';
import { withTenantScope } from './scoped.js';

/** The documents of every bulk request so far, in order: [action, doc] pairs. */
function bulkDocs(requests: RecordedRequest[]): { action: any; doc: any }[] {
  const out: { action: any; doc: any }[] = [];
  for (const r of requests.filter((x) => x.url.startsWith('/_bulk'))) {
    const lines = r.body.trimEnd().split('\n');
    for (let i = 0; i < lines.length; i += 2) {
      out.push({ action: JSON.parse(lines[i]!), doc: JSON.parse(lines[i + 1]!) });
    }
  }
  return out;
}

/**
 * The whole pipeline with OPENSEARCH_URL set: persist forwards to the index queue and the index
 * stage bulk-indexes through the real client, whose connection records instead of sending.
 */
describe('OpenSearch path end to end (recording connection)', () => {
  let svc: TestService;
  let recorder: ReturnType<typeof recordingSearchIndex>;
  let hitsFor: (body: any) => unknown[] = () => [];

  beforeAll(async () => {
    svc = await startTestService(['ingest', 'mask', 'encrypt', 'persist', 'index', 'query'], {
      // Nothing listens here: every request goes to the recording connection installed below.
      OPENSEARCH_URL: 'http://127.0.0.1:9',
    });
    recorder = recordingSearchIndex(pino({ level: 'silent' }), {
      respond: (r) =>
        r.url.endsWith('/_search')
          ? { status: 200, body: { hits: { hits: hitsFor(JSON.parse(r.body)) } } }
          : undefined,
    });
    setSearchIndex(svc.ctx, recorder.index);
    for (const id of ['acme', 'globex']) await svc.createTenant(id);
  });
  afterAll(async () => {
    if (svc) await closeSearchIndex(svc.ctx);
    await svc?.stop();
  });

  it('indexes every persisted event once per delivery, masked, keyed by id, in its tenant alias', async () => {
    const writer = await svc.token('acme', 'admin', 'app');
    const events = Array.from({ length: 5 }, (_, i) => ({
      user_id: `u-${i}`,
      action: 'UPDATE',
      resource_type: 'order',
      resource_id: `o-${i}`,
      occurred_at: `2026-03-0${i + 1}T10:00:00.123456+02:00`,
      message: `paid by john.doe@example.com`,
      metadata: { password: 'hunter2', plan: 'gold' },
      before: { city: 'Lyon' },
      after: { city: 'Paris' },
    }));
    const res = await http(svc.url, 'POST', '/api/v1/logs/bulk', { token: writer, body: { events } });
    expect(res.status).toBe(202);
    const docs = await eventually(async () => {
      const d = bulkDocs(recorder.requests);
      return d.length === 5 ? d : undefined;
    });
    expect(docs.map((d) => d.action)).toEqual(
      res.body.ids.map((id: string) => ({ index: { _index: 'auditlog-events-acme', _id: id } })),
    );
    expect(docs.map((d) => d.doc.sequence)).toEqual(['1', '2', '3', '4', '5']);
    expect(docs[0]!.doc).toEqual({
      tenant_id: 'acme',
      id: res.body.ids[0],
      sequence: '1',
      occurred_at: '2026-03-01T08:00:00.123456Z',
      received_at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}000Z$/),
      user_id: 'u-0',
      action: 'UPDATE',
      resource_type: 'order',
      resource_id: 'o-0',
      severity: 'INFO',
      message: 'paid by j***@example.com',
      meta_idx: [expect.stringMatching(/^[A-Za-z0-9_-]+$/), expect.stringMatching(/^[A-Za-z0-9_-]+$/)],
      meta_text: '[REDACTED] gold',
    });
    const all = recorder.requests.map((r) => r.body).join('\n');
    for (const secret of ['hunter2', 'john.doe', 'Lyon', 'Paris', 'sealed'])
      expect(all).not.toContain(secret);
    expect(recorder.requests.slice(0, 3).map((r) => `${r.method} ${r.url}`)).toEqual([
      'POST /_index_template/auditlog-events',
      'HEAD /_alias/auditlog-events-acme',
      'PUT /auditlog-events-acme_v1',
    ]);
  });

  it('re-indexes a redelivered batch under the same ids (idempotent), and refuses a mixed-tenant batch', async () => {
    const before = recorder.requests.length;
    const event: PersistedEvent = {
      tenant_id: 'globex',
      id: '0193a3a5-8c1e-7a2b-9c3d-4e5f60718299',
      sequence: '1',
      occurred_at: '2026-03-01T00:00:00Z',
      received_at: '2026-03-01T00:00:01Z',
      action: 'LOGIN',
      resource_type: 'session',
      severity: 'INFO',
      key_id: 1,
      meta_idx: [],
      meta_text: '',
    };
    const batch: Batch<PersistedEvent> = { v: 1, tenant_id: 'globex', events: [event] };
    await indexStage.handle([batch], svc.ctx);
    await indexStage.handle([batch], svc.ctx);
    const bulks = recorder.requests.slice(before).filter((r) => r.url.startsWith('/_bulk'));
    expect(bulks).toHaveLength(2);
    expect(bulks[1]!.body).toBe(bulks[0]!.body);
    expect(JSON.parse(bulks[0]!.body.split('\n')[0]!)).toEqual({
      index: { _index: 'auditlog-events-globex', _id: event.id },
    });

    const mixed: Batch<PersistedEvent> = { v: 1, tenant_id: 'acme', events: [event] };
    await expect(indexStage.handle([mixed], svc.ctx)).rejects.toThrow('batch mixes tenants');
    expect(recorder.requests.slice(before).filter((r) => r.url.startsWith('/_bulk'))).toHaveLength(2);
  });

  it('returns keys in order for the query side, and a foreign hit yields no row under the scope', async () => {
    expect(useOpenSearch(svc.ctx, { q: 'paid' })).toBe(true);
    expect(useOpenSearch(svc.ctx, {})).toBe(false);
    const acme = { tenantId: 'acme' };
    const stored = await withTenantScope(svc.ctx, acme, async (tx) =>
      tx.query<{ occurred_at: string; seq: string }>(
        `SELECT to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred_at, seq::text AS seq
           FROM events WHERE tenant_id = 'acme' ORDER BY occurred_at DESC, seq DESC`,
      ),
    );
    expect(stored.rows).toHaveLength(5);
    // The index answers with two acme events and, as if it were corrupted, globex's event.
    const globexKey = await withTenantScope(svc.ctx, { tenantId: 'globex' }, async (tx) =>
      tx.query<{ occurred_at: string; seq: string }>(
        `SELECT to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred_at, seq::text AS seq FROM events`,
      ),
    );
    let seen: any;
    hitsFor = (body) => {
      seen = body;
      return [stored.rows[1], stored.rows[2], ...globexKey.rows].map((k) => ({
        _source: { id: 'x', sequence: k!.seq, occurred_at: k!.occurred_at },
      }));
    };
    const keys = await openSearchKeys(
      svc.ctx,
      acme,
      {
        filters: { q: 'paid john', action: 'UPDATE' },
        mode: 'time-desc',
        cursor: { occurredAt: stored.rows[0]!.occurred_at, seq: stored.rows[0]!.seq, mode: 'time-desc' },
      },
      3,
    );
    expect(seen.size).toBe(3);
    expect(seen.query.bool.filter[0]).toEqual({ term: { tenant_id: 'acme' } });
    expect(seen.query.bool.filter[1]).toEqual({ terms: { action: ['UPDATE'] } });
    expect(seen.query.bool.filter[2].bool.should[0]).toEqual({
      range: { occurred_at: { lt: stored.rows[0]!.occurred_at } },
    });
    expect(keys).toEqual([stored.rows[1], stored.rows[2], ...globexKey.rows]);
    const rows = await withTenantScope(svc.ctx, acme, (tx) => tx.rowsAt(keys));
    expect(rows.map((r) => [r.tenant_id, r.sequence])).toEqual([
      ['acme', stored.rows[1]!.seq],
      ['acme', stored.rows[2]!.seq],
    ]);

    // Through the API: GET /logs?q= matches in OpenSearch and reads the rows from PostgreSQL.
    const auditor = await svc.token('acme', 'auditor', 'aud');
    const page = await http(svc.url, 'GET', '/api/v1/logs?q=paid&limit=5', { token: auditor });
    expect(page.status).toBe(200);
    expect(page.body.data.map((e: any) => [e.tenant_id, e.sequence])).toEqual([
      ['acme', stored.rows[1]!.seq],
      ['acme', stored.rows[2]!.seq],
    ]);
    expect(page.body.data[0].message).toBe('paid by j***@example.com');
    expect(seen.size).toBe(6);
    expect(seen.query.bool.filter).toEqual([{ term: { tenant_id: 'acme' } }]);
    // Another tenant's crafted q still searches only its own alias, filtered on its own id.
    const before = recorder.requests.length;
    const intruder = await svc.token('globex', 'admin', 'intruder');
    hitsFor = (body) => {
      seen = body;
      return [];
    };
    const crafted = await http(
      svc.url,
      'GET',
      `/api/v1/logs?q=${encodeURIComponent('tenant_id:acme OR *')}`,
      {
        token: intruder,
      },
    );
    expect(crafted.status).toBe(200);
    expect(crafted.body.data).toEqual([]);
    const sent = recorder.requests.slice(before).filter((r) => r.url.endsWith('/_search'));
    expect(sent.map((r) => r.url)).toEqual(['/auditlog-events-globex/_search']);
    expect(JSON.parse(sent[0]!.body).query.bool.filter).toEqual([{ term: { tenant_id: 'globex' } }]);

    // The user role's scope reaches the query as a filter too.
    await openSearchKeys(
      svc.ctx,
      { tenantId: 'acme', userId: 'u-1' },
      { filters: { q: 'x' }, mode: 'time-asc' },
      2,
    );
    expect(seen.query.bool.filter.slice(0, 2)).toEqual([
      { term: { tenant_id: 'acme' } },
      { term: { user_id: 'u-1' } },
    ]);
    expect(seen.sort).toEqual([{ occurred_at: { order: 'asc' } }, { sequence: { order: 'asc' } }]);
  });
});
