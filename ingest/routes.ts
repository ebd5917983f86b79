import Type from 'typebox';
import { requireWriter } from '../infra/auth/access.js';
import type { Context } from '../infra/context.js';
import { ErrorBody, HttpError } from '../infra/http/errors.js';
import type { App } from '../infra/http/server.js';
import { EventInput, LIMITS } from '../infra/schema/event.js';
import { EventTooLargeError } from '../infra/transport/split.js';
import { stageEvents } from './stage-events.js';

const Accepted = Type.Object({
  ids: Type.Array(Type.String({ format: 'uuid' })),
  accepted: Type.Integer(),
});

const errors = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  413: ErrorBody,
  415: ErrorBody,
  429: ErrorBody,
};

/** Permission comes before validation: a caller who may not write learns nothing from a 400 or 413. */
const writerOnly = async (request: { principal: Parameters<typeof requireWriter>[0] }) =>
  requireWriter(request.principal);

/** Events are validated by `validateEvent` (which reports every problem with its path), not by fastify. */
const passThrough = () => (data: unknown) => ({ value: data });

/** `POST /logs` and `POST /logs/bulk`: validate, then enqueue durably; 202 once the queue has it. */
export function ingestRoutes(ctx: Context) {
  async function accept(principal: Parameters<typeof stageEvents>[0], inputs: unknown[], indexed: boolean) {
    const batches = stageEvents(principal, inputs, indexed);
    const unknown = await ctx.tenants.unknown(batches.map((b) => b.tenant_id));
    if (unknown.length > 0) {
      throw new HttpError(404, 'tenant_not_found', 'the event names a tenant that does not exist');
    }
    try {
      await ctx.enqueue.enqueue(batches);
    } catch (err) {
      if (err instanceof EventTooLargeError) throw new HttpError(413, 'event_too_large', err.message);
      throw err;
    }
    const ids = batches.flatMap((b) => b.events.map((e) => e.id));
    ctx.metrics.eventsEnqueued.inc(ids.length);
    return { ids, accepted: ids.length };
  }

  return async (app: App) => {
    app.post(
      '/logs',
      {
        schema: {
          summary: 'Record one audit event',
          tags: ['ingest'],
          body: EventInput,
          response: { 202: Accepted, ...errors },
        },
        bodyLimit: LIMITS.eventBytes * 2,
        preValidation: writerOnly,
        validatorCompiler: passThrough,
      },
      async (request, reply) => {
        reply.status(202);
        return accept(request.principal, [request.body], false);
      },
    );
    app.post(
      '/logs/bulk',
      {
        schema: {
          summary: `Record up to ${LIMITS.bulkEvents} audit events atomically`,
          description: 'The request is validated whole: if any event is invalid, none is enqueued.',
          tags: ['ingest'],
          body: Type.Object(
            { events: Type.Array(EventInput, { minItems: 1, maxItems: LIMITS.bulkEvents }) },
            {
              examples: [
                {
                  events: [
                    ...((EventInput as { examples?: unknown[] }).examples ?? []),
                    { action: 'LOGIN', resource_type: 'session', user_id: 'u-42' },
                  ],
                },
              ],
            },
          ),
          response: { 202: Accepted, ...errors },
        },
        preValidation: writerOnly,
        validatorCompiler: () => {
          const check = (data: unknown) => {
            const body = data as { events?: unknown } | null;
            if (!body || typeof body !== 'object' || Array.isArray(body) || !Array.isArray(body.events)) {
              return { error: new HttpError(400, 'validation_failed', 'body must be {"events": [...]}') };
            }
            const extra = Object.keys(body).filter((k) => k !== 'events');
            if (extra.length > 0) {
              return {
                error: new HttpError(
                  400,
                  'validation_failed',
                  'unknown field',
                  extra.map((k) => ({ path: `/${k}`, message: 'unknown field' })),
                ),
              };
            }
            if (body.events.length === 0 || body.events.length > LIMITS.bulkEvents) {
              const status = body.events.length === 0 ? 400 : 413;
              return {
                error: new HttpError(
                  status,
                  status === 400 ? 'validation_failed' : 'too_many_events',
                  `events must hold 1 to ${LIMITS.bulkEvents} items`,
                ),
              };
            }
            return { value: body };
          };
          return check;
        },
      },
      async (request, reply) => {
        reply.status(202);
        return accept(request.principal, (request.body as { events: unknown[] }).events, true);
      },
    );
  };
}
