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
  let firstSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    // A terminal's Ctrl-C reaches both a launcher (npm, tsx) and us, and the launcher relays it:
    // a repeat within a second is the same request, not an operator's second signal.
    if (stopping && Date.now() - firstSignalAt < 1000) return;
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    firstSignalAt = Date.now();
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
