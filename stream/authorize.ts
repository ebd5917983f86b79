import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { ErrorObject } from 'ajv';
import { decodeJwt } from 'jose';
import { type ReadRecord, recordRead } from '../infra/audit/self-audit.js';
import { type ReadScope, readScope } from '../infra/auth/access.js';
import { AuthError, type Principal } from '../infra/auth/principal.js';
import { extractBearer, type Verifier } from '../infra/auth/verifier.js';
import type { Context } from '../infra/context.js';
import { HttpError } from '../infra/http/errors.js';
import { createAjv } from '../infra/schema/validate.js';
import { decodeCursor } from '../query/cursor.js';
import { FILTER_NAMES, type StreamFilters, StreamQuery } from './protocol.js';

/** What a successful upgrade request grants: who, which events, and where to start. */
export interface StreamGrant {
  principal: Principal;
  scope: ReadScope;
  filters: StreamFilters;
  /** Replay events with a greater sequence first; absent to start at the live edge. */
  since: bigint | undefined;
  /** The token's `exp` in ms since the epoch: the stream closes then (4001). */
  expiresAt: number | undefined;
  /** Id of the subscription, carried by its self-audit event as `request_id`. */
  requestId: string;
}

const checkQuery = createAjv().compile<StreamQuery>(StreamQuery);
const MAX_SEQ = 9223372036854775807n;

/**
 * Authenticates and authorizes an upgrade request before any WebSocket exists. Throws
 * `AuthError` (401) for a missing or bad token, `HttpError` 400 for a bad query string, 403 for
 * a tenant the caller may not read, 404 for a tenant that does not exist and 503 when the
 * self-audit record cannot be written. The token is checked first, so an anonymous caller learns
 * nothing else from the answer.
 */
export async function authorizeUpgrade(
  ctx: Context,
  verifier: Verifier,
  req: IncomingMessage,
): Promise<StreamGrant> {
  const params = new URL(req.url ?? '/', 'http://stream.invalid').searchParams;
  const token = tokenOf(req.headers.authorization, params.getAll('access_token'));
  const principal = await verifier.verify(token);

  const query = parseQuery(params);
  const scope = readScope(principal, query.tenant_id);
  const filters: StreamFilters = {};
  for (const name of FILTER_NAMES) if (query[name] !== undefined) filters[name] = query[name];
  const since = query.since === undefined ? undefined : parseSince(query.since);
  const requestId = randomUUID();
  // Self-audit, fail closed: the subscription is recorded before the upgrade, so no event reaches
  // a client whose read is not on record (404 for a tenant that does not exist, 503 when the
  // record cannot be queued). The token is never part of the record.
  const { access_token: _token, ...asked } = query;
  const record: ReadRecord = {
    principal,
    tenantId: scope.tenantId,
    action: 'VIEW',
    operation: 'stream',
    requestId,
    filters: asked,
  };
  if (req.socket.remoteAddress) record.ip = req.socket.remoteAddress;
  if (req.headers['user-agent']) record.userAgent = req.headers['user-agent'];
  await recordRead(ctx, record);
  // verify() succeeded, so the token is a well-formed JWT with a numeric exp.
  const exp = decodeJwt(token).exp;
  return {
    principal,
    scope,
    filters,
    since,
    expiresAt: exp === undefined ? undefined : exp * 1000,
    requestId,
  };
}

/**
 * The header wins over the query parameter. The parameter exists for browsers, whose WebSocket API
 * cannot set headers; a URL can end up in proxy logs, so clients that can should use the header.
 */
function tokenOf(header: string | undefined, fromQuery: string[]): string {
  if (header !== undefined) return extractBearer(header);
  if (fromQuery.length === 1 && fromQuery[0]) return fromQuery[0];
  throw new AuthError(
    401,
    'missing_token',
    'expected an "Authorization: Bearer <token>" header or one access_token query parameter',
  );
}

function parseQuery(params: URLSearchParams): StreamQuery {
  const raw: Record<string, string> = {};
  for (const [key, value] of params) {
    if (Object.hasOwn(raw, key)) {
      throw new HttpError(400, 'validation_failed', 'invalid querystring', [
        { path: `querystring/${key}`, message: 'must be given at most once' },
      ]);
    }
    raw[key] = value;
  }
  if (!checkQuery(raw)) {
    throw new HttpError(
      400,
      'validation_failed',
      'invalid querystring',
      (checkQuery.errors ?? []).map((e) => issue(e)),
    );
  }
  return raw;
}

/** Same detail shape as the HTTP API's validation errors. */
export function issue(e: ErrorObject, part = 'querystring'): { path: string; message: string } {
  if (e.keyword === 'additionalProperties') {
    const name = String((e.params as { additionalProperty?: string }).additionalProperty);
    return { path: `${part}${e.instancePath}/${name}`, message: 'unknown parameter' };
  }
  if (e.keyword === 'required') {
    const name = String((e.params as { missingProperty?: string }).missingProperty);
    return { path: `${part}${e.instancePath}/${name}`, message: 'is required' };
  }
  return { path: `${part}${e.instancePath}`, message: e.message ?? 'is invalid' };
}

/** A sequence number, or a search cursor whose position is its sequence. */
function parseSince(raw: string): bigint {
  if (/^[0-9]{1,19}$/.test(raw)) {
    const seq = BigInt(raw);
    if (seq <= MAX_SEQ) return seq;
  } else {
    return BigInt(decodeCursor(raw).seq);
  }
  throw new HttpError(400, 'invalid_since', 'since is not a valid sequence number');
}
