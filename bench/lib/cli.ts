import { parseArgs } from 'node:util';

/** Integer options a scenario accepts, with their full-run and `--quick` defaults. */
export type IntOptions = Record<string, { full: number; quick: number; help: string }>;

export interface BenchArgs<K extends string> {
  quick: boolean;
  values: Record<K, number>;
}

/**
 * Parses `[--quick] [--<name> <int>]...`. Unknown options fail (a typo must not silently run the
 * default). Each integer falls back to its quick or full default.
 */
export function parseBenchArgs<O extends IntOptions>(
  argv: string[],
  options: O,
): BenchArgs<keyof O & string> {
  if (argv.includes('--help') || argv.includes('-h')) {
    printHelp(options);
    process.exit(0);
  }
  const spec: Record<string, { type: 'string' | 'boolean' }> = { quick: { type: 'boolean' } };
  for (const name of Object.keys(options)) spec[name] = { type: 'string' };
  const { values } = parseArgs({ args: argv, options: spec, strict: true, allowPositionals: false });
  const quick = values.quick === true;
  const out: Record<string, number> = {};
  for (const [name, def] of Object.entries(options)) {
    const raw = values[name];
    if (raw === undefined) {
      out[name] = quick ? def.quick : def.full;
      continue;
    }
    const n = Number(String(raw).replaceAll('_', ''));
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number (${def.help})`);
    out[name] = n;
  }
  return { quick, values: out as Record<keyof O & string, number> };
}

function printHelp(options: IntOptions): void {
  const lines = ['options (full-run default / --quick default):', '  --quick  the short mode'];
  for (const [name, def] of Object.entries(options)) {
    lines.push(`  --${name} <int>  ${def.help} (${def.full} / ${def.quick})`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}
