import { buildApp } from 'fauxqs';

/** A running in-process fauxqs (SQS/SNS/S3 emulator, state in memory). */
export interface FauxqsServer {
  /** Base URL for `SQSClient({ endpoint })`, e.g. `http://127.0.0.1:41234`. */
  endpoint: string;
  stop(): Promise<void>;
}

/**
 * Starts fauxqs on 127.0.0.1 with an OS-assigned port and request logging off. fauxqs's own
 * `startFauxqs` and CLI listen on 0.0.0.0, so we build the app and choose the interface ourselves.
 * Queue URLs it returns name `sqs.<region>.localhost`; clients must set `endpoint` explicitly,
 * which makes the SDK ignore the URL's host.
 */
export async function startFauxqs(): Promise<FauxqsServer> {
  const app = buildApp({ logger: false });
  const endpoint = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    endpoint,
    // Closing also cancels pending long polls (fauxqs's preClose hook) and open keep-alive sockets.
    stop: async () => {
      await app.close();
    },
  };
}
