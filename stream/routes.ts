import { ErrorBody } from '../infra/http/errors.js';
import type { App } from '../infra/http/server.js';
import { FILTER_NAMES } from './protocol.js';

/**
 * `GET /api/v1/logs/stream` without an upgrade: answers 426 and documents the WebSocket protocol
 * in the OpenAPI document. Upgrade requests never reach fastify: `ws-server.ts` takes them from
 * the server's `upgrade` event.
 */
export function streamRoutes() {
  return async (app: App) => {
    app.get(
      '/logs/stream',
      {
        schema: {
          summary: 'Live tail of audit events over WebSocket',
          description: [
            'Open with a WebSocket upgrade. Authenticate with `Authorization: Bearer <token>` or the',
            '`access_token` query parameter. Query parameters: `tenant_id` (platform admins),',
            `\`since\` (sequence or search cursor to resume after), and the filters ${FILTER_NAMES.join(', ')}.`,
            'Server frames: `ready`, `event`, `live`, `subscribed`, `pong`, `error`. Client messages:',
            '`{"type":"subscribe","filters":{...}}` and `{"type":"ping"}`. Close codes 1001 (going away),',
            '4000 (idle), 4001 (token expired) and 4008 (slow consumer) carry the JSON reason',
            '`{"code","since"}`: reconnect with `since` to resume without gap or duplicate.',
          ].join(' '),
          tags: ['stream'],
          response: { 426: ErrorBody, 401: ErrorBody },
        },
      },
      async (_request, reply) =>
        reply
          .status(426)
          .header('upgrade', 'websocket')
          .send({ error: { code: 'upgrade_required', message: 'this endpoint speaks WebSocket only' } }),
    );
  };
}
