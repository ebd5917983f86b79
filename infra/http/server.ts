import { createHash, randomUUID } from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance, LogController } from 'fastify';
import type { Principal } from '../auth/principal.js';
import { extractBearer, type Verifier } from '../auth/verifier.js';
import type { Context } from '../context.js';
import { renderMetrics } from '../metrics/registry.js';
import { LIMITS } from '../schema/event.js';
import { createAjv } from '../schema/validate.js';
import { installErrorHandling } from './errors.js';
import { schemaExamplesToExample } from './openapi-examples.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
}

export type App = FastifyInstance<
  import('node:http').Server,
  import('node:http').IncomingMessage,
  import('node:http').ServerResponse,
  import('fastify').FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export interface ServerOptions {
  /** Registers this daemon's routes under `/api/v1`; they all require a valid token. */
  routes: ((app: App) => Promise<void> | void)[];
  verifier: Verifier;
  /** Extra readiness condition for `/healthz` (e.g. a stage runner still starting). */
  ready?: () => boolean;
}

const bodyAjv = createAjv();
const queryAjv = createAjv();
queryAjv.opts.coerceTypes = 'array';
queryAjv.opts.useDefaults = true;

/**
 * The HTTP shell shared by every daemon: error format, per-token rate limit, metrics, health,
 * OpenAPI, and JWT authentication in front of every `/api/v1` route.
 */
export async function buildServer(ctx: Context, options: ServerOptions): Promise<App> {
  const app = Fastify({
    logger: { level: ctx.config.LOG_LEVEL },
    bodyLimit: LIMITS.bulkBytes,
    // Explicit timeouts: a slow client cannot hold a connection forever. Exports stream, so the
    // request timeout bounds only the time to receive the request.
    requestTimeout: 30_000,
    connectionTimeout: 0,
    keepAliveTimeout: 65_000,
    // Request ids end up in self-audit events (request_id) and responses (x-request-id): they must
    // be unique across processes and restarts, which fastify's default `req-<n>` counter is not.
    genReqId: () => randomUUID(),
    // Per-request log lines would dominate at ingest rates; metrics cover request outcomes.
    logController: new LogController({ disableRequestLogging: true }),
    // Response serialization trusts our own data; `ip` is only a validation format.
    serializerOpts: { ajv: { formats: { ip: true } } },
    ajv: { customOptions: { allErrors: true } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setValidatorCompiler(({ schema, httpPart }) =>
    httpPart === 'body' ? bodyAjv.compile(schema) : queryAjv.compile(schema),
  );
  installErrorHandling(app);
  // Fastify parses text/plain by default, which would hand a JSON-shaped string to the routes and
  // answer 400 instead of 415. Every body this API takes is JSON. (fetch and curl send text/plain
  // for a string body without an explicit type, so this is the common mistake.)
  app.removeContentTypeParser('text/plain');

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    ctx.metrics.httpDuration.observe(
      { method: request.method, route, status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  await app.register(swagger, {
    transformObject: (documents) =>
      schemaExamplesToExample(
        'openapiObject' in documents ? documents.openapiObject : documents.swaggerObject,
      ),
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'auditlog',
        version: '1.0.0',
        description:
          'Multi-tenant audit-log service: ingest, search, export, stream and verify audit events.',
      },
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      },
      security: [{ bearerAuth: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  await app.register(rateLimit, {
    max: ctx.config.RATE_LIMIT_MAX,
    timeWindow: ctx.config.RATE_LIMIT_WINDOW_MS,
    // Per token (hashed; the token itself is never a map key) or per address when there is none.
    keyGenerator: (request) => {
      const auth = request.headers.authorization;
      return auth ? createHash('sha256').update(auth).digest('base64url') : `ip:${request.ip}`;
    },
    allowList: (request) => request.url === '/healthz' || request.url === '/metrics',
  });

  app.get('/healthz', { schema: { hide: true } }, async (_request, reply) => {
    if (options.ready && !options.ready()) return reply.status(503).send({ status: 'starting' });
    return { status: 'ok' };
  });
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    reply.type(ctx.metrics.registry.contentType);
    return renderMetrics(ctx.metrics);
  });

  await app.register(
    async (api) => {
      api.decorateRequest('principal', null as unknown as Principal);
      api.addHook('onRequest', async (request) => {
        request.principal = await options.verifier.verify(extractBearer(request.headers.authorization));
      });
      for (const register of options.routes) await register(api);
    },
    { prefix: '/api/v1' },
  );
  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
