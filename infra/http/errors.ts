import type { FastifyError, FastifyInstance } from 'fastify';
import { AuthError } from '../auth/principal.js';

/**
 * Every error a client sees: `{"error": {"code", "message", "details"?}}`. Codes are stable and
 * machine-readable; messages are for humans and never carry another tenant's data or a stack.
 */
export class HttpError extends Error {
  constructor(
    readonly statusCode: 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 503,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export const ErrorBody = {
  type: 'object',
  description:
    'Error. `error.code` is stable and machine-readable; `details` lists problems when there are several.',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' }, details: {} },
    },
  },
} as const;

/** Fastify's own client-error codes mapped to ours. */
const FASTIFY_CODES: Record<string, [number, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'payload_too_large'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'invalid_content_length'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'invalid_json'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'invalid_json'],
};

function send(
  reply: import('fastify').FastifyReply,
  status: number,
  code: string,
  message: string,
  details?: unknown,
) {
  return reply
    .status(status)
    .type('application/json')
    .send({ error: details === undefined ? { code, message } : { code, message, details } });
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof HttpError) return send(reply, err.statusCode, err.code, err.message, err.details);
    if (err instanceof AuthError) return send(reply, err.status, err.code, err.message);
    if (err.validation) {
      const part = err.validationContext ?? 'request';
      const details = err.validation.map((v) => ({
        path: `${part}${v.instancePath || ''}${
          v.keyword === 'additionalProperties'
            ? `/${(v.params as { additionalProperty?: string }).additionalProperty}`
            : v.keyword === 'required'
              ? `/${(v.params as { missingProperty?: string }).missingProperty}`
              : ''
        }`,
        message: v.keyword === 'additionalProperties' ? 'unknown parameter' : (v.message ?? 'is invalid'),
      }));
      return send(reply, 400, 'validation_failed', `invalid ${part}`, details);
    }
    const mapped = err.code ? FASTIFY_CODES[err.code] : undefined;
    if (mapped) return send(reply, mapped[0], mapped[1], err.message);
    if (err instanceof SyntaxError || err.code?.startsWith('FST_ERR_CTP')) {
      return send(reply, 400, 'invalid_json', 'request body is not valid JSON');
    }
    if (err.statusCode === 429) return send(reply, 429, 'rate_limited', 'rate limit exceeded; retry later');
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return send(reply, err.statusCode, 'bad_request', 'the request could not be processed');
    }
    request.log.error({ err }, 'unhandled error');
    return send(reply, 500, 'internal_error', 'internal error');
  });
  app.setNotFoundHandler((_request, reply) => send(reply, 404, 'not_found', 'no such route'));
}
