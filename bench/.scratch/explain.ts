import { runScenario } from '../lib/cleanup.js';
import { loadEvents } from '../lib/loader.js';
import { benchEnv } from '../lib/service.js';
import { EVENT_COLUMNS } from '../../query/decode.js';

await runScenario(async () => {
  const env = await benchEnv('explain');
  await env.createTenants(['export', 'other']);
  await loadEvents(env, { events: Number(process.argv[2] ?? 20000), tenants: ['export', 'other'], heavyShare: 0.9, days: 30 });
  const c = await env.db.connect();
  const { rows: keys } = await c.query(`SELECT occurred_at, seq FROM events WHERE tenant_id='export' ORDER BY occurred_at DESC, seq DESC OFFSET 5000 LIMIT $1`, [Number(process.argv[3] ?? 500)]);
  await c.query(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL ROLE auditlog_reader`);
  await c.query(`SELECT set_config('auditlog.tenant', 'export', true), set_config('auditlog.user', '', true)`);
  const sql = `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT ${EVENT_COLUMNS} FROM events
       JOIN unnest($2::timestamptz[], $3::bigint[]) WITH ORDINALITY AS k(at, sq, ord)
         ON occurred_at = k.at AND seq = k.sq
      WHERE tenant_id = $1 AND occurred_at BETWEEN $4 AND $5
      ORDER BY k.ord`;
  const ats = keys.map((k) => k.occurred_at as Date).sort((a, b) => a.getTime() - b.getTime());
  const { rows } = await c.query(sql, ['export', keys.map((k) => k.occurred_at), keys.map((k) => k.seq), ats[0], ats[ats.length - 1]]);
  console.log(rows.map((r) => r['QUERY PLAN']).join('\n'));
  await c.query('ROLLBACK');
  c.release();
  return 0;
});
