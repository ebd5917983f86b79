import Type, { type Static } from 'typebox';
import { FilterProperties } from '../query/filters.js';

/**
 * The wire protocol of `WS /api/v1/logs/stream`: query string, client messages, server frames and
 * close codes. The README documents it from these definitions.
 */

/**
 * Close codes the server sends. Every one except 1011 carries a JSON reason
 * `{"code": "...", "since": "<sequence>"}`: reconnect with `since=<sequence>` to resume without a
 * gap or a duplicate.
 */
export const CLOSE = Object.freeze({
  /** The stream instance is shutting down. */
  goingAway: 1001,
  /** An unexpected server error; reconnect with the last sequence you received. */
  internalError: 1011,
  /** Nothing was sent or received for `STREAM_IDLE_TIMEOUT_MS`. */
  idle: 4000,
  /** The token's `exp` has passed; reconnect with a fresh token. */
  tokenExpired: 4001,
  /** The client did not read fast enough: its send buffer passed its bound. */
  slowConsumer: 4008,
});

/** The `code` in a close reason, per close code. */
export type CloseReason =
  | 'going_away'
  | 'internal_error'
  | 'idle_timeout'
  | 'token_expired'
  | 'slow_consumer';

/** Filters a subscription can set: the search filters that apply to single events (no time range). */
export const StreamFilters = Type.Object(
  {
    action: FilterProperties.action,
    severity: FilterProperties.severity,
    resource_type: FilterProperties.resource_type,
    resource_id: FilterProperties.resource_id,
    user_id: FilterProperties.user_id,
    request_id: FilterProperties.request_id,
  },
  { additionalProperties: false },
);
export type StreamFilters = Static<typeof StreamFilters>;

/** Names of {@link StreamFilters}, in a fixed order. */
export const FILTER_NAMES = Object.keys(StreamFilters.properties) as (keyof StreamFilters)[];

/** The query string of the upgrade request. Unknown parameters are refused with 400. */
export const StreamQuery = Type.Object(
  {
    ...StreamFilters.properties,
    tenant_id: FilterProperties.tenant_id,
    since: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 512,
        description:
          'Resume point: a sequence number (events with a greater sequence are replayed first) or a search next_cursor.',
      }),
    ),
    access_token: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 8192,
        description: 'JWT for clients that cannot set an Authorization header (browsers).',
      }),
    ),
  },
  { additionalProperties: false },
);
export type StreamQuery = Static<typeof StreamQuery>;

/** `{"type":"subscribe","filters":{...}}`: replaces the filters for every event after the acknowledgement. */
export const SubscribeMessage = Type.Object(
  { type: Type.Literal('subscribe'), filters: StreamFilters },
  { additionalProperties: false, $id: 'StreamSubscribeMessage' },
);
export type SubscribeMessage = Static<typeof SubscribeMessage>;

/** `{"type":"ping"}`: an application-level keepalive (resets the idle timer); answered with `pong`. */
export const PingMessage = Type.Object(
  { type: Type.Literal('ping') },
  { additionalProperties: false, $id: 'StreamPingMessage' },
);

/** Largest client message accepted, in bytes; a bigger one closes the socket with 1009. */
export const MAX_CLIENT_MESSAGE_BYTES = 16 * 1024;

/**
 * Builds the frame for one event once, as UTF-8 bytes: the fan-out hands the same buffer to every
 * subscriber instead of serializing and encoding it per socket.
 */
export function eventFrame(event: unknown): Buffer {
  return Buffer.from(`{"type":"event","event":${JSON.stringify(event)}}`);
}

/** Control frames: everything the server sends that is not an event. */
export type ControlFrame =
  | { type: 'ready'; tenant_id: string; since: string; filters: StreamFilters; request_id: string }
  | { type: 'live'; since: string }
  | { type: 'subscribed'; since: string; filters: StreamFilters }
  | { type: 'pong' }
  | { type: 'error'; error: { code: string; message: string; details?: unknown } };

/**
 * The JSON close reason; at most 60 bytes, well under the 123 a close frame allows. `since` is
 * left out only when the stream closed before it had a position (before its `ready` frame).
 */
export function closeReason(code: CloseReason, since: bigint | undefined): string {
  return JSON.stringify(since === undefined ? { code } : { code, since: since.toString() });
}
