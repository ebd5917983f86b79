/**
 * `npm run bench -- chaos [--quick]`: exactly-once under failure. For each transport (the embedded
 * PostgreSQL queue, then SQS on fauxqs), runs ingest, mask, encrypt and persist as separate
 * processes, posts N events with client-chosen ids (retrying until acknowledged) while SIGKILLing
 * and restarting random stage daemons, then reads everything back through the query API and checks
 * that every acknowledged event is stored exactly once, with its content intact (hash of the sent
 * fields) and a gapless per-tenant sequence. Exits 1 if anything was lost, duplicated or altered.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { SQSClient } from '@aws-sdk/client-sqs';
import { pino } from 'pino';
import { startDaemons } from '../bin/compose.js';
import { configureFromEnv } from '../infra/config.js';
import { createContext } from '../infra/context.js';
import { createSqsTransport } from '../infra/transport/sqs.js';
import { startFauxqs } from '../test/fauxqs.js';
import { onCleanup } from './lib/cleanup.js';
import { parseBenchArgs } from './lib/cli.js';
import { contentHash } from './lib/content-hash.js';
import type { Daemon } from './lib/daemon.js';
import { deadLetterCount } from './lib/dead-letters.js';
import { eventGenerator, rng } from './lib/events.js';
import { HttpClient } from './lib/http-client.js';
import { closedLoop } from './lib/load.js';
import { waitPersisted } from './lib/progress.js';
import { fmt, note, printResult, printSummary } from './lib/report.js';
import { type BenchEnv, benchEnv } from './lib/service.js';
import { rate } from './lib/stats.js';
import { sleep } from './lib/temp.js';

const OPTIONS = {
  events: { full: 100_000, quick: 10_000, help: 'events per transport' },
  tenants: { full: 4, quick: 4, help: 'tenants the events are spread over' },
  bulk: { full: 100, quick: 100, help: 'events per ingest request' },
  concurrency: { full: 4, quick: 4, help: 'ingest requests in flight' },
  'min-kills': {
    full: 12,
    quick: 4,
    help: 'kills per transport at least (continues after sending if needed)',
  },
  'gap-ms': { full: 1500, quick: 700, help: 'mean pause between two kills' },
  'down-ms': { full: 1000, quick: 300, help: 'longest time a killed daemon stays down' },
};
const STAGES = ['ingest', 'mask', 'encrypt', 'persist'] as const;
/** A retried request gives up after this long; its events then count as not acknowledged. */
const SEND_DEADLINE_MS = 120_000;

interface Sent {
  tenant: string;
  hash: string;
}

interface LegResult {
  acknowledged: number;
  stored: number;
  lost: number;
  duplicated: number;
  corrupted: number;
  sequence_gaps: number;
  dead_letters: number;
  kills: Record<string, number>;
  ingest_retries: number;
  acknowledged_per_s: number;
}

/** Runs the chaos scenario on both transports; exits 1 on any loss, duplicate, alteration or gap. */
export async function runChaos(argv: string[]): Promise<number> {
  const { quick, values } = parseBenchArgs(argv, OPTIONS);
  const legs: Record<string, LegResult> = {};
  for (const transport of ['embedded', 'sqs'] as const) {
    note(`${transport}: ${fmt(values.events)} events while killing stage daemons`);
    legs[transport] = await leg(transport, values);
  }
  const failed = Object.values(legs).some(
    (l) => l.lost + l.duplicated + l.corrupted + l.sequence_gaps > 0 || l.acknowledged < values.events,
  );
  printSummary(
    `chaos${quick ? ' (quick)' : ''}`,
    Object.entries(legs).map(([name, l]): [string, string] => [
      name,
      `acknowledged ${fmt(l.acknowledged)}, stored ${fmt(l.stored)}, lost ${l.lost}, duplicated ${l.duplicated}, ` +
        `corrupted ${l.corrupted}, sequence gaps ${l.sequence_gaps}, dead letters ${l.dead_letters}; ` +
        `kills ${Object.entries(l.kills)
          .map(([d, n]) => `${d}×${n}`)
          .join(' ')}; ${l.ingest_retries} ingest retries`,
    ]),
  );
  printResult('chaos', { quick, events: values.events, ...legs, ok: !failed });
  return failed ? 1 : 0;
}

async function leg(
  transport: 'embedded' | 'sqs',
  values: Record<keyof typeof OPTIONS, number>,
): Promise<LegResult> {
  // Short visibility so a killed worker's messages come back within seconds, not the default 30 s.
  const extra: Record<string, string> = {
    TRANSPORT: transport,
    QUEUE_VISIBILITY_TIMEOUT_MS: '3000',
    STAGE_RETRY_BASE_MS: '100',
  };
  if (transport === 'sqs') {
    const fauxqs = await startFauxqs();
    onCleanup(() => fauxqs.stop());
    Object.assign(extra, {
      SQS_ENDPOINT: fauxqs.endpoint,
      SQS_REGION: 'us-east-1',
      SQS_QUEUE_PREFIX: `chaos-${randomUUID().slice(0, 8)}`,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
    });
    // Create the queues once here, so the daemons starting together do not race to create them.
    // The client gets fauxqs's credentials explicitly: ours (the default chain) may have none.
    const sqs = new SQSClient({
      region: 'us-east-1',
      endpoint: fauxqs.endpoint,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    try {
      const created = await createSqsTransport(configureFromEnv({ ...extra, SQS_CREATE_QUEUES: 'true' }), {
        client: sqs,
      });
      await created.close();
    } finally {
      sqs.destroy();
    }
  }
  const env = await benchEnv(`chaos_${transport}`, extra);
  const tenants = Array.from({ length: values.tenants }, (_, i) => `chaos-${i}`);
  await env.createTenants(tenants);

  const stages = new Map<string, Daemon>();
  for (const name of STAGES) stages.set(name, await env.daemon(name));
  await Promise.all([...stages.values()].map((d) => d.start()));

  // Every event gets a client id, so a retried request (its 202 lost in a crash) is idempotent.
  const sent = new Map<string, Sent>();
  const bulks: { tenant: string; body: string; ids: string[] }[] = [];
  const next = eventGenerator(transport === 'sqs' ? 2 : 1, `chaos-${transport}`);
  const base = Date.now() - 3_600_000;
  const perTenant = new Map<string, Record<string, unknown>[]>(tenants.map((t) => [t, []]));
  for (let i = 0; i < values.events; i++) {
    const tenant = tenants[i % tenants.length]!;
    const event = { ...next(), id: randomUUID(), occurred_at: new Date(base + i).toISOString() };
    sent.set(event.id, { tenant, hash: contentHash({ ...event, tenant_id: tenant }) });
    perTenant.get(tenant)!.push(event);
  }
  for (const [tenant, events] of perTenant) {
    for (let i = 0; i < events.length; i += values.bulk) {
      const chunk = events.slice(i, i + values.bulk);
      bulks.push({ tenant, body: JSON.stringify({ events: chunk }), ids: chunk.map((e) => String(e.id)) });
    }
  }
  interleave(bulks);
  const tokens = new Map<string, string>();
  for (const t of tenants) tokens.set(t, await env.token(t, 'admin', 'bench-writer'));

  const ingest = stages.get('ingest')!;
  const client = new HttpClient(ingest.url, values.concurrency);
  const acked = new Set<string>();
  let acknowledged = 0;
  let retries = 0;
  let sending = true;
  const started = performance.now();
  const sender = closedLoop(bulks.length, values.concurrency, async (i) => {
    const bulk = bulks[i]!;
    const deadline = performance.now() + SEND_DEADLINE_MS;
    for (;;) {
      try {
        const res = await client.request('POST', '/api/v1/logs/bulk', {
          token: tokens.get(bulk.tenant)!,
          body: bulk.body,
          timeoutMs: 20_000,
        });
        if (res.status === 202) {
          acknowledged += bulk.ids.length;
          for (const id of bulk.ids) acked.add(id);
          return;
        }
        if (res.status < 500 && res.status !== 429) {
          throw new Error(`ingest refused a bulk: HTTP ${res.status} ${res.body.toString().slice(0, 300)}`);
        }
      } catch (err) {
        if ((err as Error).message.startsWith('ingest refused')) throw err;
        // Connection refused or reset: the ingest daemon is down or was killed mid-request.
      }
      if (performance.now() > deadline) return;
      retries++;
      await sleep(100 + Math.random() * 200);
    }
  }).finally(() => {
    sending = false;
  });
  const ackedAt = sender.then(() => performance.now());

  // The chaos monkey: kills a random stage daemon at random moments, until sending is over and at
  // least min-kills have happened. A killed daemon restarts after a random pause, in the
  // background, so two can be down (or starting) at once. Victims cycle through a shuffled
  // order of the stages, so every stage is killed once before any is killed twice.
  const r = rng(transport === 'sqs' ? 22 : 21);
  let order: string[] = [];
  const kills: Record<string, number> = {};
  const restarting = new Map<string, Promise<void>>();
  let killCount = 0;
  while (sending || killCount < values['min-kills']) {
    await sleep(values['gap-ms'] * (0.5 + r()));
    if (order.length === 0) order = shuffle([...STAGES], r);
    // At most two down at once: with all four down nothing moves, and the run only gets longer.
    // A victim still restarting keeps its turn: it is killed the next time round.
    const victim = stages.get(order[order.length - 1]!)!;
    if (restarting.has(victim.name) || restarting.size >= 2) continue;
    order.pop();
    await victim.kill();
    kills[victim.name] = (kills[victim.name] ?? 0) + 1;
    killCount++;
    note(`${transport}: killed ${victim.name} (${killCount}), ${fmt(acknowledged)} acknowledged so far`);
    const down = values['down-ms'] * r();
    restarting.set(
      victim.name,
      sleep(down)
        .then(() => victim.start())
        .finally(() => restarting.delete(victim.name)),
    );
  }
  await Promise.all(restarting.values());
  await sender;
  const ackMs = (await ackedAt) - started;
  client.close();

  note(`${transport}: ${fmt(acknowledged)} acknowledged; waiting for the pipeline to drain`);
  try {
    await waitPersisted(env.db, tenants, acknowledged, 60_000);
  } catch (err) {
    note(`${transport}: ${(err as Error).message}; verifying what is stored`);
  }
  await Promise.all([...stages.values()].map((d) => d.stop()));
  const verified = await verify(env, tenants, sent, acked);
  const deadLetters = await deadLetterCount(env.db, env.env);
  return {
    acknowledged,
    ...verified,
    dead_letters: deadLetters,
    kills,
    ingest_retries: retries,
    acknowledged_per_s: rate(acknowledged, ackMs),
  };
}

/** Fisher–Yates shuffle with the given random source. */
function shuffle<T>(list: T[], r: () => number): T[] {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
  return list;
}

/** Reorders bulks round-robin over tenants, so all tenants are in flight together. */
function interleave<T extends { tenant: string }>(bulks: T[]): void {
  const byTenant = new Map<string, T[]>();
  for (const b of bulks) byTenant.set(b.tenant, [...(byTenant.get(b.tenant) ?? []), b]);
  const lists = [...byTenant.values()];
  bulks.length = 0;
  for (let i = 0; lists.some((l) => i < l.length); i++) {
    for (const l of lists) if (i < l.length) bulks.push(l[i]!);
  }
}

/**
 * Reads every tenant's events back through the query API (as its auditor, 1,000 per page) and
 * compares them with what was sent. Reads are bounded by `to` = now: the query service records
 * each read as a self-audit event, and those come after it.
 *
 * The query service runs in this process (the same routes and code as the `query` daemon): a
 * sixth process to start would only cost time. Its self-audit events go to the embedded queue,
 * where nothing consumes them; the stage daemons have stopped.
 */
async function verify(env: BenchEnv, tenants: string[], sent: Map<string, Sent>, acked: Set<string>) {
  const config = configureFromEnv({ ...env.env, TRANSPORT: 'embedded', PORT: '0', LOG_LEVEL: 'silent' });
  const ctx = await createContext(config, { daemon: 'bench-verify', log: pino({ level: 'silent' }) });
  const query = await startDaemons(ctx, ['query']);
  try {
    return await compare(env, query.url, tenants, sent, acked);
  } finally {
    await query.stop();
  }
}

async function compare(
  env: BenchEnv,
  url: string,
  tenants: string[],
  sent: Map<string, Sent>,
  acked: Set<string>,
) {
  const client = new HttpClient(url, 1);
  const to = new Date().toISOString();
  const seen = new Map<string, number>();
  let corrupted = 0;
  let gaps = 0;
  let unexpected = 0;
  for (const tenant of tenants) {
    const token = await env.token(tenant, 'auditor', 'bench-auditor');
    const sequences: number[] = [];
    let cursor: string | null = null;
    do {
      const params = new URLSearchParams({ to, limit: '1000', ...(cursor ? { cursor } : {}) });
      const page: { data: Record<string, unknown>[]; next_cursor: string | null } = await client.json(
        `/api/v1/logs?${params}`,
        token,
      );
      for (const e of page.data) {
        const id = String(e.id);
        sequences.push(Number(e.sequence));
        seen.set(id, (seen.get(id) ?? 0) + 1);
        const expected = sent.get(id);
        if (!expected) unexpected++;
        else if (expected.tenant !== tenant || expected.hash !== contentHash(e)) corrupted++;
      }
      cursor = page.next_cursor;
    } while (cursor);
    // Gapless: the tenant's sequences are exactly 1..n, each once.
    sequences.sort((a, b) => a - b);
    sequences.forEach((s, i) => {
      if (s !== i + 1) gaps++;
    });
  }
  client.close();
  // The same check in the table itself: one row per id, whatever the API shows.
  const { rows } = await env.db.query<{ n: string }>(
    `SELECT coalesce(sum(c - 1), 0)::text AS n FROM (SELECT count(*) AS c FROM events GROUP BY tenant_id, id) x`,
  );
  const tableDuplicates = Number(rows[0]?.n ?? 0);
  let stored = 0;
  let duplicated = 0;
  for (const [id, n] of seen) {
    if (!sent.has(id)) continue;
    stored++;
    duplicated += n - 1;
  }
  // Lost means acknowledged and not stored; an event whose request never got a 202 may go either way.
  const lost = [...acked].filter((id) => !seen.has(id)).length;
  if (unexpected > 0) note(`${unexpected} stored events were never sent (counted as corrupted)`);
  return {
    stored,
    lost,
    duplicated: Math.max(duplicated, tableDuplicates),
    corrupted: corrupted + unexpected,
    sequence_gaps: gaps,
  };
}
