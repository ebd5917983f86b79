import WebSocket from 'ws';
import type { StoredEvent } from '../infra/schema/event.js';
import { eventually, http } from '../test/harness.js';

/** A server frame, parsed; tests read and assert its fields directly. */
// biome-ignore lint/suspicious/noExplicitAny: test-only; every field read is asserted by the test.
export type Frame = any;

/** Test-only WebSocket client of the stream: records every frame and the close. */
export class StreamClient {
  /** Every frame received, parsed, in order. */
  readonly frames: Frame[] = [];
  /** The `event` frames' events, in order. */
  readonly events: StoredEvent[] = [];
  closed: { code: number; reason: string } | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      this.frames.push(frame);
      if (frame.type === 'event') this.events.push(frame.event);
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
    });
    ws.on('error', () => {});
  }

  /** Opens a stream and waits for its `live` frame (after any replay). */
  static async open(base: string, token: string, query: Record<string, string> = {}, viaQuery = false) {
    const client = await StreamClient.connect(base, token, query, viaQuery);
    await client.waitForFrame((f) => f.type === 'live');
    return client;
  }

  /** Opens a stream; resolves once the upgrade completed (before `ready`). */
  static connect(base: string, token: string, query: Record<string, string> = {}, viaQuery = false) {
    const ws = new WebSocket(streamUrl(base, viaQuery ? { ...query, access_token: token } : query), {
      headers: viaQuery ? {} : { authorization: `Bearer ${token}` },
    });
    const client = new StreamClient(ws);
    return new Promise<StreamClient>((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`refused with ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  sequences(): number[] {
    return this.events.map((e) => Number(e.sequence));
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  async waitForFrame(match: (frame: Frame) => boolean, timeoutMs?: number): Promise<Frame> {
    return eventually(async () => this.frames.find(match), timeoutMs);
  }

  /** Waits until an event with this sequence (or a later one) has arrived. */
  async waitForSequence(seq: number, timeoutMs?: number): Promise<void> {
    await eventually(
      async () => (this.events.some((e) => Number(e.sequence) >= seq) ? true : undefined),
      timeoutMs,
    );
  }

  /** Waits until events with all these ids have arrived. */
  async waitForIds(ids: (string | undefined)[], timeoutMs?: number): Promise<void> {
    await eventually(async () => {
      const got = new Set(this.events.map((e) => e.id));
      return ids.every((id) => id !== undefined && got.has(id)) ? true : undefined;
    }, timeoutMs);
  }

  async waitForClose(timeoutMs?: number): Promise<{ code: number; reason: string }> {
    return eventually(async () => this.closed, timeoutMs);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.ws.close(1000);
    await this.waitForClose();
  }
}

export function streamUrl(base: string, query: Record<string, string>): string {
  const qs = new URLSearchParams(query).toString();
  return `${base.replace(/^http/, 'ws')}/api/v1/logs/stream${qs ? `?${qs}` : ''}`;
}

/** Tries to open a stream that must be refused; returns the HTTP status and JSON body, or throws if it opened. */
export function refusal(
  base: string,
  query: Record<string, string>,
  headers: Record<string, string> = {},
  path = '/api/v1/logs/stream',
): Promise<{ status: number; body: Frame; headers: Record<string, unknown> }> {
  const qs = new URLSearchParams(query).toString();
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}${path}${qs ? `?${qs}` : ''}`, { headers });
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('the upgrade was accepted'));
    });
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => {
        text += chunk.toString();
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), headers: res.headers }),
      );
      res.on('error', reject);
    });
    ws.once('error', (err) => reject(err));
  });
}

/** Creates tenants as the platform admin. */
export async function createTenants(base: string, platformToken: string, ids: string[]): Promise<void> {
  for (const id of ids) {
    const res = await http(base, 'POST', '/api/v1/tenants', { token: platformToken, body: { id, name: id } });
    if (res.status !== 201) throw new Error(`tenant ${id}: ${res.status} ${res.text}`);
  }
}

/** Posts events in one bulk request; returns their ids in order. */
export async function ingest(base: string, token: string, events: object[]): Promise<string[]> {
  const res = await http(base, 'POST', '/api/v1/logs/bulk', { token, body: { events } });
  if (res.status !== 202) throw new Error(`ingest: ${res.status} ${res.text}`);
  return res.body.ids;
}

/** 1..n */
export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
