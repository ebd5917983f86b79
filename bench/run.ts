/**
 * `npm run bench -- <scenario> [--quick] [options]`: runs one benchmark scenario and prints a
 * human summary plus one `RESULT {...}` JSON line. Scenarios: ingest, search, visible, export, chaos, stream.
 */
import { runScenario } from './lib/cleanup.js';

const SCENARIOS: Record<string, () => Promise<(argv: string[]) => Promise<number>>> = {
  ingest: async () => (await import('./ingest.js')).runIngest,
  search: async () => (await import('./search.js')).runSearch,
  visible: async () => (await import('./visible.js')).runVisible,
  export: async () => (await import('./export.js')).runExport,
  chaos: async () => (await import('./chaos.js')).runChaos,
  // Live-stream fan-out (issue 5), written with the stream service.
  stream: async () => (await import('./stream.js')).runStream,
};

const [name, ...rest] = process.argv.slice(2);
const load = name ? SCENARIOS[name] : undefined;
if (!load) {
  process.stderr.write(`usage: npm run bench -- <${Object.keys(SCENARIOS).join('|')}> [--quick] [options]\n`);
  process.exit(2);
}
await runScenario(async () => (await load())(rest));
