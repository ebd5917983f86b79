import pg from 'pg';
import { pino } from 'pino';
import { describe, expect, inject, it } from 'vitest';
import type { PersistedEvent } from '../schema/batch.js';
import { toUtcMicros } from './documents.js';
import { indexTemplate } from './mapping.js';
import { tenantNames } from './names.js';
import { BulkRejectedError } from './opensearch.js';
import { MAX_QUERY_TERMS, parseWebSearch, textQuery } from './query-dsl.js';
import { recordingSearchIndex } from './testing.js';

const log = pino({ level: 'silent' });

function event(tenant: string, n: number, extra: Partial<PersistedEvent> = {}): PersistedEvent {
  return {
    tenant_id: tenant,
    id: `0193a3a5-8c1e-7a2b-9c3d-4e5f607182${String(n).padStart(2, '0')}`,
    sequence: String(n),
    occurred_at: '2026-11-28T10:15:00.5+01:00',
    received_at: '2026-11-28T09:15:01.000Z',
    action: 'UPDATE',
    resource_type: 'order',
    severity: 'INFO',
    key_id: 1,
    sealed: 'c2VhbGVkLWJ5dGVz',
    meta_idx: ['tok_a', 'tok_b'],
    meta_text: 'gold [REDACTED]',
    ...extra,
  };
}

const ndjson = (lines: unknown[]) => `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`;

describe('OpenSearch names', () => {
  it('puts each tenant behind its own alias over a versioned index', () => {
    expect(tenantNames('auditlog-events', 'acme')).toEqual({
      alias: 'auditlog-events-acme',
      index: 'auditlog-events-acme_v1',
    });
    // A tenant named like another's index cannot exist: tenant ids never contain '_'.
    expect(() => tenantNames('auditlog-events', 'acme_v1')).toThrow('invalid tenant id');
  });

  it('refuses anything that is not a tenant id (wildcards, lists, paths)', () => {
    for (const bad of ['acme*', 'acme,globex', '../acme', '_all', 'Acme', '', '-acme']) {
      expect(() => tenantNames('auditlog-events', bad)).toThrow('invalid tenant id');
    }
  });
});

describe('toUtcMicros', () => {
  it('writes timestamps exactly as PostgreSQL reads them back', async () => {
    const inputs = [
      '2026-11-28T10:15:00+01:00',
      '2026-11-28T10:15:00.5-02:30',
      '2026-01-01T00:00:00.1234565Z',
      '2026-01-01T00:00:00.1234575Z',
      '2026-01-01T00:00:00.9999996Z',
      '2026-12-31T23:59:59.999999949Z',
      '2026-03-01T00:00:00.000001Z',
      '1999-12-31t23:59:59.25z',
    ];
    const db = new pg.Client({ connectionString: inject('pgAdminUrl') });
    await db.connect();
    try {
      for (const input of inputs) {
        const { rows } = await db.query(
          `SELECT to_char($1::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS s`,
          [input],
        );
        expect(toUtcMicros(input), input).toBe(rows[0].s);
      }
    } finally {
      await db.end();
    }
    expect(toUtcMicros('2026-11-28T10:15:00+01:00')).toBe('2026-11-28T09:15:00.000000Z');
    expect(() => toUtcMicros('yesterday')).toThrow('not an RFC 3339 timestamp');
  });
});

describe('bulkIndex', () => {
  it('creates the template, the tenant index and alias once, then bulk-indexes masked fields by event id', async () => {
    const { index, requests } = recordingSearchIndex(log);
    const e1 = event('acme', 1, {
      user_id: 'u-42',
      message: 'changed j***@example.com',
      ip_address: '203.0.113.7',
    });
    const e2 = event('acme', 2, { request_id: 'req-1' });
    await index.bulkIndex([e1, e2]);
    await index.bulkIndex([e2]);

    expect(requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      'POST /_index_template/auditlog-events',
      'HEAD /_alias/auditlog-events-acme',
      'PUT /auditlog-events-acme_v1',
      'POST /_bulk?require_alias=true',
      'POST /_bulk?require_alias=true',
    ]);
    expect(JSON.parse(requests[0]!.body)).toEqual(indexTemplate('auditlog-events'));
    expect(JSON.parse(requests[0]!.body).index_patterns).toEqual(['auditlog-events-*']);
    expect(JSON.parse(requests[2]!.body)).toEqual({
      aliases: { 'auditlog-events-acme': { is_write_index: true } },
    });
    const doc = {
      tenant_id: 'acme',
      id: e1.id,
      sequence: '1',
      occurred_at: '2026-11-28T09:15:00.500000Z',
      received_at: '2026-11-28T09:15:01.000000Z',
      action: 'UPDATE',
      resource_type: 'order',
      severity: 'INFO',
      meta_idx: ['tok_a', 'tok_b'],
      meta_text: 'gold [REDACTED]',
      user_id: 'u-42',
      ip_address: '203.0.113.7',
      message: 'changed j***@example.com',
    };
    expect(requests[3]!.body).toBe(
      ndjson([
        { index: { _index: 'auditlog-events-acme', _id: e1.id } },
        doc,
        { index: { _index: 'auditlog-events-acme', _id: e2.id } },
        {
          tenant_id: 'acme',
          id: e2.id,
          sequence: '2',
          occurred_at: '2026-11-28T09:15:00.500000Z',
          received_at: '2026-11-28T09:15:01.000000Z',
          action: 'UPDATE',
          resource_type: 'order',
          severity: 'INFO',
          meta_idx: ['tok_a', 'tok_b'],
          meta_text: 'gold [REDACTED]',
          request_id: 'req-1',
        },
      ]),
    );
    // The sealed before/after/metadata and the key id never leave PostgreSQL.
    for (const r of requests) {
      expect(r.body).not.toContain('c2VhbGVkLWJ5dGVz');
      expect(r.body).not.toContain('key_id');
    }
  });

  it('sends each tenant’s events to that tenant’s alias only', async () => {
    const { index, requests } = recordingSearchIndex(log, {
      // globex's alias already exists: no index is created for it.
      respond: (r) =>
        r.method === 'HEAD' && r.url === '/_alias/auditlog-events-globex' ? { status: 200 } : undefined,
    });
    await index.bulkIndex([event('acme', 1), event('globex', 2), event('acme', 3)]);
    expect(requests.map((r) => `${r.method} ${r.url}`).sort()).toEqual([
      'HEAD /_alias/auditlog-events-acme',
      'HEAD /_alias/auditlog-events-globex',
      'POST /_bulk?require_alias=true',
      'POST /_index_template/auditlog-events',
      'PUT /auditlog-events-acme_v1',
    ]);
    const bulk = requests
      .find((r) => r.url.startsWith('/_bulk'))!
      .body.trimEnd()
      .split('\n');
    const targets = bulk
      .filter((_, i) => i % 2 === 0)
      .map((l) => {
        const a = JSON.parse(l).index;
        return [a._index, a._id.slice(-2)];
      });
    expect(targets).toEqual([
      ['auditlog-events-acme', '01'],
      ['auditlog-events-globex', '02'],
      ['auditlog-events-acme', '03'],
    ]);
    const docs = bulk.filter((_, i) => i % 2 === 1).map((l) => JSON.parse(l).tenant_id);
    expect(docs).toEqual(['acme', 'globex', 'acme']);
  });

  it('reattaches the alias when the index already exists (a racing worker)', async () => {
    const { index, requests } = recordingSearchIndex(log, {
      respond: (r) =>
        r.method === 'PUT' && r.url === '/auditlog-events-acme_v1'
          ? { status: 400, body: { error: { type: 'resource_already_exists_exception' }, status: 400 } }
          : undefined,
    });
    await index.ensureTenant('acme');
    expect(requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      'POST /_index_template/auditlog-events',
      'HEAD /_alias/auditlog-events-acme',
      'PUT /auditlog-events-acme_v1',
      'PUT /auditlog-events-acme_v1/_alias/auditlog-events-acme',
    ]);
    expect(JSON.parse(requests[3]!.body)).toEqual({ is_write_index: true });
  });

  it('retries a throttled (429) bulk request with backoff, then succeeds', async () => {
    let bulks = 0;
    const { index, requests, sleeps } = recordingSearchIndex(log, {
      respond: (r) =>
        r.url.startsWith('/_bulk') && ++bulks === 1
          ? { status: 429, body: { error: { type: 'rejected_execution_exception' }, status: 429 } }
          : undefined,
    });
    await index.bulkIndex([event('acme', 1)]);
    const sent = requests.filter((r) => r.url.startsWith('/_bulk'));
    expect(sent).toHaveLength(2);
    expect(sent[1]!.body).toBe(sent[0]!.body);
    // base 200 ms, attempt 0, jitter at the midpoint: 100 + 100 * 0.5.
    expect(sleeps).toEqual([150]);
  });

  it('retries only the bulk items that failed with 429/5xx, with growing delays', async () => {
    let bulks = 0;
    const { index, requests, sleeps } = recordingSearchIndex(log, {
      respond: (r) => {
        if (!r.url.startsWith('/_bulk')) return undefined;
        bulks++;
        const ids = r.body
          .trimEnd()
          .split('\n')
          .filter((_, i) => i % 2 === 0)
          .map((l) => JSON.parse(l).index._id as string);
        const status = (id: string) =>
          bulks === 1 && !id.endsWith('01') ? 429 : bulks === 2 && id.endsWith('03') ? 503 : 201;
        return {
          status: 200,
          body: {
            took: 1,
            errors: ids.some((id) => status(id) !== 201),
            items: ids.map((id) => ({ index: { _id: id, status: status(id) } })),
          },
        };
      },
    });
    await index.bulkIndex([event('acme', 1), event('acme', 2), event('acme', 3)]);
    const sentIds = requests
      .filter((r) => r.url.startsWith('/_bulk'))
      .map((r) =>
        r.body
          .trimEnd()
          .split('\n')
          .filter((_, i) => i % 2 === 0)
          .map((l) => JSON.parse(l).index._id.slice(-2)),
      );
    expect(sentIds).toEqual([['01', '02', '03'], ['02', '03'], ['03']]);
    expect(sleeps).toEqual([150, 300]);
  });

  it('fails, without retrying, on an item OpenSearch refuses for good', async () => {
    const { index, requests, sleeps } = recordingSearchIndex(log, {
      respond: (r) =>
        r.url.startsWith('/_bulk')
          ? {
              status: 200,
              body: {
                took: 1,
                errors: true,
                items: [
                  { index: { status: 201 } },
                  {
                    index: {
                      status: 400,
                      error: { type: 'mapper_parsing_exception', reason: 'secret value' },
                    },
                  },
                ],
              },
            }
          : undefined,
    });
    const err = await index.bulkIndex([event('acme', 1), event('acme', 2)]).catch((e) => e);
    expect(err).toBeInstanceOf(BulkRejectedError);
    expect(err.message).toBe('1 event(s) refused by OpenSearch: 400 mapper_parsing_exception');
    expect(requests.filter((r) => r.url.startsWith('/_bulk'))).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });

  it('gives up after OPENSEARCH_MAX_RETRIES and lets the runner retry the batch', async () => {
    const { index, requests, sleeps } = recordingSearchIndex(log, {
      maxRetries: 2,
      respond: (r) =>
        r.url.startsWith('/_bulk') ? { status: 503, body: { error: 'unavailable' } } : undefined,
    });
    const err = await index.bulkIndex([event('acme', 1)]).catch((e) => e);
    expect(err.name).toBe('ResponseError');
    expect(err.statusCode).toBe(503);
    expect(requests.filter((r) => r.url.startsWith('/_bulk'))).toHaveLength(3);
    expect(sleeps).toEqual([150, 300]);
  });
});

describe('search', () => {
  const after = { occurredAt: '2026-11-28T09:15:00.500000Z', seq: '41' };

  it('builds the exact query DSL, tenant filter first, against the tenant alias', async () => {
    const { index, requests } = recordingSearchIndex(log, {
      respond: (r) =>
        r.url.endsWith('/_search')
          ? {
              status: 200,
              body: {
                hits: {
                  hits: [
                    {
                      _id: 'a',
                      _source: { id: 'a', sequence: '40', occurred_at: '2026-11-28T09:15:00.500000Z' },
                    },
                    {
                      _id: 'b',
                      _source: { id: 'b', sequence: 7, occurred_at: '2026-11-28T09:00:00.000000Z' },
                    },
                  ],
                },
              },
            }
          : undefined,
    });
    const hits = await index.search({
      tenantId: 'acme',
      filters: {
        q: '"shipping address" -refund paris OR lyon',
        from: '2026-11-01T00:00:00+01:00',
        to: '2026-12-01T00:00:00Z',
        action: 'UPDATE,DELETE',
        severity: 'WARNING',
        resource_type: 'order',
        ip_address: '10.0.0.0/8',
        metaTokens: ['tok_a'],
      },
      order: 'time-desc',
      size: 3,
      after,
    });
    expect(hits).toEqual([
      { id: 'a', sequence: '40', occurred_at: '2026-11-28T09:15:00.500000Z' },
      { id: 'b', sequence: '7', occurred_at: '2026-11-28T09:00:00.000000Z' },
    ]);
    expect(requests.map((r) => `${r.method} ${r.url}`)).toEqual(['POST /auditlog-events-acme/_search']);
    expect(JSON.parse(requests[0]!.body)).toEqual({
      size: 3,
      track_total_hits: false,
      _source: ['id', 'sequence', 'occurred_at'],
      query: {
        bool: {
          filter: [
            { term: { tenant_id: 'acme' } },
            {
              range: {
                occurred_at: { gte: '2026-10-31T23:00:00.000000Z', lt: '2026-12-01T00:00:00.000000Z' },
              },
            },
            { terms: { action: ['UPDATE', 'DELETE'] } },
            { term: { resource_type: 'order' } },
            { terms: { severity: ['WARNING'] } },
            { term: { ip_address: '10.0.0.0/8' } },
            { term: { meta_idx: 'tok_a' } },
            {
              bool: {
                should: [
                  { range: { occurred_at: { lt: after.occurredAt } } },
                  {
                    bool: {
                      filter: [
                        { term: { occurred_at: after.occurredAt } },
                        { range: { sequence: { lt: '41' } } },
                      ],
                    },
                  },
                ],
                minimum_should_match: 1,
              },
            },
          ],
          must: [
            { match_phrase: { search_text: 'shipping address' } },
            {
              bool: {
                should: [
                  { match: { search_text: { query: 'paris', operator: 'and' } } },
                  { match: { search_text: { query: 'lyon', operator: 'and' } } },
                ],
                minimum_should_match: 1,
              },
            },
          ],
          must_not: [{ match: { search_text: { query: 'refund', operator: 'and' } } }],
        },
      },
      sort: [{ occurred_at: { order: 'desc' } }, { sequence: { order: 'desc' } }],
    });
  });

  it('scopes the user role to its own events and orders a correlation by sequence', async () => {
    const { index, requests } = recordingSearchIndex(log);
    await index.search({
      tenantId: 'acme',
      userId: 'u-42',
      filters: { q: 'login', request_id: 'req-1' },
      order: 'seq-asc',
      size: 10,
      after: { occurredAt: after.occurredAt, seq: '5' },
    });
    const body = JSON.parse(requests[0]!.body);
    expect(body.query.bool.filter).toEqual([
      { term: { tenant_id: 'acme' } },
      { term: { user_id: 'u-42' } },
      { term: { request_id: 'req-1' } },
      { range: { sequence: { gt: '5' } } },
    ]);
    expect(body.sort).toEqual([{ sequence: { order: 'asc' } }]);
  });

  it('keeps the tenant filter whatever q says: crafted q is only ever text to match', async () => {
    const crafted = [
      'tenant_id:globex',
      'tenant_id:globex OR *',
      '*',
      '_all',
      '{"term":{"tenant_id":"globex"}}',
      '") OR tenant_id:"globex',
      'acme* -tenant_id:acme',
      '\\" } ] , "filter": [] }',
    ];
    for (const q of crafted) {
      const { index, requests } = recordingSearchIndex(log);
      await index.search({ tenantId: 'acme', filters: { q }, order: 'time-desc', size: 5 });
      expect(requests.map((r) => `${r.method} ${r.url}`)).toEqual(['POST /auditlog-events-acme/_search']);
      const body = JSON.parse(requests[0]!.body);
      expect(body.query.bool.filter).toEqual([{ term: { tenant_id: 'acme' } }]);
      expect(Object.keys(body.query.bool).sort()).toEqual(['filter', 'must', 'must_not']);
      expect(requests[0]!.body).not.toMatch(/query_string|"prefix"|"wildcard"|"regexp"|"script"/);
      // Every piece of q sits in a match/match_phrase value on search_text: the text clauses use
      // no other field and no other query type, so q cannot add, remove or widen a filter.
      const keys = new Set<string>();
      const texts: string[] = [];
      const walk = (v: unknown, key?: string): void => {
        if (typeof v === 'string' && (key === 'search_text' || key === 'query')) texts.push(v);
        if (v && typeof v === 'object' && !Array.isArray(v)) {
          for (const [k, c] of Object.entries(v)) {
            keys.add(k);
            walk(c, k);
          }
        } else if (Array.isArray(v)) for (const c of v) walk(c, key);
      };
      walk([body.query.bool.must, body.query.bool.must_not]);
      const allowed = [
        'bool',
        'should',
        'must_not',
        'minimum_should_match',
        'match',
        'match_phrase',
        'match_none',
      ];
      expect([...keys].filter((k) => ![...allowed, 'search_text', 'query', 'operator'].includes(k))).toEqual(
        [],
      );
      // q with no word at all matches nothing rather than everything.
      if (texts.length === 0) expect(body.query.bool.must).toEqual([{ match_none: {} }]);
    }
  });

  it('finds nothing for a tenant that has no index yet', async () => {
    const { index, requests } = recordingSearchIndex(log, {
      respond: () => ({
        status: 404,
        body: { error: { type: 'index_not_found_exception', index: 'auditlog-events-initech' }, status: 404 },
      }),
    });
    expect(
      await index.search({ tenantId: 'initech', filters: { q: 'x' }, order: 'time-desc', size: 5 }),
    ).toEqual([]);
    expect(requests.map((r) => `${r.method} ${r.url}`)).toEqual(['POST /auditlog-events-initech/_search']);
  });

  it('refuses a scope that is not a single tenant id before sending anything', async () => {
    const { index, requests } = recordingSearchIndex(log);
    for (const tenantId of ['acme,globex', 'acme*', '_all']) {
      await expect(
        index.search({ tenantId, filters: { q: 'x' }, order: 'time-desc', size: 5 }),
      ).rejects.toThrow('invalid tenant id');
    }
    expect(requests).toEqual([]);
  });
});

describe('web-search syntax', () => {
  it('reads words, phrases, OR and exclusions like websearch_to_tsquery', () => {
    const w = (text: string, negated = false) => ({ phrase: false, text, negated });
    const p = (text: string, negated = false) => ({ phrase: true, text, negated });
    expect(parseWebSearch('a b')).toEqual([[w('a')], [w('b')]]);
    expect(parseWebSearch('a or b c')).toEqual([[w('a'), w('b')], [w('c')]]);
    expect(parseWebSearch('"x  y" -z -"no way"')).toEqual([[p('x y')], [w('z', true)], [p('no way', true)]]);
    expect(parseWebSearch('OR a OR')).toEqual([[w('a')]]);
    expect(parseWebSearch('"unterminated phrase')).toEqual([[p('unterminated phrase')]]);
    expect(parseWebSearch(' - -- & a-b ')).toEqual([[w('a-b')]]);
    expect(textQuery('- &')).toEqual({ must: [{ match_none: {} }], must_not: [] });
    expect(textQuery('-x')).toEqual({
      must: [],
      must_not: [{ match: { search_text: { query: 'x', operator: 'and' } } }],
    });
  });

  it('bounds the number of terms', () => {
    const many = Array.from({ length: MAX_QUERY_TERMS + 1 }, (_, i) => `t${i}`).join(' ');
    expect(() => parseWebSearch(many)).toThrow(`q may hold at most ${MAX_QUERY_TERMS} terms`);
    expect(parseWebSearch(many.split(' ').slice(0, MAX_QUERY_TERMS).join(' '))).toHaveLength(MAX_QUERY_TERMS);
  });
});
