import type { Readable } from 'node:stream';
import Type from 'typebox';
import { readScope } from '../infra/auth/access.js';
import type { Context } from '../infra/context.js';
import { ErrorBody, HttpError } from '../infra/http/errors.js';
import type { App } from '../infra/http/server.js';
import { StoredEvent } from '../infra/schema/event.js';
import { Correlation } from './correlation.js';
import { DecryptThreads } from './decrypt-threads.js';
import { getEvent, searchEvents } from './events.js';
import { exportEvents } from './export.js';
import { EXPORT_FORMATS, exportFilename } from './export-format.js';
import { ExportQuery, SearchQuery } from './filters.js';
import { audited, prepareRead } from './read.js';

const errors = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  429: ErrorBody,
  503: ErrorBody,
};

const RequestIdHeader = {
  'x-request-id': Type.String({ description: 'Request id; the self-audit event of this read carries it' }),
};

/**
 * Read API: search, export and get. Each route resolves its scope through `readScope` and reads
 * through `withTenantScope` while its self-audit event is queued (`audited`, fail closed: no
 * data leaves unless the read was recorded).
 * `/logs/export` is a static route, which find-my-way always prefers to the `/logs/:id`
 * parametric one, whatever the registration order.
 */
export function queryRoutes(ctx: Context) {
  return async (app: App) => {
    // Exports in flight. A slow or stalled client must not hold shutdown forever: on close they
    // are cut (the client sees a broken transfer, never a complete-looking truncated file).
    const exports = new Set<Readable>();
    app.addHook('preClose', (done) => {
      for (const body of exports) body.destroy(new Error('server shutting down'));
      done();
    });
    const threads =
      ctx.config.EXPORT_DECRYPT_THREADS > 0
        ? new DecryptThreads(ctx.config.EXPORT_DECRYPT_THREADS)
        : undefined;
    app.addHook('onClose', async () => threads?.close());

    app.get(
      '/logs',
      {
        schema: {
          summary: 'Search audit events (keyset pagination)',
          description:
            'Filters combine with AND. `q` is full-text search in web-search syntax; `metadata.<key>=<value>` ' +
            '(up to 8) matches top-level metadata values exactly, after masking; `ip_address` takes an ' +
            'address or a CIDR range. Newest first unless sort=asc. With request_id the events of that ' +
            'request come in causal (sequence) order and `correlation` summarizes the whole request. ' +
            'next_cursor continues the same order; it is stable while new events arrive. Every call is ' +
            'itself recorded as a VIEW event (resource_type audit_log) in the tenant read.',
          tags: ['query'],
          querystring: SearchQuery,
          response: {
            200: Type.Object({
              data: Type.Array(StoredEvent),
              next_cursor: Type.Union([Type.String(), Type.Null()]),
              correlation: Type.Optional(Correlation),
            }),
            ...errors,
          },
        },
      },
      async (request, reply) =>
        prepareRead(ctx, request, reply, request.query, { action: 'VIEW', operation: 'search' }, (read) =>
          searchEvents(ctx, read.scope, {
            ...read.parsed,
            filters: read.filters,
            limit: request.query.limit,
          }),
        ),
    );

    app.get(
      '/logs/export',
      {
        schema: {
          summary: 'Export audit events as JSON, NDJSON or CSV (streamed)',
          description:
            'Same filters and role rules as search, without paging: every matching event, streamed from a ' +
            'database cursor. CSV follows RFC 4180 (CRLF, quoted fields, header row; before/after/metadata ' +
            "as JSON text) and prefixes cells starting with = + - @ tab or CR with ' against formula " +
            'injection. Recorded as an EXPORT event (resource_type audit_log) in the tenant read.',
          tags: ['query'],
          querystring: ExportQuery,
          response: {
            200: {
              description: 'The export, as an attachment',
              headers: {
                ...RequestIdHeader,
                'content-disposition': Type.String({
                  examples: ['attachment; filename="auditlog-acme-20261128T101500Z.csv"'],
                }),
              },
              content: {
                'application/json': { schema: Type.Array(StoredEvent) },
                'application/x-ndjson': { schema: Type.String({ description: 'One event per line' }) },
                'text/csv': { schema: Type.String({ description: 'RFC 4180 CSV with a header row' }) },
              },
            },
            ...errors,
          },
        },
      },
      async (request, reply) => {
        const format = EXPORT_FORMATS[request.query.format];
        const { scope, body } = await prepareRead(
          ctx,
          request,
          reply,
          request.query,
          { action: 'EXPORT', operation: 'export' },
          async (read) => ({
            scope: read.scope,
            body: await exportEvents(ctx, read.scope, read.filters, read.parsed.mode, format, threads),
          }),
          // Unaudited: the body (and its transaction) is dropped before a byte of it is sent.
          (unsent) => unsent.body.destroy(),
        );
        exports.add(body);
        body.once('close', () => exports.delete(body));
        reply
          .header('content-disposition', `attachment; filename="${exportFilename(scope.tenantId, format)}"`)
          .header('cache-control', 'no-store')
          .type(format.contentType);
        // A stream is sent as is (fastify skips serialization); the schema above only documents it.
        return reply.send(body as never);
      },
    );

    app.get(
      '/logs/:id',
      {
        schema: {
          summary: 'Get one audit event',
          description: 'Recorded as a VIEW event (resource_type audit_log, resource_id = the id asked for).',
          tags: ['query'],
          params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
          querystring: Type.Object(
            { tenant_id: SearchQuery.properties.tenant_id },
            { additionalProperties: false },
          ),
          response: { 200: StoredEvent, ...errors },
        },
      },
      async (request, reply) => {
        const scope = readScope(request.principal, request.query.tenant_id);
        const event = await audited(
          ctx,
          request,
          reply,
          { tenantId: scope.tenantId, action: 'VIEW', operation: 'get', resourceId: request.params.id },
          () => getEvent(ctx, scope, request.params.id),
        );
        if (!event) throw new HttpError(404, 'not_found', 'no such event');
        return event;
      },
    );
  };
}
