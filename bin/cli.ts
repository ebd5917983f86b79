/** What the one-shot commands in bin/ (dlq, token) share: argument errors, help, config, entry. */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Config, configureFromEnv } from '../infra/config.js';

/** A command line problem; reported with the command's usage text and exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface Command<A> {
  argv: string[];
  /** Printed to stderr on bad arguments, and to stdout for `--help`. */
  usage: string;
  /** Parses and validates the arguments; throws {@link UsageError}. */
  parse(argv: string[]): A;
  isHelp(args: A): boolean;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/**
 * Parses the command line and runs `run` on it; returns the exit code: 2 for bad arguments
 * (with the usage text on stderr), 0 after `--help`, else what `run` returns.
 */
export async function runCommand<A>(command: Command<A>, run: (args: A) => Promise<number>): Promise<number> {
  let args: A;
  try {
    args = command.parse(command.argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    command.stderr.write(`error: ${err.message}\n${command.usage}`);
    return 2;
  }
  if (command.isHelp(args)) {
    command.stdout.write(command.usage);
    return 0;
  }
  return run(args);
}

/** The validated configuration, or undefined after writing why it is invalid to `stderr`. */
export function configOrReport(
  env: Record<string, string | undefined>,
  stderr: NodeJS.WritableStream,
): Config | undefined {
  try {
    return configureFromEnv(env);
  } catch (err) {
    stderr.write(`${(err as Error).message}\n`);
    return undefined;
  }
}

/** True when the module at `moduleUrl` is the process entry (`tsx bin/x.ts`), not imported by a test. */
export function isEntry(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
}
