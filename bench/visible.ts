/**
 * `npm run bench -- visible [--quick]`: time-to-visible, from the ingest acknowledgement (the 202
 * reaching the client) until the event is returned by search, and until it arrives on the
 * WebSocket stream (skipped when this build has no stream service). Events are posted one per
 * request at a steady rate while other tenants ingest in the background.
 */
import { performance } from 'node:perf_hooks';
import { backgroundIngest } from './lib/background.js';
import { parseBenchArgs } from './lib/cli.js';
import { eventGenerator, rng } from './lib/events.js';
import { HttpClient } from './lib/http-client.js';
import { openLoop } from './lib/load.js';
import { fmt, note, printResult, printSummary } from './lib/report.js';
import { benchEnv } from './lib/service.js';
import { summarize } from './lib/stats.js';
import { sleep } from './lib/temp.js';
import { openStream } from './lib/ws.js';

const OPTIONS = {
  samples: { full: 1_000, quick: 100, help: 'events whose visibility is timed' },
  rate: { full: 20, quick: 20, help: 'timed events posted per second' },
  'ingest-rate': { full: 500, quick: 500, help: 'background ingest into other tenants, events/s' },
  'poll-ms': { full: 25, quick: 25, help: 'pause between search polls' },
};
const TENANT = 'visible';
/** Timed events carry this resource type; search and stream filter on it, so the service's own
 * self-audit events (resource type audit_log, one per search poll) never crowd them out. */
const RESOURCE_TYPE = 'bench_visibility_probe';
const SETTLE_MS = 30_000;

/** Runs the time-to-visible scenario; exits 1 if a probe event never became visible. */
export async function runVisible(argv: string[]): Promise<number> {
  const { quick, values } = parseBenchArgs(argv, OPTIONS);
  const env = await benchEnv('visible');
  const others = ['noise-a', 'noise-b', 'noise-c', 'noise-d'];
  await env.createTenants([TENANT, ...others]);
  const daemon = await env.daemon('all');
  note('starting the service');
  await daemon.start();
  const client = new HttpClient(daemon.url, 8);
  const writer = await env.token(TENANT, 'admin', 'bench-writer');
  const auditor = await env.token(TENANT, 'auditor', 'bench-auditor');

  const acked = new Map<string, number>();
  const searchSeen = new Map<string, number>();
  const streamSeen = new Map<string, number>();

  const stream = await openStream(daemon.url, auditor, { resource_type: RESOURCE_TYPE }, (frame, at) => {
    if (frame.type === 'event' && frame.event?.resource_type === RESOURCE_TYPE) {
      if (!streamSeen.has(frame.event.id)) streamSeen.set(frame.event.id, at);
    }
  });
  const streamSkipped = 'unavailable' in stream ? stream.unavailable : undefined;
  if (streamSkipped) note(`stream skipped: ${streamSkipped}`);

  // One poller: the newest 100 probe events, every poll-ms. Resolution is poll-ms plus one query.
  const pollFrom = new Date(Date.now() - 60_000).toISOString();
  let polling = true;
  let polls = 0;
  const poller = (async () => {
    const path = `/api/v1/logs?${new URLSearchParams({ resource_type: RESOURCE_TYPE, from: pollFrom, limit: '100' })}`;
    while (polling) {
      const res = await client.request('GET', path, { token: auditor });
      const at = performance.now();
      polls++;
      if (res.status !== 200)
        throw new Error(`search answered ${res.status}: ${res.body.toString().slice(0, 200)}`);
      for (const e of JSON.parse(res.body.toString('utf8')).data as { id: string }[]) {
        if (!searchSeen.has(e.id)) searchSeen.set(e.id, at);
      }
      await sleep(values['poll-ms']);
    }
  })();

  const writers = new Map<string, string>();
  for (const t of others) writers.set(t, await env.token(t, 'admin', 'bench-writer'));
  const r = rng(3);
  const bg = backgroundIngest(
    new HttpClient(daemon.url, 8),
    values['ingest-rate'],
    writers,
    () => others[Math.floor(r() * others.length)]!,
  );

  const next = eventGenerator(11, 'vis');
  note(`posting ${values.samples} probe events at ${values.rate}/s`);
  await openLoop(values.rate, (values.samples / values.rate) * 1000, async () => {
    const res = await client.request('POST', '/api/v1/logs', {
      token: writer,
      body: JSON.stringify({ ...next(), resource_type: RESOURCE_TYPE }),
    });
    const at = performance.now();
    if (res.status !== 202) throw new Error(`ingest answered ${res.status}`);
    acked.set(JSON.parse(res.body.toString('utf8')).ids[0], at);
  });

  // Let the last ones arrive; bounded, so a lost event is reported rather than waited for forever.
  const settleUntil = performance.now() + SETTLE_MS;
  const complete = () =>
    [...acked.keys()].every(
      (id) => searchSeen.has(id) && (streamSkipped !== undefined || streamSeen.has(id)),
    );
  while (!complete() && performance.now() < settleUntil) await sleep(50);
  polling = false;
  await poller;
  const ingest = await bg.stop();
  if ('socket' in stream) stream.socket.close();
  client.close();
  await daemon.stop();

  const delays = (seen: Map<string, number>) =>
    // A frame can arrive before the client has read the 202 of the same event; that counts as 0.
    [...acked].flatMap(([id, at]) => (seen.has(id) ? [Math.max(0, seen.get(id)! - at)] : []));
  const search = summarize(delays(searchSeen));
  const streamMs = streamSkipped ? null : summarize(delays(streamSeen));
  const missingSearch = acked.size - search.n;
  const missingStream = streamMs ? acked.size - streamMs.n : null;

  printSummary(`visible${quick ? ' (quick)' : ''}`, [
    ['events', `${acked.size} acknowledged, ${values.rate}/s`],
    [
      'search',
      `p50 ${search.p50} ms, p99 ${search.p99} ms, max ${search.max} ms (${missingSearch} never seen)`,
    ],
    [
      'stream',
      streamMs
        ? `p50 ${streamMs.p50} ms, p99 ${streamMs.p99} ms, max ${streamMs.max} ms (${missingStream} never seen)`
        : `skipped (${streamSkipped})`,
    ],
    ['search polls', `${fmt(polls)} (every ${values['poll-ms']} ms + query time)`],
    [
      'background ingest',
      `${fmt(ingest.sent)} events, ${fmt(ingest.shed)} shed, ${ingest.failed} bulks failed`,
    ],
  ]);
  printResult('visible', {
    quick,
    samples: acked.size,
    search_ms: search,
    stream_ms: streamMs,
    stream_skipped: streamSkipped ?? null,
    missing_search: missingSearch,
    missing_stream: missingStream,
    background_ingest: { offered_per_s: values['ingest-rate'], ...ingest },
  });
  return missingSearch === 0 && (missingStream ?? 0) === 0 ? 0 : 1;
}
