import { parseArgs } from 'node:util';
import {
  isRole,
  isValidSub,
  isValidTenant,
  MAX_SUB_LENGTH,
  ROLES,
  type Role,
} from '../infra/auth/principal.js';
import { MAX_TOKEN_TTL_SECONDS, signToken } from '../infra/auth/sign.js';
import type { Config } from '../infra/config.js';
import { configOrReport, isEntry, runCommand, UsageError } from './cli.js';

/** Printed to stderr on bad arguments (and to stdout for `--help`). */
export const USAGE = `usage: npm run --silent token -- --tenant <id|*> --role <${ROLES.join('|')}> --sub <id> [--ttl <seconds>]

Prints a token signed with the local key in DATA_DIR (created on first use) to stdout.
  --tenant  tenant id (lowercase letters, digits, '-'; up to 63 chars) or '*' for a platform admin
  --role    ${ROLES.join(', ')}
  --sub     caller id, 1 to ${MAX_SUB_LENGTH} characters
  --ttl     lifetime in seconds, 1 to ${MAX_TOKEN_TTL_SECONDS} (default 3600)
`;

export { UsageError };

/** Validated command line of the token CLI. */
export interface TokenArgs {
  tenant: string;
  role: Role;
  sub: string;
  ttl: number;
  help: boolean;
}

/** Parses and validates the CLI arguments (without the node and script paths). Throws {@link UsageError}. */
export function parseTokenArgs(argv: string[]): TokenArgs {
  let values: { tenant?: string; role?: string; sub?: string; ttl?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        tenant: { type: 'string' },
        role: { type: 'string' },
        sub: { type: 'string' },
        ttl: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return { tenant: '', role: 'user', sub: '', ttl: 0, help: true };
  const { tenant, role, sub } = values;
  if (tenant === undefined || role === undefined || sub === undefined) {
    throw new UsageError('--tenant, --role and --sub are required');
  }
  if (!isValidTenant(tenant)) throw new UsageError(`--tenant must be a tenant id or '*'`);
  if (!isRole(role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
  if (!isValidSub(sub)) throw new UsageError(`--sub must be 1 to ${MAX_SUB_LENGTH} characters`);
  const ttlText = values.ttl ?? '3600';
  const ttl = /^[0-9]{1,9}$/.test(ttlText) ? Number(ttlText) : Number.NaN;
  if (!(ttl >= 1 && ttl <= MAX_TOKEN_TTL_SECONDS)) {
    throw new UsageError(`--ttl must be a whole number of seconds from 1 to ${MAX_TOKEN_TTL_SECONDS}`);
  }
  return { tenant, role, sub, ttl, help: false };
}

/** Runs the CLI; returns the exit code. Only the token (or help) goes to stdout, so it can be captured. */
export async function main(
  argv: string[],
  env: Record<string, string | undefined>,
  stdout: NodeJS.WritableStream = process.stdout,
  stderr: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  const command = {
    argv,
    usage: USAGE,
    parse: parseTokenArgs,
    isHelp: (a: TokenArgs) => a.help,
    stdout,
    stderr,
  };
  return runCommand(command, async (args) => {
    const config = configOrReport(env, stderr);
    return config ? printToken(args, config, stdout, stderr) : 1;
  });
}

async function printToken(
  args: TokenArgs,
  config: Config,
  stdout: NodeJS.WritableStream,
  stderr: NodeJS.WritableStream,
): Promise<number> {
  if (config.JWKS_URL) {
    // The token is still printed (it may be meant for another deployment), but say why it may fail here.
    stderr.write('warning: JWKS_URL is set, so this service will not accept locally signed tokens\n');
  }
  const token = await signToken(
    config.DATA_DIR,
    config,
    { tenant: args.tenant, role: args.role, sub: args.sub },
    args.ttl,
  );
  stdout.write(`${token}\n`);
  return 0;
}

if (isEntry(import.meta.url)) {
  // exitCode rather than exit(): lets stdout drain when it is a pipe.
  process.exitCode = await main(process.argv.slice(2), process.env);
}
