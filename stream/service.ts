import type { Server } from 'node:http';
import { AuthError } from '../infra/auth/principal.js';
import type { Verifier } from '../infra/auth/verifier.js';
import type { Context } from '../infra/context.js';
import { HttpError } from '../infra/http/errors.js';
import { authorizeUpgrade, type StreamGrant } from './authorize.js';
import { Feed } from './feed.js';
import { createStreamMetrics } from './metrics.js';
import { MAX_CLIENT_MESSAGE_BYTES } from './protocol.js';
import { StreamSession } from './session.js';
import type { SocketServerFactory, UpgradeDecision } from './socket.js';
import { attachWsServer } from './ws-server.js';

/** The stream endpoint. */
export const STREAM_PATH = '/api/v1/logs/stream';
/** How long shutdown waits for clients to answer the 1001 close before dropping them. */
const SHUTDOWN_GRACE_MS = 3000;

export interface StreamService {
  /** Open stream sockets right now (including ones closing). */
  readonly sessions: number;
  /**
   * Stops taking upgrades, closes every client with 1001 and its resume point, waits for them
   * (at most a few seconds) and closes the LISTEN connection. Idempotent.
   */
  close(): Promise<void>;
}

/**
 * Starts the stream service on an existing HTTP server (the daemon's fastify server). The socket
 * layer is `ws` unless another {@link SocketServerFactory} is given.
 */
export async function startStream(
  ctx: Context,
  server: Server,
  verifier: Verifier,
  factory: SocketServerFactory = attachWsServer,
): Promise<StreamService> {
  const { config } = ctx;
  const metrics = createStreamMetrics(ctx.metrics.registry);
  const feed = new Feed(ctx);
  await feed.start();
  /** Every session whose socket is still open, including ones closing (e.g. a slow consumer's). */
  const sessions = new Set<StreamSession>();
  const limits = {
    maxBufferedBytes: config.STREAM_MAX_BUFFERED_BYTES,
    maxQueue: config.STREAM_MAX_QUEUE,
    heartbeatMs: config.STREAM_HEARTBEAT_MS,
    idleTimeoutMs: config.STREAM_IDLE_TIMEOUT_MS,
  };

  const sockets = factory<StreamGrant>(server, {
    path: STREAM_PATH,
    maxPayload: MAX_CLIENT_MESSAGE_BYTES,
    async accept(req): Promise<UpgradeDecision<StreamGrant>> {
      const decision = await decide(ctx, verifier, req, sessions.size);
      if (!decision.ok) metrics.refused.inc({ status: String(decision.status) });
      return decision;
    },
    open(socket, grant) {
      const session = new StreamSession(
        { ctx, feed, metrics, limits, gone: (s) => sessions.delete(s) },
        socket,
        grant,
      );
      sessions.add(session);
      void session.start();
    },
  });

  const heartbeat = setInterval(() => {
    const now = Date.now();
    for (const session of sessions) session.tick(now);
  }, config.STREAM_HEARTBEAT_MS);
  heartbeat.unref();

  let closing: Promise<void> | undefined;
  return {
    get sessions() {
      return sessions.size;
    },
    close() {
      closing ??= (async () => {
        sockets.close();
        clearInterval(heartbeat);
        const open = [...sessions];
        for (const session of open) session.goAway();
        await waitUntil(() => open.every((s) => s.isGone), SHUTDOWN_GRACE_MS);
        for (const session of open) if (!session.isGone) session.terminate();
        await feed.stop();
      })();
      return closing;
    },
  };
}

async function decide(
  ctx: Context,
  verifier: Verifier,
  req: import('node:http').IncomingMessage,
  open: number,
): Promise<UpgradeDecision<StreamGrant>> {
  try {
    if (open >= ctx.config.STREAM_MAX_CONNECTIONS) {
      return refusal(503, 'too_many_connections', 'this stream instance is full; retry on another');
    }
    return { ok: true, grant: await authorizeUpgrade(ctx, verifier, req) };
  } catch (err) {
    if (err instanceof AuthError) {
      const headers: Record<string, string> = err.status === 401 ? { 'WWW-Authenticate': 'Bearer' } : {};
      return { ...refusal(err.status, err.code, err.message), headers };
    }
    if (err instanceof HttpError) return refusal(err.statusCode, err.code, err.message, err.details);
    ctx.log.error({ err }, 'stream upgrade failed');
    return refusal(500, 'internal_error', 'internal error');
  }
}

function refusal(status: number, code: string, message: string, details?: unknown) {
  return {
    ok: false as const,
    status,
    body: { error: details === undefined ? { code, message } : { code, message, details } },
  };
}

async function waitUntil(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}
