import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { StreamSocket } from './socket.js';
import { attachWsServer, textFrame } from './ws-server.js';

/** A server whose one route hands each opened socket to `opened`, and a real `ws` client of it. */
async function connect(): Promise<{
  server: Server;
  socket: StreamSocket;
  client: WebSocket;
  got: string[];
}> {
  const server = createServer();
  let opened!: (s: StreamSocket) => void;
  const socket = new Promise<StreamSocket>((resolve) => {
    opened = resolve;
  });
  attachWsServer(server, {
    path: '/s',
    maxPayload: 1024,
    accept: async () => ({ ok: true, grant: null }),
    open: (s) => {
      s.listen({ message: () => {}, pong: () => {}, close: () => {} });
      opened(s);
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const client = new WebSocket(`ws://127.0.0.1:${port}/s`);
  const got: string[] = [];
  client.on('message', (data: Buffer, isBinary: boolean) => {
    expect(isBinary).toBe(false);
    got.push(data.toString());
  });
  await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
  return { server, socket: await socket, client, got };
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

describe('textFrame', () => {
  it('encodes each payload length form of RFC 6455 §5.2', () => {
    const header = (n: number) => [
      ...textFrame(Buffer.alloc(n, 0x61)).subarray(0, n < 126 ? 2 : n < 65536 ? 4 : 10),
    ];
    expect(header(0)).toEqual([0x81, 0]);
    expect(header(125)).toEqual([0x81, 125]);
    expect(header(126)).toEqual([0x81, 126, 0, 126]);
    expect(header(65535)).toEqual([0x81, 126, 0xff, 0xff]);
    expect(header(65536)).toEqual([0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    const frame = textFrame(Buffer.from('é'));
    expect([...frame]).toEqual([0x81, 2, 0xc3, 0xa9]);
  });
});

describe('sendShared', () => {
  it('delivers shared frames of every length form intact and in order with other frames', async () => {
    const { server, socket, client, got } = await connect();
    servers.push(server);
    const texts = [0, 1, 125, 126, 127, 65535, 65536, 70_000].map((n, i) =>
      Buffer.from(`${i}:${'ü€𝄞x'.repeat(n)}`.slice(0, Math.max(2, n))),
    );
    const shared = Buffer.from('{"type":"event","shared":true}');
    const written: (Error | undefined)[] = [];
    socket.send('{"type":"ready"}', () => {});
    socket.sendShared(texts.slice(0, 4), (err) => written.push(err));
    socket.send(Buffer.from('{"type":"between"}'), () => {});
    socket.sendShared(texts.slice(4), (err) => written.push(err));
    // The same buffer on a second write reuses its frame.
    socket.sendShared([shared, shared], (err) => written.push(err));
    const want = [
      '{"type":"ready"}',
      ...texts.slice(0, 4).map(String),
      '{"type":"between"}',
      ...texts.slice(4).map(String),
      String(shared),
      String(shared),
    ];
    await expect.poll(() => got.length, { timeout: 5000 }).toBe(want.length);
    expect(got).toEqual(want);
    expect(written).toEqual([undefined, undefined, undefined]);
    client.close();
  });

  it('reports an error, and writes nothing, once the socket is closing', async () => {
    const { server, socket, client, got } = await connect();
    servers.push(server);
    socket.close(1000, 'bye');
    const err = await new Promise<Error | undefined>((resolve) =>
      socket.sendShared([Buffer.from('late')], resolve),
    );
    expect(err?.message).toMatch(/not open/);
    const closed = await new Promise<number>((resolve) => client.once('close', resolve));
    expect(closed).toBe(1000);
    expect(got).toEqual([]);
  });
});
