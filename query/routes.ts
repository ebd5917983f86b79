import Type from 'typebox';
import { readScope } from '../infra/auth/access.js';
import type { Context } from '../infra/context.js';
import { ErrorBody, HttpError } from '../infra/http/errors.js';
import type { App } from '../infra/http/server.js';
import { StoredEvent } from '../infra/schema/event.js';
import { getEvent, searchEvents } from './events.js';
import { SearchQuery } from './filters.js';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 429: ErrorBody };

/** Read API: search and get. Every path resolves its scope through `readScope`. */
export function queryRoutes(ctx: Context) {
  return async (app: App) => {
    app.get(
      '/logs',
      {
        schema: {
          summary: 'Search audit events (newest first, keyset pagination)',
          tags: ['query'],
          querystring: SearchQuery,
          response: {
            200: Type.Object({
              data: Type.Array(StoredEvent),
              next_cursor: Type.Union([Type.String(), Type.Null()]),
            }),
            ...errors,
          },
        },
      },
      async (request) =>
        searchEvents(ctx, readScope(request.principal, request.query.tenant_id), request.query),
    );
    app.get(
      '/logs/:id',
      {
        schema: {
          summary: 'Get one audit event',
          tags: ['query'],
          params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
          querystring: Type.Object(
            { tenant_id: SearchQuery.properties.tenant_id },
            { additionalProperties: false },
          ),
          response: { 200: StoredEvent, ...errors },
        },
      },
      async (request) => {
        const event = await getEvent(
          ctx,
          readScope(request.principal, request.query.tenant_id),
          request.params.id,
        );
        if (!event) throw new HttpError(404, 'not_found', 'no such event');
        return event;
      },
    );
  };
}
