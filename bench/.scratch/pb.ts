import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { runScenario } from '/work/main/bench/lib/cleanup.js';
import { eventGenerator } from '/work/main/bench/lib/events.js';
import { benchEnv } from '/work/main/bench/lib/service.js';
import { configureFromEnv } from '/work/main/infra/config.js';
import { createContext } from '/work/main/infra/context.js';
import { withTransaction } from '/work/main/infra/db/pool.js';
import { uuidv7 } from '/work/main/infra/uuid.js';
import { encryptStage } from '/work/main/stages/encrypt/handler.js';
import { updateRollups } from '/work/main/stages/persist/rollups.js';
import { copyStaging, insertFromStaging, lockTenants } from '/work/main/stages/persist/sql.js';

const N = Number(process.argv[2] ?? 20000);
const CHUNK = Number(process.argv[3] ?? 2000);
await runScenario(async () => {
  const env = await benchEnv('diag');
  await env.createTenants(['t1']);
  const ctx = await createContext(configureFromEnv({ ...env.env, TRANSPORT: 'embedded' }), {
    daemon: 'diag',
    log: pino({ level: 'silent' }),
  });
  const next = eventGenerator(1);
  const now = Date.now();
  const staged = Array.from({ length: N }, (_, i) => ({
    ...next(),
    tenant_id: 't1',
    id: uuidv7(now),
    occurred_at: new Date(now - (N - i)).toISOString(),
    received_at: new Date(now).toISOString(),
  }));
  let t = performance.now();
  const sealed = (await encryptStage.handle([{ v: 1, tenant_id: 't1', events: staged as any }], ctx))[0]!
    .events;
  console.log('encrypt', (performance.now() - t).toFixed(0), 'ms');
  await ctx.partitions.ensure([now]);
  const times = { lock: 0, copy: 0, insert: 0, rollup: 0, commit: 0 };
  const t0 = performance.now();
  for (let i = 0; i < N; i += CHUNK) {
    const rows = sealed.slice(i, i + CHUNK);
    const client = await ctx.pool.connect();
    await client.query('BEGIN');
    t = performance.now();
    await lockTenants(client, ['t1']);
    times.lock += performance.now() - t;
    t = performance.now();
    await copyStaging(client, rows as any);
    times.copy += performance.now() - t;
    t = performance.now();
    const stored = await insertFromStaging(client);
    times.insert += performance.now() - t;
    t = performance.now();
    await updateRollups(client, stored);
    times.rollup += performance.now() - t;
    t = performance.now();
    await client.query('COMMIT');
    times.commit += performance.now() - t;
    client.release();
  }
  const total = performance.now() - t0;
  console.log(
    'persist total',
    total.toFixed(0),
    'ms =',
    Math.round((N * 1000) / total),
    'ev/s',
    Object.fromEntries(Object.entries(times).map(([k, v]) => [k, Math.round(v)])),
  );
  const variants: [string, string[]][] = [
    ['baseline again', []],
    ['-events_tsv', ['events_tsv']],
    ['-events_meta_idx', ['events_meta_idx']],
    ['-both GIN', ['events_tsv', 'events_meta_idx']],
    [
      '-GIN -btrees',
      [
        'events_tsv',
        'events_meta_idx',
        'events_tenant_user',
        'events_tenant_action',
        'events_tenant_resource',
        'events_tenant_severity',
        'events_tenant_request',
        'events_tenant_ip',
      ],
    ],
  ];
  const c = await ctx.pool.connect();
  for (const [label, drop] of variants) {
    await c.query('BEGIN');
    await c.query('TRUNCATE events, event_ids; UPDATE tenants SET last_seq = 0');
    for (const name of drop) await c.query(`DROP INDEX ${name}`);
    const times2 = { copy: 0, insert: 0, rollup: 0 };
    const t1 = performance.now();
    for (let i = 0; i < N; i += CHUNK) {
      const rows = sealed.slice(i, i + CHUNK);
      t = performance.now();
      await copyStaging(c, rows as any);
      times2.copy += performance.now() - t;
      t = performance.now();
      const stored = await insertFromStaging(c);
      times2.insert += performance.now() - t;
      t = performance.now();
      await updateRollups(c, stored);
      times2.rollup += performance.now() - t;
      await c.query('TRUNCATE persist_staging');
    }
    const total2 = performance.now() - t1;
    await c.query('ROLLBACK');
    console.log(
      label.padEnd(16),
      String(Math.round((N * 1000) / total2)).padStart(6),
      'ev/s',
      JSON.stringify(Object.fromEntries(Object.entries(times2).map(([k, v]) => [k, Math.round(v)]))),
    );
  }
  c.release();
  await ctx.close();
  return 0;
});
