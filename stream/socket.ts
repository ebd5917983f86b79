import type { IncomingMessage, Server } from 'node:http';

/**
 * The socket layer the stream service needs, and nothing more. `ws-server.ts` implements it with
 * `ws`; uWebSockets.js (which cannot be installed here, see DESIGN.md) would implement the same
 * two interfaces where it installs. Nothing outside `ws-server.ts` imports `ws`.
 */
export interface StreamSocket {
  /** Bytes accepted by `send` but not yet handed to the operating system. */
  readonly bufferedAmount: number;
  /**
   * Queues a text frame (a string, or its UTF-8 bytes) without blocking; `done` runs once it is
   * written or has failed. A buffer may be shared between sockets and must not be modified.
   */
  send(text: Buffer | string, done: (err?: Error) => void): void;
  /**
   * Writes several text frames at once, with one write to the operating system; `done` runs once
   * they are written or have failed. Meant for a live event's frame, which is the same for every
   * subscriber: an implementation may derive the whole frame from the buffer once and reuse it
   * on every socket for as long as the buffer lives (uWebSockets.js has `publish` for the same).
   * The buffers must not be modified.
   */
  sendShared(texts: readonly Buffer[], done: (err?: Error) => void): void;
  /**
   * Holds written frames until `uncork`, which writes them with one system call. Calls pair up;
   * uWebSockets.js offers the same as `ws.cork(fn)`.
   */
  cork(): void;
  uncork(): void;
  ping(): void;
  /** Starts the closing handshake; frames already queued are sent before the close frame. */
  close(code: number, reason: string): void;
  /** Drops the connection at once. */
  terminate(): void;
  /** Installs the event handlers; called once, right after the socket opens. */
  listen(handlers: SocketHandlers): void;
}

export interface SocketHandlers {
  message(text: string, isBinary: boolean): void;
  pong(): void;
  /** Runs exactly once, whichever side closed. */
  close(code: number): void;
}

/** The answer to an upgrade request: a grant for the session, or a plain HTTP refusal. */
export type UpgradeDecision<T> =
  | { ok: true; grant: T }
  | { ok: false; status: number; body: unknown; headers?: Record<string, string> };

export interface SocketServerOptions<T> {
  /** The only path upgraded; every other upgrade request gets 404. */
  path: string;
  /** Largest client message in bytes; a bigger one closes the socket with 1009. */
  maxPayload: number;
  /** Decides before the upgrade: a refusal never becomes a WebSocket. */
  accept(req: IncomingMessage): Promise<UpgradeDecision<T>>;
  /** A socket that completed the upgrade. */
  open(socket: StreamSocket, grant: T): void;
}

export interface SocketServer {
  /** Stops taking upgrades (open sockets are the caller's to close). */
  close(): void;
}

/** Attaches WebSocket upgrades on `options.path` to an existing HTTP server. */
export type SocketServerFactory = <T>(server: Server, options: SocketServerOptions<T>) => SocketServer;
