/**
 * `npm run --silent dlq -- list <queue> [--limit N]` and `npm run --silent dlq -- redrive <queue> [--ids a,b]`:
 * inspect and redrive dead-lettered queue messages, on whichever transport `TRANSPORT` selects.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { type Config, configureFromEnv } from '../infra/config.js';
import { createContext } from '../infra/context.js';
import { embeddedUrl } from '../infra/db/embedded.js';
import { type DeadLetter, QUEUES, type QueueName } from '../infra/transport/types.js';
import { configOrReport, isEntry, runCommand, UsageError } from './cli.js';

/** Printed to stderr on bad arguments (and to stdout for `--help`). */
export const USAGE = `usage: npm run --silent dlq -- list <queue> [--limit N]
       npm run --silent dlq -- redrive <queue> [--ids id1,id2]

Dead letters of a pipeline queue (${QUEUES.join(', ')}), on the transport that TRANSPORT selects.
  list     prints one JSON line per dead letter: id, queue, group (the tenant), attempts, sentAt,
           deadAt and a summary of the body (event count and ids, never event content)
  redrive  moves dead letters back to their queue (all, or only --ids) and prints the count
  --limit  most dead letters to list, 1 to 10000 (default 100)
  --ids    comma-separated dead-letter ids, as printed by list
`;

/** Largest `--limit`: listing reads every dead letter it prints. */
export const MAX_LIST_LIMIT = 10_000;

export { UsageError };

/** Validated command line of the dlq CLI. */
export type DlqArgs =
  | { command: 'help' }
  | { command: 'list'; queue: QueueName; limit: number }
  | { command: 'redrive'; queue: QueueName; ids: string[] | undefined };

/** Parses and validates the CLI arguments (without the node and script paths). Throws {@link UsageError}. */
export function parseDlqArgs(argv: string[]): DlqArgs {
  let values: { limit?: string; ids?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        limit: { type: 'string' },
        ids: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return { command: 'help' };
  const [command, queue, ...extra] = positionals;
  if (command !== 'list' && command !== 'redrive')
    throw new UsageError('the command must be list or redrive');
  if (queue === undefined || !(QUEUES as readonly string[]).includes(queue)) {
    throw new UsageError(`the queue must be one of ${QUEUES.join(', ')}`);
  }
  if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
  if (command === 'list') {
    if (values.ids !== undefined) throw new UsageError('--ids applies to redrive only');
    const text = values.limit ?? '100';
    const limit = /^[0-9]{1,6}$/.test(text) ? Number(text) : Number.NaN;
    if (!(limit >= 1 && limit <= MAX_LIST_LIMIT)) {
      throw new UsageError(`--limit must be a whole number from 1 to ${MAX_LIST_LIMIT}`);
    }
    return { command, queue: queue as QueueName, limit };
  }
  if (values.limit !== undefined) throw new UsageError('--limit applies to list only');
  let ids: string[] | undefined;
  if (values.ids !== undefined) {
    ids = [...new Set(values.ids.split(',').map((s) => s.trim()))];
    if (ids.some((id) => id === '')) throw new UsageError('--ids must be a comma-separated list of ids');
  }
  return { command, queue: queue as QueueName, ids };
}

/** Largest number of event ids a summary lists; a batch holds up to a thousand. */
const SUMMARY_IDS = 20;

/** What `list` prints of a dead letter's body: enough to find the events, none of their content. */
export type BodySummary =
  | { events: number; ids: string[]; more: number }
  | { unparsable: true; bytes: number };

/**
 * Summarizes a queue body. A dead letter is often exactly the message that failed validation, so
 * nothing about its shape is trusted: only string ids of an `events` array are reported.
 */
export function summarizeBody(body: string): BodySummary {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return { unparsable: true, bytes: Buffer.byteLength(body) };
  }
  const events = (value as { events?: unknown } | null)?.events;
  if (!Array.isArray(events)) return { unparsable: true, bytes: Buffer.byteLength(body) };
  const ids = events
    .map((e) => (e as { id?: unknown } | null)?.id)
    .filter((id): id is string => typeof id === 'string')
    .map((id) => id.slice(0, 64));
  return {
    events: events.length,
    ids: ids.slice(0, SUMMARY_IDS),
    more: Math.max(0, ids.length - SUMMARY_IDS),
  };
}

/** One output line of `list`. */
export function describeDeadLetter(d: DeadLetter) {
  return {
    id: d.id,
    queue: d.queue,
    group: d.group,
    attempts: d.attempts,
    sentAt: new Date(d.sentAt).toISOString(),
    deadAt: new Date(d.deadAt).toISOString(),
    body: summarizeBody(d.body),
  };
}

/**
 * Runs the CLI; returns the exit code (0 done, 1 failure, 2 bad arguments). Results go to stdout
 * as JSON lines, so they can be piped to `jq`; logs and errors go to stderr.
 */
export async function main(
  argv: string[],
  env: Record<string, string | undefined>,
  stdout: NodeJS.WritableStream = process.stdout,
  stderr: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  const command = {
    argv,
    usage: USAGE,
    parse: parseDlqArgs,
    isHelp: (a: DlqArgs) => a.command === 'help',
    stdout,
    stderr,
  };
  return runCommand(command, async (args) => (args.command === 'help' ? 0 : run(args, env, stdout, stderr)));
}

async function run(
  args: Exclude<DlqArgs, { command: 'help' }>,
  env: Record<string, string | undefined>,
  stdout: NodeJS.WritableStream,
  stderr: NodeJS.WritableStream,
): Promise<number> {
  const base = configOrReport(env, stderr);
  if (!base) return 1;
  const config = withRunningEmbedded(base, env);
  // Logs go to stderr: stdout carries only results. At the default level, start-up chatter
  // (migrations, embedded server) is noise for a one-shot command, so only warnings show.
  const log = pino({ level: config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL }, pino.destination(2));
  let ctx: Awaited<ReturnType<typeof createContext>> | undefined;
  try {
    ctx = await createContext(config, { daemon: 'dlq', log });
    if (args.command === 'list') {
      const letters = await ctx.transport.listDeadLetters(args.queue, args.limit);
      for (const d of letters) stdout.write(`${JSON.stringify(describeDeadLetter(d))}\n`);
      return 0;
    }
    const moved = await ctx.transport.redrive(args.queue, args.ids);
    stdout.write(`${JSON.stringify({ queue: args.queue, redriven: moved })}\n`);
    if (args.ids && moved < args.ids.length) {
      stderr.write(
        `error: ${args.ids.length - moved} of the ${args.ids.length} ids were not found in the ${args.queue} dead letters\n`,
      );
      return 1;
    }
    return 0;
  } catch (err) {
    stderr.write(`error: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await ctx?.close();
  }
}

/**
 * Without `DATABASE_URL`, createContext starts the embedded PostgreSQL in DATA_DIR, stopping one
 * that is already running there as an orphan. When a daemon (`npm start`) is using that server,
 * connect to it instead: stopping it under the daemon would be an outage.
 */
export function withRunningEmbedded(config: Config, env: Record<string, string | undefined>): Config {
  if (config.DATABASE_URL) return config;
  let lines: string[];
  try {
    lines = fs.readFileSync(path.join(config.DATA_DIR, 'pg', 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return config; // not running: starting it here is safe
  }
  const pid = Number(lines[0]);
  // postmaster.pid: pid, data directory, start time, port, ...
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port) || port <= 0) return config;
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: alive but owned by another user (the postgres user when run as root).
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return config;
  }
  return configureFromEnv({ ...env, DATABASE_URL: embeddedUrl(port) });
}

if (isEntry(import.meta.url)) {
  // exitCode rather than exit(): lets stdout drain when it is a pipe.
  process.exitCode = await main(process.argv.slice(2), process.env);
}
