import diagnostics from 'node:diagnostics_channel';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POSTMAN_SCHEMA, toPostmanCollection } from '../bin/postman.js';
import { validateEvent } from '../infra/schema/validate.js';
import { http, startTestService, type TestService } from './harness.js';

const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

/** `/logs/:id` (fastify) → `/logs/{id}` (OpenAPI). */
const openApiPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

/**
 * The OpenAPI document against the routes the service really registers. Routes are captured with
 * an onRoute hook installed through fastify's `fastify.initialization` diagnostics channel, so
 * the test sees every route `startDaemons` wires (no list kept here to drift from compose.ts).
 */
describe('OpenAPI document', () => {
  let svc: TestService;
  let doc: any;
  const routes: { method: string; url: string; hidden: boolean }[] = [];
  const onInit = (message: unknown) => {
    const app = (message as { fastify: FastifyInstance }).fastify;
    app.addHook('onRoute', (route: RouteOptions) => {
      for (const method of [route.method].flat()) {
        routes.push({ method, url: route.url, hidden: Boolean((route.schema as { hide?: boolean })?.hide) });
      }
    });
  };

  beforeAll(async () => {
    diagnostics.subscribe('fastify.initialization', onInit);
    try {
      svc = await startTestService('all');
    } finally {
      diagnostics.unsubscribe('fastify.initialization', onInit);
    }
    const res = await http(svc.url, 'GET', '/api/v1/openapi.json');
    expect(res.status).toBe(200);
    doc = res.body;
  });
  afterAll(async () => svc?.stop());

  const operations = () =>
    Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, ops]) =>
      Object.entries(ops)
        .filter(([m]) => METHODS.includes(m))
        .map(([method, op]) => ({ path, method, op })),
    );

  it('is a valid OpenAPI 3.0 document', async () => {
    expect(doc.openapi).toMatch(/^3\.0\.\d+$/);
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('documents exactly the registered /api/v1 routes, with their methods', () => {
    const api = routes.filter((r) => r.url.startsWith('/api/v1/') && r.method !== 'HEAD');
    const documented = operations().map((o) => `${o.method.toUpperCase()} ${o.path}`);
    const registered = api.filter((r) => !r.hidden).map((r) => `${r.method} ${openApiPath(r.url)}`);
    expect(registered.length).toBeGreaterThanOrEqual(9);
    expect([...documented].sort()).toEqual([...new Set(registered)].sort());
    // The one hidden API route is the document itself.
    expect(api.filter((r) => r.hidden).map((r) => `${r.method} ${r.url}`)).toEqual([
      'GET /api/v1/openapi.json',
    ]);
    for (const expected of [
      'POST /api/v1/logs',
      'POST /api/v1/logs/bulk',
      'GET /api/v1/logs',
      'GET /api/v1/logs/{id}',
      'GET /api/v1/logs/export',
      'GET /api/v1/logs/stats',
      'GET /api/v1/logs/stream',
      'POST /api/v1/tenants',
      'GET /api/v1/tenants',
    ]) {
      expect(documented).toContain(expected);
    }
  });

  it('requires a bearer token for every operation', async () => {
    expect(doc.components.securitySchemes.bearerAuth).toEqual({
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
    });
    expect(doc.security).toEqual([{ bearerAuth: [] }]);
    for (const { path, method, op } of operations()) {
      // An operation-level `security` would override the global one (e.g. `[]` = no auth).
      expect(op.security, `${method} ${path}`).toBeUndefined();
      expect(op.responses['401'], `${method} ${path}`).toBeDefined();
    }
    // And the server agrees: every documented operation answers 401 without a token.
    for (const { path, method } of operations()) {
      const url = path.replace('{id}', '0193a3a5-8c1e-7a2b-9c3d-4e5f60718293');
      const res = await http(svc.url, method.toUpperCase(), url, method === 'post' ? { body: {} } : {});
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(Object.keys(res.body.error).sort(), `${method} ${path}`).toEqual(['code', 'message']);
    }
  });

  it('gives every operation a summary, a success response and error responses in the error format', () => {
    for (const { path, method, op } of operations()) {
      const where = `${method} ${path}`;
      expect(op.summary, where).toMatch(/\S/);
      expect(op.tags?.length, where).toBeGreaterThan(0);
      const codes = Object.keys(op.responses);
      // The stream answers plain HTTP with 426 (upgrade required); every other operation has a 2xx.
      const success = path.endsWith('/stream') ? ['426'] : codes.filter((c) => /^2\d\d$/.test(c));
      expect(success.length, where).toBeGreaterThan(0);
      const failures = codes.filter((c) => /^[45]\d\d$/.test(c));
      expect(failures, where).toContain('401');
      if (method === 'post' || (op.parameters ?? []).length > 0) expect(failures, where).toContain('400');
      for (const code of failures) {
        const schema = op.responses[code].content?.['application/json']?.schema;
        expect(schema?.required, `${where} ${code}`).toEqual(['error']);
        expect(schema.properties.error.required, `${where} ${code}`).toEqual(['code', 'message']);
        expect(op.responses[code].description, `${where} ${code}`).not.toBe('Default Response');
      }
    }
  });

  it('has request examples for ingest that the API itself accepts', () => {
    const single = doc.paths['/api/v1/logs'].post.requestBody.content['application/json'];
    expect(single.example).toBeDefined();
    expect(validateEvent(single.example)).toEqual([]);
    expect(single.example.action).toBe('UPDATE');
    const bulk = doc.paths['/api/v1/logs/bulk'].post.requestBody.content['application/json'];
    expect(bulk.example.events.length).toBeGreaterThanOrEqual(2);
    for (const e of bulk.example.events) expect(validateEvent(e)).toEqual([]);
  });

  it('documents the stats parameters as optional, with their defaults', () => {
    const params = Object.fromEntries(
      doc.paths['/api/v1/logs/stats'].get.parameters.map((p: any) => [p.name, p]),
    );
    expect(Object.keys(params).sort()).toEqual(['from', 'interval', 'tenant_id', 'to', 'top']);
    expect(params.interval.required).toBe(false);
    expect(params.interval.schema.default).toBe('hour');
    expect(params.top.required).toBe(false);
    expect(params.top.schema.default).toBe(10);
    const ok = doc.paths['/api/v1/logs/stats'].get.responses['200'];
    expect(ok.headers['x-request-id'].schema.type).toBe('string');
    expect(Object.keys(ok.content['application/json'].schema.properties).sort()).toEqual([
      'by_action',
      'by_resource_type',
      'by_severity',
      'from',
      'interval',
      'scope',
      'series',
      'tenant_id',
      'to',
      'top_users',
      'total',
    ]);
  });

  it('serves Swagger UI at /docs', async () => {
    const res = await fetch(`${svc.url}/docs/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(await res.text()).toContain('swagger');
  });

  it('converts to a Postman v2.1 collection with one request per operation', () => {
    const collection = toPostmanCollection(doc);
    expect(collection.info.schema).toBe(POSTMAN_SCHEMA);
    expect(collection.auth).toEqual({
      type: 'bearer',
      bearer: [{ key: 'token', value: '{{token}}', type: 'string' }],
    });
    const requests = collection.item.flatMap((folder) => folder.item);
    const fromPostman = requests.map(
      (r) => `${r.request.method} /${r.request.url.path.join('/').replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`,
    );
    const fromDoc = operations().map((o) => `${o.method.toUpperCase()} ${o.path}`);
    expect(fromPostman.sort()).toEqual(fromDoc.sort());
    expect(new Set(fromPostman).size).toBe(requests.length);
    expect(collection.item.map((f) => f.name).sort()).toEqual(['ingest', 'query', 'stream', 'tenants']);

    const post = requests.find(
      (r) => r.request.method === 'POST' && r.request.url.raw === '{{baseUrl}}/api/v1/logs',
    )!;
    expect(JSON.parse(post.request.body!.raw)).toEqual(
      doc.paths['/api/v1/logs'].post.requestBody.content['application/json'].example,
    );
    expect(post.request.header).toEqual([{ key: 'Content-Type', value: 'application/json' }]);
    const byId = requests.find((r) => r.request.url.path.at(-1) === ':id')!;
    expect(byId.request.url.variable?.map((v) => v.key)).toEqual(['id']);
    const stats = requests.find((r) => r.request.url.path.at(-1) === 'stats')!;
    expect(stats.request.url.raw).toBe('{{baseUrl}}/api/v1/logs/stats');
    expect(stats.request.url.query?.map((q) => [q.key, q.disabled])).toEqual([
      ['tenant_id', true],
      ['from', true],
      ['to', true],
      ['interval', true],
      ['top', true],
    ]);
  });
});
