import WebSocket from 'ws';

/** Outcome of opening the live stream: an open socket, or why the service has none. */
export type StreamOpen = { socket: WebSocket } | { unavailable: string };

/**
 * Opens `WS /api/v1/logs/stream` with `params` and waits for the server's `live` frame (replay
 * done, live events follow). A refused upgrade (404 when this build has no stream service, 426
 * when the path is served without WebSocket support) is reported, not thrown, so a scenario can
 * skip the stream part.
 */
export function openStream(
  base: string,
  token: string,
  params: Record<string, string>,
  onFrame: (frame: any, at: number) => void,
): Promise<StreamOpen> {
  const url = new URL(`/api/v1/logs/stream?${new URLSearchParams(params)}`, base.replace(/^http/, 'ws'));
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    let settled = false;
    const done = (value: StreamOpen) => {
      if (!settled) {
        settled = true;
        resolve(value);
      }
    };
    socket.on('unexpected-response', (_req, res) => {
      done({ unavailable: `upgrade refused with HTTP ${res.statusCode}` });
      socket.terminate();
    });
    socket.on('message', (data) => {
      const at = performance.now();
      const frame = JSON.parse(data.toString());
      if (frame.type === 'live') done({ socket });
      else if (frame.type === 'error' && !settled) done({ unavailable: `stream error ${frame.error?.code}` });
      onFrame(frame, at);
    });
    socket.on('error', (err) => {
      if (!settled) {
        settled = true;
        reject(err);
      }
    });
    socket.on('close', (code, reason) => done({ unavailable: `closed ${code} ${reason.toString()}` }));
  });
}
