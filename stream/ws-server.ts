import { type IncomingMessage, type Server, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import type { SocketServer, SocketServerOptions, StreamSocket } from './socket.js';

/** How long a refused client may take to read the refusal before its socket is destroyed. */
const REFUSAL_LINGER_MS = 5000;

/**
 * The `ws` implementation of the socket layer, attached to the fastify server's `upgrade` event
 * (`noServer`), so the stream shares the port, `/healthz` and `/metrics` of its daemon.
 * Authorization runs before `handleUpgrade`: a refused request is answered with a plain HTTP
 * response and never becomes a WebSocket.
 */
export function attachWsServer<T>(server: Server, options: SocketServerOptions<T>): SocketServer {
  // No compression: deflating every frame per client costs more CPU than the bandwidth it saves
  // on a fan-out, and permessage-deflate has a history of memory blow-ups.
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload: options.maxPayload,
  });
  let closed = false;

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Until ws owns the socket, a reset by the peer must not become an uncaught error.
    const swallow = () => {};
    socket.on('error', swallow);
    void (async () => {
      if (closed) return refuse(socket, 503, 'shutting_down', 'the stream service is shutting down');
      if (pathOf(req.url) !== options.path) return refuse(socket, 404, 'not_found', 'no such route');
      const decision = await options.accept(req);
      if (socket.destroyed) return;
      if (!decision.ok) return writeRefusal(socket, decision.status, decision.body, decision.headers);
      wss.handleUpgrade(req, socket, head, (ws) => {
        socket.off('error', swallow);
        options.open(wrap(ws), decision.grant);
      });
    })().catch(() => refuse(socket, 500, 'internal_error', 'internal error'));
  };
  server.on('upgrade', onUpgrade);

  return {
    close() {
      closed = true;
      server.off('upgrade', onUpgrade);
      wss.close();
    },
  };
}

function pathOf(url: string | undefined): string {
  const q = url?.indexOf('?') ?? -1;
  return q === -1 ? (url ?? '') : (url ?? '').slice(0, q);
}

function refuse(socket: Duplex, status: number, code: string, message: string): void {
  writeRefusal(socket, status, { error: { code, message } });
}

/** A complete HTTP/1.1 response on the raw socket, then close: the upgrade never happens. */
function writeRefusal(socket: Duplex, status: number, body: unknown, headers: Record<string, string> = {}) {
  if (socket.destroyed) return;
  const text = JSON.stringify(body);
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(text)}`,
    'Connection: close',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${text}`);
  setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
}

function wrap(ws: WebSocket): StreamSocket {
  return {
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    send(text, done) {
      // Text frames even for buffers (ws would send a buffer as binary by default).
      ws.send(text, { binary: false }, done);
    },
    sendShared(texts, done) {
      const socket = socketOf(ws);
      if (ws.readyState !== ws.OPEN || !socket) {
        process.nextTick(done, new Error('the WebSocket is not open'));
        return;
      }
      // Straight to the TCP socket, past ws's sender: with per-message deflate off (see above) it
      // writes every frame synchronously, so frames keep their order with ws's own (control
      // frames, close), and ws.bufferedAmount still counts these bytes.
      const frames = texts.map(sharedFrame);
      socket.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames), (err) => done(err ?? undefined));
    },
    cork() {
      socketOf(ws)?.cork();
    },
    uncork() {
      socketOf(ws)?.uncork();
    },
    ping() {
      ws.ping();
    },
    close(code, reason) {
      ws.close(code, reason);
    },
    terminate() {
      ws.terminate();
    },
    listen(handlers) {
      ws.on('message', (data: RawData, isBinary: boolean) => handlers.message(text(data), isBinary));
      ws.on('pong', () => handlers.pong());
      ws.on('close', (code: number) => handlers.close(code));
      // ws emits 'close' after any 'error' (bad frame, reset), so errors need no handling of their own.
      ws.on('error', () => {});
    },
  };
}

/** Each shared text's whole frame, built once for every socket it is written to. */
const sharedFrames = new WeakMap<Buffer, Buffer>();

function sharedFrame(text: Buffer): Buffer {
  let frame = sharedFrames.get(text);
  if (!frame) {
    frame = textFrame(text);
    sharedFrames.set(text, frame);
  }
  return frame;
}

/**
 * A final, unmasked text frame carrying `payload` (RFC 6455 §5.2): what a server sends, and the
 * same bytes for every client, unlike a client's masked frames.
 */
export function textFrame(payload: Buffer): Buffer {
  const n = payload.length;
  const header = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + n);
  frame[0] = 0x81; // FIN, opcode 1 (text)
  if (n < 126) frame[1] = n;
  else if (n < 65536) {
    frame[1] = 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
    frame.writeUInt32BE(n >>> 0, 6);
  }
  payload.copy(frame, header);
  return frame;
}

/**
 * The TCP socket under a ws WebSocket. ws has no public cork, but its sender writes each frame
 * with a nested cork/uncork, so an outer cork on the same socket batches frames into one writev.
 */
function socketOf(ws: WebSocket): Duplex | undefined {
  return (ws as unknown as { _socket?: Duplex })._socket;
}

function text(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString();
  if (Array.isArray(data)) return Buffer.concat(data).toString();
  return Buffer.from(data).toString();
}
