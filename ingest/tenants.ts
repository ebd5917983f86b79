import Type from 'typebox';
import { requirePlatformAdmin } from '../infra/auth/access.js';
import type { Context } from '../infra/context.js';
import { ErrorBody, HttpError } from '../infra/http/errors.js';
import type { App } from '../infra/http/server.js';
import { TENANT_ID_PATTERN } from '../infra/schema/event.js';

const Tenant = Type.Object({
  id: Type.String({ pattern: TENANT_ID_PATTERN }),
  name: Type.String(),
  created_at: Type.String({ format: 'date-time' }),
});

/** Tenant management, for platform admins only. */
export function tenantRoutes(ctx: Context) {
  return async (app: App) => {
    app.post(
      '/tenants',
      {
        schema: {
          summary: 'Create a tenant (platform admin)',
          tags: ['tenants'],
          body: Type.Object(
            {
              id: Type.String({ pattern: TENANT_ID_PATTERN, examples: ['acme'] }),
              name: Type.String({ minLength: 1, maxLength: 256, examples: ['Acme'] }),
            },
            { additionalProperties: false },
          ),
          response: { 201: Tenant, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 409: ErrorBody },
        },
        // Before body validation: a caller without the role gets 403 whatever it sends.
        preValidation: async (request) => requirePlatformAdmin(request.principal),
      },
      async (request, reply) => {
        requirePlatformAdmin(request.principal);
        const created = await ctx.tenants.create(request.body.id, request.body.name);
        if (!created) throw new HttpError(409, 'tenant_exists', 'a tenant with this id already exists');
        reply.status(201);
        return created;
      },
    );
    app.get(
      '/tenants',
      {
        schema: {
          summary: 'List tenants (platform admin)',
          tags: ['tenants'],
          response: { 200: Type.Object({ data: Type.Array(Tenant) }), 401: ErrorBody, 403: ErrorBody },
        },
      },
      async (request) => {
        requirePlatformAdmin(request.principal);
        return { data: await ctx.tenants.list() };
      },
    );
  };
}
