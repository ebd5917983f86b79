import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { configureFromEnv } from '../../infra/config.js';
import { createContext } from '../../infra/context.js';
import { toMessages, MAX_BODY_BYTES } from '../../infra/transport/split.js';
import { uuidv7 } from '../../infra/uuid.js';
import { runScenario } from '../lib/cleanup.js';
import { eventGenerator } from '../lib/events.js';
import { benchEnv } from '../lib/service.js';

const N = Number(process.argv[2] ?? 20000);
const PER = Number(process.argv[3] ?? 500);
await runScenario(async () => {
  const env = await benchEnv('queue');
  const ctx = await createContext(configureFromEnv({ ...env.env, TRANSPORT: 'embedded' }), { daemon: 'q', log: pino({ level: 'silent' }) });
  const next = eventGenerator(1);
  const now = new Date().toISOString();
  const msgs = [];
  for (let i = 0; i < N; i += PER) {
    const events = Array.from({ length: PER }, () => ({ ...next(), tenant_id: 't1', id: uuidv7(), occurred_at: now, received_at: now }));
    msgs.push(...toMessages('mask', { v: 1, tenant_id: 't1', events } as any, MAX_BODY_BYTES.embedded));
  }
  let t = performance.now();
  for (let i = 0; i < msgs.length; i += 4) await ctx.transport.send('mask', msgs.slice(i, i + 4));
  const send = performance.now() - t;
  t = performance.now();
  let got = 0;
  let recv = 0, ack = 0;
  while (got < msgs.length) {
    let t1 = performance.now();
    const r = await ctx.transport.receive('mask', { max: 10, waitMs: 100, visibilityMs: 30000 });
    recv += performance.now() - t1;
    t1 = performance.now();
    await ctx.transport.ack('mask', r);
    ack += performance.now() - t1;
    got += r.length;
  }
  console.log(`${N} events in ${msgs.length} messages: send ${Math.round(N * 1000 / send)} ev/s, receive ${Math.round(N * 1000 / recv)} ev/s, ack ${Math.round(N * 1000 / ack)} ev/s; hop total ${Math.round((send + recv + ack) * 1000 / N)} us/event`);
  await ctx.close();
  return 0;
});
