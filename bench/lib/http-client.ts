import http from 'node:http';
import { performance } from 'node:perf_hooks';

/** One finished request. `ms` spans from sending the request to the end of the response body. */
export interface HttpResult {
  status: number;
  /** The body, unless a `sink` consumed it. */
  body: Buffer;
  /** Bytes of body received. */
  bytes: number;
  ms: number;
}

export interface RequestOptions {
  token?: string;
  /** A JSON body, already serialized (load generators pre-serialize, to keep the client cheap). */
  body?: string | Buffer;
  headers?: Record<string, string>;
  /** Receives the body chunk by chunk instead of buffering it (exports of millions of rows). */
  sink?: (chunk: Buffer) => void;
  /** Aborts the request after this long (the result then rejects). */
  timeoutMs?: number;
}

/**
 * A keep-alive HTTP/1.1 client on `node:http`: up to `maxSockets` requests in flight on reused
 * connections. The load generators use it rather than `fetch`, whose per-request overhead would
 * take CPU from the server on a two-core machine.
 */
export class HttpClient {
  private readonly agent: http.Agent;

  constructor(
    readonly base: string,
    maxSockets = 64,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  request(method: string, path: string, options: RequestOptions = {}): Promise<HttpResult> {
    const headers: Record<string, string | number> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.body !== undefined) {
      headers['content-type'] ??= 'application/json';
      headers['content-length'] = Buffer.byteLength(options.body);
    }
    const url = new URL(path, this.base);
    return new Promise((resolve, reject) => {
      const started = performance.now();
      const req = http.request(
        {
          agent: this.agent,
          method,
          host: url.hostname,
          port: url.port,
          path: url.pathname + url.search,
          headers,
          ...(options.timeoutMs ? { timeout: options.timeoutMs } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let bytes = 0;
          res.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            if (options.sink) options.sink(chunk);
            else chunks.push(chunk);
          });
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              body: Buffer.concat(chunks),
              bytes,
              ms: performance.now() - started,
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`request timed out: ${method} ${path}`)));
      req.on('error', reject);
      if (options.body !== undefined) req.end(options.body);
      else req.end();
    });
  }

  /** GET returning parsed JSON; throws with the body on a status other than `expect`. */
  async json<T = any>(path: string, token: string, expect = 200): Promise<T> {
    const res = await this.request('GET', path, { token });
    if (res.status !== expect) {
      throw new Error(`GET ${path}: HTTP ${res.status} ${res.body.toString('utf8').slice(0, 300)}`);
    }
    return JSON.parse(res.body.toString('utf8')) as T;
  }

  close(): void {
    this.agent.destroy();
  }
}
