/**
 * `npx tsx bench/stream.ts [--quick] [options]` (or `npm run bench -- stream` once registered in
 * run.ts): live-stream fan-out. 200 WebSocket subscribers across 20 tenants while 5,000 events/s
 * are ingested (open loop). Measures the time from the ingest acknowledgement (202) to the
 * delivery of each event to each subscriber, and checks that every subscriber received every event
 * of its tenant exactly once, in sequence order, with none dropped.
 * Targets (issue 5): p99 under 1 s; no subscriber disconnected.
 */
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { runScenario } from './lib/cleanup.js';
import { parseBenchArgs } from './lib/cli.js';
import { eventGenerator } from './lib/events.js';
import { HttpClient } from './lib/http-client.js';
import { openLoop } from './lib/load.js';
import { fmt, note, printResult, printSummary } from './lib/report.js';
import { benchEnv } from './lib/service.js';
import { rate, summarize } from './lib/stats.js';
import { sleep } from './lib/temp.js';

const OPTIONS = {
  subscribers: { full: 200, quick: 200, help: 'WebSocket subscribers, spread evenly over the tenants' },
  tenants: { full: 20, quick: 20, help: 'tenants' },
  rate: { full: 5000, quick: 5000, help: 'events/s offered' },
  seconds: { full: 20, quick: 5, help: 'duration of the offered load' },
  bulk: { full: 50, quick: 50, help: 'events per ingest request' },
  split: {
    full: 0,
    quick: 0,
    help: '1: run the stream as its own daemon process beside the pipeline (the production shape); 0: everything in one process',
  },
};
/** p99 target from ingest acknowledgement to delivery, in ms. */
const TARGET_P99_MS = 1000;
/** Interval of the commit sampler, in ms: the precision of the latency split. */
const COMMIT_SAMPLE_MS = 10;
/** How long the drain after the load may stall before the run fails. */
const DRAIN_STALL_MS = 30_000;

interface Subscriber {
  tenant: string;
  ws: WebSocket;
  live: boolean;
  closed: { code: number; reason: string } | undefined;
  lastSeq: number;
  gaps: number;
  received: number;
}

export async function runStream(argv: string[]): Promise<number> {
  const { values } = parseBenchArgs(argv, OPTIONS);
  const tenants = Array.from({ length: values.tenants }, (_, i) => `st-${String(i).padStart(2, '0')}`);
  const env = await benchEnv('stream');
  await env.createTenants(tenants);
  const split = values.split === 1;
  const daemon = await env.daemon(split ? 'ingest,mask,encrypt,persist,index,query' : 'all');
  const streamDaemon = split ? await env.daemon('stream') : daemon;
  note(
    split
      ? 'starting the pipeline and a separate stream daemon'
      : 'starting the service (all daemons in one process)',
  );
  await daemon.start();
  if (split) await streamDaemon.start();
  const writers = new Map<string, string>();
  for (const t of tenants) writers.set(t, await env.token(t, 'admin', 'bench-writer'));

  // Ack time per event id, and every delivery time per id.
  const ackedAt = new Map<string, number>();
  const deliveredAt = new Map<string, number[]>();
  const seqOf = new Map<string, number>();
  const tenantOf = new Map<string, string>();
  const subscribers: Subscriber[] = [];
  note(`opening ${values.subscribers} subscribers over ${tenants.length} tenants`);
  for (let i = 0; i < values.subscribers; i++) {
    const tenant = tenants[i % tenants.length]!;
    const token = await env.token(tenant, 'auditor', `bench-reader-${i}`);
    subscribers.push(subscribe(streamDaemon.url, tenant, token, deliveredAt, seqOf));
  }
  await waitFor(() => subscribers.every((s) => s.live || s.closed), 60_000, 'subscribers did not go live');
  if (subscribers.some((s) => s.closed)) throw new Error('a subscriber was refused or closed at start');

  const client = new HttpClient(daemon.url, 64);
  const next = eventGenerator(5, 'stream');
  let failed = 0;
  note(`ingesting ${fmt(values.rate)} events/s for ${values.seconds} s in bulks of ${values.bulk}`);
  const commits = watchCommits(env.db, tenants);
  const started = performance.now();
  await openLoop(values.rate / values.bulk, values.seconds * 1000, async (i) => {
    const tenant = tenants[i % tenants.length]!;
    const body = JSON.stringify({ events: Array.from({ length: values.bulk }, next) });
    const res = await client.request('POST', '/api/v1/logs/bulk', { token: writers.get(tenant)!, body });
    const now = performance.now();
    if (res.status !== 202) {
      failed++;
      return;
    }
    for (const id of (JSON.parse(res.body.toString()) as { ids: string[] }).ids) {
      ackedAt.set(id, now);
      tenantOf.set(id, tenant);
    }
  });
  const ingestMs = performance.now() - started;

  // Every acked event must reach every subscriber of its tenant.
  const perTenant = values.subscribers / tenants.length;
  const expected = ackedAt.size * perTenant;
  const deliveredCount = () => {
    let n = 0;
    for (const id of ackedAt.keys()) n += Math.min(perTenant, deliveredAt.get(id)?.length ?? 0);
    return n;
  };
  note(`draining: waiting for ${fmt(expected)} deliveries`);
  let last = -1;
  let movedAt = performance.now();
  for (;;) {
    const n = deliveredCount();
    if (n >= expected || subscribers.some((s) => s.closed)) break;
    if (n !== last) {
      last = n;
      movedAt = performance.now();
    } else if (performance.now() - movedAt > DRAIN_STALL_MS) break;
    await sleep(100);
  }

  commits.stop();
  const latencies: number[] = [];
  const pipeline: number[] = [];
  const fanout: number[] = [];
  let early = 0;
  for (const [id, ack] of ackedAt) {
    const committed = commits.committedAt(tenantOf.get(id)!, seqOf.get(id) ?? Number.POSITIVE_INFINITY);
    if (committed !== undefined) pipeline.push(Math.max(0, committed - ack));
    for (const at of deliveredAt.get(id) ?? []) {
      // A delivery can beat the 202 to the bench when the pipeline is faster than the response.
      if (at < ack) early++;
      latencies.push(Math.max(0, at - ack));
      if (committed !== undefined) fanout.push(Math.max(0, at - committed));
    }
  }
  const pipelineMs = summarize(pipeline);
  const fanoutMs = summarize(fanout);
  const metrics = await (await fetch(`${streamDaemon.url}/metrics`)).text();
  const slow = metricValue(metrics, 'auditlog_stream_disconnects_total', 'reason="slow_consumer"');
  const dropped = subscribers.filter((s) => s.closed).length;
  const gaps = subscribers.reduce((a, s) => a + s.gaps, 0);
  const delivered = deliveredCount();
  const latency = summarize(latencies);
  for (const s of subscribers) s.ws.terminate();

  const pass =
    latency.p99 < TARGET_P99_MS && dropped === 0 && gaps === 0 && delivered === expected && failed === 0;
  printSummary('stream fan-out', [
    ['subscribers / tenants', `${values.subscribers} / ${tenants.length}`],
    ['stream daemon', split ? 'separate process' : 'same process as the pipeline'],
    ['events acked', fmt(ackedAt.size)],
    ['ingest rate (acked/s)', fmt(rate(ackedAt.size, ingestMs))],
    ['failed ingest requests', failed],
    ['deliveries (expected)', `${fmt(delivered)} (${fmt(expected)})`],
    ['ack→delivery p50 / p99 / max ms', `${latency.p50} / ${latency.p99} / ${latency.max}`],
    ['  of which ack→commit p50 / p99 ms', `${pipelineMs.p50} / ${pipelineMs.p99}`],
    ['  of which commit→delivery p50 / p99 ms', `${fanoutMs.p50} / ${fanoutMs.p99}`],
    ['delivered before the 202 arrived', fmt(early)],
    ['subscribers dropped (slow consumer)', `${dropped} (${slow})`],
    ['sequence gaps or duplicates', gaps],
    ['result', pass ? `PASS (p99 < ${TARGET_P99_MS} ms, nothing dropped)` : 'FAIL'],
  ]);
  printResult('stream', {
    subscribers: values.subscribers,
    tenants: tenants.length,
    split,
    offered_per_s: values.rate,
    acked: ackedAt.size,
    acked_per_s: rate(ackedAt.size, ingestMs),
    failed_requests: failed,
    deliveries: delivered,
    expected_deliveries: expected,
    latency_ms: latency,
    ack_to_commit_ms: pipelineMs,
    commit_to_delivery_ms: fanoutMs,
    dropped,
    slow_consumer_disconnects: slow,
    sequence_gaps: gaps,
    pass,
  });
  return pass ? 0 : 1;
}

/**
 * One subscriber. Frames are not JSON-parsed: the bench process shares two cores with the
 * service, so it pulls the id and sequence out of the frame text (the event object always starts
 * with tenant_id, id, sequence, in that order).
 */
function subscribe(
  base: string,
  tenant: string,
  token: string,
  deliveredAt: Map<string, number[]>,
  seqOf: Map<string, number>,
): Subscriber {
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/api/v1/logs/stream`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const sub: Subscriber = { tenant, ws, live: false, closed: undefined, lastSeq: -1, gaps: 0, received: 0 };
  ws.on('message', (data: Buffer) => {
    const now = performance.now();
    const text = data.toString();
    if (!text.startsWith('{"type":"event"')) {
      if (text.startsWith('{"type":"ready"')) sub.lastSeq = Number(JSON.parse(text).since);
      if (text.startsWith('{"type":"live"')) sub.live = true;
      return;
    }
    const idAt = text.indexOf('"id":"') + 6;
    const id = text.slice(idAt, idAt + 36);
    const seqAt = text.indexOf('"sequence":"', idAt) + 12;
    const seq = Number(text.slice(seqAt, text.indexOf('"', seqAt)));
    if (seq !== sub.lastSeq + 1) sub.gaps++;
    sub.lastSeq = seq;
    sub.received++;
    let list = deliveredAt.get(id);
    if (!list) {
      list = [];
      deliveredAt.set(id, list);
      seqOf.set(id, seq);
    }
    list.push(now);
  });
  ws.on('close', (code, reason) => {
    sub.closed = { code, reason: reason.toString() };
  });
  ws.on('error', () => {});
  return sub;
}

/**
 * Samples each tenant's committed sequence (`tenants.last_seq`) every few ms, to split the
 * end-to-end latency into the pipeline's part (ack → commit) and the stream's (commit → delivery).
 * The split is as precise as the sampling interval.
 */
function watchCommits(db: import('pg').Pool, tenants: string[]) {
  const samples = new Map<string, { at: number; seq: number }[]>(tenants.map((t) => [t, []]));
  let stopped = false;
  void (async () => {
    while (!stopped) {
      const { rows } = await db.query<{ id: string; seq: string }>(
        'SELECT id, last_seq::text AS seq FROM tenants WHERE id = ANY($1)',
        [tenants],
      );
      const at = performance.now();
      for (const r of rows) {
        const list = samples.get(r.id)!;
        if (list.at(-1)?.seq !== Number(r.seq)) list.push({ at, seq: Number(r.seq) });
      }
      await sleep(COMMIT_SAMPLE_MS);
    }
  })();
  return {
    stop() {
      stopped = true;
    },
    /** When `seq` of `tenant` was first seen committed, or undefined. */
    committedAt(tenant: string, seq: number): number | undefined {
      const list = samples.get(tenant) ?? [];
      let lo = 0;
      let hi = list.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (list[mid]!.seq >= seq) hi = mid;
        else lo = mid + 1;
      }
      return list[lo]?.at;
    },
  };
}

function metricValue(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

async function waitFor(done: () => boolean, timeoutMs: number, message: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(message);
    await sleep(50);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await runScenario(() => runStream(process.argv.slice(2)));
}
