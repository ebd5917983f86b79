import type { ClientRequest, IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { Client, Connection } from '@opensearch-project/opensearch';
import type { Logger } from 'pino';
import { SearchIndex } from './opensearch.js';

/**
 * Test support (no OpenSearch server can run here): a real client whose `Connection` records
 * every request and answers from a script instead of the network. Everything above the socket
 * (serialization, NDJSON, status handling, our retries) is the real code.
 */

/** One request as it would have gone over the wire. */
export interface RecordedRequest {
  method: string;
  /** Path with the query string, e.g. `/_bulk?require_alias=true`. */
  url: string;
  /** The body exactly as sent (NDJSON for bulk), or '' when none. */
  body: string;
}

/** An answer: a status and a JSON body (omitted for HEAD). */
export interface CannedResponse {
  status: number;
  body?: unknown;
}

/** Decides the answer to each request; `undefined` falls back to a plausible success. */
export type Responder = (req: RecordedRequest) => CannedResponse | undefined;

/** A plausible success for each request our adapter makes. */
export function defaultResponse(req: RecordedRequest): CannedResponse {
  if (req.method === 'HEAD') return { status: 404 };
  if (req.url.startsWith('/_bulk')) {
    const items = req.body
      .split('\n')
      .filter((l, i) => l !== '' && i % 2 === 0)
      .map((l) => {
        const action = JSON.parse(l) as { index: { _index: string; _id: string } };
        return {
          index: { _index: action.index._index, _id: action.index._id, status: 201, result: 'created' },
        };
      });
    return { status: 200, body: { took: 1, errors: false, items } };
  }
  if (req.url.includes('/_search')) {
    return { status: 200, body: { took: 1, timed_out: false, hits: { hits: [] } } };
  }
  return { status: 200, body: { acknowledged: true } };
}

/** A Connection class bound to `requests` (appended to) and `respond`. */
export function recordingConnection(requests: RecordedRequest[], respond: Responder = () => undefined) {
  return class RecordingConnection extends Connection {
    override request(
      params: Parameters<Connection['request']>[0],
      callback: Parameters<Connection['request']>[1],
    ): ClientRequest {
      const body = params.body;
      const recorded: RecordedRequest = {
        method: params.method ?? 'GET',
        url: params.querystring ? `${params.path}?${params.querystring}` : (params.path ?? '/'),
        // The adapter never streams bodies (the client would not retry them); strings and buffers only.
        body: typeof body === 'string' || Buffer.isBuffer(body) ? body.toString() : '',
      };
      requests.push(recorded);
      const answer = respond(recorded) ?? defaultResponse(recorded);
      const payload = answer.body === undefined ? '' : JSON.stringify(answer.body);
      const response = Object.assign(
        Readable.from(payload === '' ? [] : [Buffer.from(payload)], { objectMode: false }),
        {
          statusCode: answer.status,
          headers: {
            'content-type': 'application/json; charset=UTF-8',
            'content-length': String(Buffer.byteLength(payload)),
          },
        },
      );
      process.nextTick(callback, null, response as unknown as IncomingMessage);
      return { abort() {} } as unknown as ClientRequest;
    }
  };
}

/**
 * A SearchIndex on a recording connection. Backoff sleeps are recorded in `sleeps` instead of
 * waited (jitter fixed at the midpoint), so retry tests assert the delays without timing anything.
 */
export function recordingSearchIndex(
  log: Logger,
  options: { respond?: Responder; maxRetries?: number; prefix?: string } = {},
) {
  const requests: RecordedRequest[] = [];
  const sleeps: number[] = [];
  const client = new Client({
    node: 'http://opensearch.test:9200',
    maxRetries: 0,
    Connection: recordingConnection(requests, options.respond),
  });
  const index = new SearchIndex(client, {
    prefix: options.prefix ?? 'auditlog-events',
    maxRetries: options.maxRetries ?? 5,
    log,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    random: () => 0.5,
  });
  return { index, requests, sleeps };
}
