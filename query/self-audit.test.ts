import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUES } from '../infra/transport/types.js';
import { eventually, http, startTestService, type TestService } from '../test/harness.js';
import { createTenants, ingest, QUERY_DAEMONS, waitStored } from './test-support.js';

/** Every read is itself an audit event in the tenant read, through the normal pipeline. */
let svc: TestService;
let eventId: string;

/** The stored self-audit event of the read with this request id, once the pipeline has it (as the owner). */
async function auditOf(tenant: string, requestId: string) {
  const auditor = await svc.token(tenant, 'auditor', 'audit-checker');
  return eventually(async () => {
    const res = await http(
      svc.url,
      'GET',
      `/api/v1/logs?request_id=${encodeURIComponent(requestId)}&resource_type=audit_log`,
      { token: auditor },
    );
    return res.body?.data?.length === 1 ? res.body.data[0] : undefined;
  });
}

/** With the audit queue failing as `enqueue` does, every read of `urls` is refused with 503. */
async function expectUnauditable(enqueue: () => Promise<void>, token: string, urls: string[]) {
  const original = svc.ctx.enqueue.enqueue;
  svc.ctx.enqueue.enqueue = enqueue;
  try {
    for (const url of urls) {
      const res = await http(svc.url, 'GET', url, { token });
      expect(res.status).toBe(503);
      expect(res.body).toEqual({
        error: { code: 'audit_unavailable', message: 'the read could not be audited; retry later' },
      });
    }
  } finally {
    svc.ctx.enqueue.enqueue = original;
  }
}

beforeAll(async () => {
  svc = await startTestService([...QUERY_DAEMONS]);
  await createTenants(svc, ['acme', 'globex']);
  [eventId] = (await ingest(svc, 'acme', [
    { user_id: 'u1', action: 'CREATE', resource_type: 'order', metadata: { plan: 'gold' } },
  ])) as [string];
  await waitStored(svc, 'acme', 1);
});
afterAll(async () => svc?.stop());

describe('self-audit of reads', () => {
  it('records a search as VIEW with the caller, the filters (masked) and the request id', async () => {
    const token = await svc.token('acme', 'auditor', 'aud-7');
    const res = await http(
      svc.url,
      'GET',
      '/api/v1/logs?q=john.doe%40example.com&metadata.plan=gold&metadata.password=hunter2&limit=5',
      { token, headers: { 'user-agent': 'audit-test/1.0' } },
    );
    expect(res.status).toBe(200);
    const requestId = res.headers.get('x-request-id')!;
    // Unique across processes and restarts (a UUID, not fastify's default per-process counter).
    expect(requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const event = await auditOf('acme', requestId);
    expect(event).toEqual({
      tenant_id: 'acme',
      id: expect.any(String),
      sequence: expect.stringMatching(/^[0-9]+$/),
      occurred_at: expect.any(String),
      received_at: expect.any(String),
      action: 'VIEW',
      resource_type: 'audit_log',
      severity: 'INFO',
      user_id: 'aud-7',
      request_id: requestId,
      ip_address: '127.0.0.1',
      user_agent: 'audit-test/1.0',
      message: 'search of audit events by auditor',
      metadata: {
        operation: 'search',
        role: 'auditor',
        // Masked like any event: the email by pattern, the password-named filter by key.
        filters: {
          q: 'j***@example.com',
          'metadata.plan': 'gold',
          'metadata.password': '[REDACTED]',
          limit: '5',
        },
      },
    });
    expect(JSON.stringify(event)).not.toContain('hunter2');
  });

  it('records a get by id with the id as resource_id, even when nothing is found', async () => {
    const token = await svc.token('acme', 'admin', 'adm-1');
    const found = await http(svc.url, 'GET', `/api/v1/logs/${eventId}`, { token });
    expect(found.status).toBe(200);
    const event = await auditOf('acme', found.headers.get('x-request-id')!);
    expect(event).toMatchObject({
      action: 'VIEW',
      resource_type: 'audit_log',
      resource_id: eventId,
      user_id: 'adm-1',
      metadata: { operation: 'get', role: 'admin', filters: {} },
    });
    const missing = await http(svc.url, 'GET', '/api/v1/logs/00000000-0000-7000-8000-000000000000', {
      token,
    });
    expect(missing.status).toBe(404);
    const attempt = await auditOf('acme', missing.headers.get('x-request-id')!);
    expect(attempt.resource_id).toBe('00000000-0000-7000-8000-000000000000');
  });

  it('records an export as EXPORT with its format', async () => {
    const token = await svc.token('acme', 'auditor', 'exporter');
    const res = await http(svc.url, 'GET', '/api/v1/logs/export?format=csv&action=CREATE', { token });
    expect(res.status).toBe(200);
    const event = await auditOf('acme', res.headers.get('x-request-id')!);
    expect(event).toMatchObject({
      action: 'EXPORT',
      resource_type: 'audit_log',
      user_id: 'exporter',
      metadata: { operation: 'export', role: 'auditor', filters: { format: 'csv', action: 'CREATE' } },
    });
  });

  it('records a platform admin reading a tenant in that tenant, as platform:<sub>', async () => {
    const platform = await svc.token('*', 'admin', 'root');
    const res = await http(svc.url, 'GET', '/api/v1/logs?tenant_id=acme', { token: platform });
    expect(res.status).toBe(200);
    const event = await auditOf('acme', res.headers.get('x-request-id')!);
    expect(event).toMatchObject({
      tenant_id: 'acme',
      user_id: 'platform:root',
      metadata: { operation: 'search', role: 'admin', filters: { tenant_id: 'acme' } },
    });
    // Nothing about it in any other tenant.
    const { rows } = await svc.ctx.pool.query(`SELECT tenant_id FROM events WHERE request_id = $1`, [
      res.headers.get('x-request-id'),
    ]);
    expect(rows).toEqual([{ tenant_id: 'acme' }]);
  });

  it('lets a user-role caller see its own read events, and no one else’s', async () => {
    const token = await svc.token('acme', 'user', 'u1');
    const res = await http(svc.url, 'GET', '/api/v1/logs', { token });
    expect(res.status).toBe(200);
    const requestId = res.headers.get('x-request-id')!;
    await auditOf('acme', requestId);
    const own = await http(svc.url, 'GET', '/api/v1/logs?resource_type=audit_log&limit=1000', { token });
    expect(own.body.data.length).toBeGreaterThan(0);
    expect(own.body.data.every((e: any) => e.user_id === 'u1')).toBe(true);
    expect(own.body.data.map((e: any) => e.request_id)).toContain(requestId);
  });

  it('refuses a read with 503 when it cannot be audited, and returns no data', async () => {
    await expectUnauditable(
      async () => {
        throw new Error('queue down');
      },
      await svc.token('acme', 'admin', 'adm-2'),
      ['/api/v1/logs', `/api/v1/logs/${eventId}`, '/api/v1/logs/export?format=ndjson'],
    );
  });

  it('withholds the data when the audit fails after the read itself has finished', async () => {
    // The read runs while its audit event is queued: a late failure must still win.
    await expectUnauditable(
      async () => {
        await new Promise((resolve) => setTimeout(resolve, 300));
        throw new Error('queue down');
      },
      await svc.token('acme', 'admin', 'adm-3'),
      ['/api/v1/logs', `/api/v1/logs/${eventId}`, '/api/v1/logs/export?format=csv', '/api/v1/logs/stats'],
    );
    // The dropped export released its connection: reads still work.
    const token = await svc.token('acme', 'admin', 'adm-3');
    expect((await http(svc.url, 'GET', '/api/v1/logs/export?format=csv', { token })).status).toBe(200);
  });

  it('answers 404 for a platform read of a tenant that does not exist (nothing to record it in)', async () => {
    const platform = await svc.token('*', 'admin', 'root');
    const res = await http(svc.url, 'GET', '/api/v1/logs?tenant_id=nosuch', { token: platform });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('tenant_not_found');
  });

  it('does not feed back: N reads make exactly N events, and then the pipeline is idle', async () => {
    await createTenants(svc, ['quiet']);
    const token = await svc.token('quiet', 'auditor', 'reader');
    const requests: string[] = [];
    for (let i = 0; i < 5; i++) {
      // Each read returns the read events stored so far: reading them must not create more.
      const res = await http(svc.url, 'GET', '/api/v1/logs?resource_type=audit_log', { token });
      expect(res.status).toBe(200);
      requests.push(res.headers.get('x-request-id')!);
    }
    const count = async () =>
      (
        await svc.ctx.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM events WHERE tenant_id = 'quiet'`,
        )
      ).rows[0]!.n;
    await eventually(async () => ((await count()) === 5 ? true : undefined));
    // Idle: nothing queued or in flight in any hop, so nothing more can appear.
    await eventually(async () => {
      const depths = await Promise.all(QUEUES.map((q) => svc.ctx.transport.depth(q)));
      return depths.every((d) => d === 0) ? true : undefined;
    });
    expect(await count()).toBe(5);
    const { rows } = await svc.ctx.pool.query<{ request_id: string }>(
      `SELECT request_id FROM events WHERE tenant_id = 'quiet' ORDER BY seq`,
    );
    expect(rows.map((r) => r.request_id)).toEqual(requests);
  });
});
