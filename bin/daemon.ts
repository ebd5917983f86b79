/**
 * `npm run daemon -- <name>[,<name>...]` starts one daemon (or a fused set) in this process:
 * ingest, mask, encrypt, persist, index, query, stream, archive, or `all`.
 */
import { pino } from 'pino';
import { configureFromEnv } from '../infra/config.js';
import { createContext } from '../infra/context.js';
import { runUntilSignal } from '../infra/lifecycle.js';
import { parseDaemons, startDaemons } from './compose.js';

const spec = process.argv[2] ?? 'all';
const config = configureFromEnv(process.env);
const log = pino({ level: config.LOG_LEVEL, base: { daemon: spec } });

await runUntilSignal(log, async () => {
  const names = parseDaemons(spec);
  const ctx = await createContext(config, { daemon: spec, log });
  try {
    return await startDaemons(ctx, names);
  } catch (err) {
    await ctx.close();
    throw err;
  }
});
