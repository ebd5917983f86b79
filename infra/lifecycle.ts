import type { Logger } from 'pino';

/**
 * Runs a daemon until SIGTERM/SIGINT. The first signal stops it gracefully (stop receiving,
 * drain in-flight work, close pools) and exits 0; a second signal exits at once with code 1.
 * A failure to start, or to stop, exits 1: a script never logs an error and exits 0.
 */
export async function runUntilSignal(
  log: Logger,
  start: () => Promise<{ stop(): Promise<void> }>,
): Promise<void> {
  let running: { stop(): Promise<void> } | undefined;
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'stopping gracefully');
    (running?.stop() ?? Promise.resolve()).then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err) => {
        log.error({ err }, 'graceful stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    running = await start();
  } catch (err) {
    log.fatal({ err }, 'failed to start');
    process.exit(1);
  }
  if (stopping) await running.stop();
}
