import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../infra/auth/sign.js';
import { configureFromEnv } from '../infra/config.js';
import { freePort } from './global-setup.js';
import { createTestDatabase, eventually, http, tempDir } from './harness.js';

/**
 * The durability promise, tested on the real process: a 2xx means the events survive a crash of
 * the service at any point. The service runs as a child process (`tsx bin/daemon.ts all`), gets
 * bulk batches from several concurrent clients, and is SIGKILLed while the queue still holds
 * acknowledged batches and persist is at work. After each restart on the same database and
 * DATA_DIR, every acknowledged id must end up stored exactly once, with a gapless sequence per
 * tenant. Requests cut off by the kill were never acknowledged: they may be stored (at most once)
 * or not at all.
 */

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const TENANTS = ['acme', 'globex'];
const KILLS = 3;

let databaseUrl: string;
let dataDir: string;
let port: number;
let db: pg.Client;
let child: ChildProcess | undefined;
let env: Record<string, string>;

/** Starts the service and waits for /healthz; the child leads its own process group. */
async function start(): Promise<void> {
  // What `npx tsx bin/daemon.ts all` runs, minus npx's own start-up second.
  const proc = spawn(path.join(repoRoot, 'node_modules', '.bin', 'tsx'), ['bin/daemon.ts', 'all'], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr?.on('data', (d) => {
    stderr = (stderr + String(d)).slice(-4000);
  });
  child = proc;
  await eventually(async () => {
    if (proc.exitCode !== null) throw new Error(`service exited with ${proc.exitCode}: ${stderr}`);
    const res = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
    return res?.status === 200 ? true : undefined;
  }, 60_000);
}

/** SIGKILL to the whole group (tsx and the node process it starts), then waits for the exit. */
async function kill(): Promise<void> {
  const proc = child;
  if (!proc?.pid || proc.exitCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  process.kill(-proc.pid, 'SIGKILL');
  await exited;
  child = undefined;
}

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await db.query(sql, params);
  return Number(rows[0].n);
}

beforeAll(async () => {
  databaseUrl = await createTestDatabase();
  dataDir = tempDir('auditlog-crash-');
  fs.chmodSync(dataDir, 0o755);
  port = await freePort();
  env = {
    DATABASE_URL: databaseUrl,
    DATA_DIR: dataDir,
    PORT: String(port),
    LOG_LEVEL: 'silent',
    // Messages in flight at the kill become visible again after a second, not thirty.
    QUEUE_VISIBILITY_TIMEOUT_MS: '1000',
    STAGE_RETRY_BASE_MS: '50',
  };
  db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
});
afterAll(async () => {
  await kill();
  await db?.end();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('crash safety', () => {
  it(`loses and duplicates nothing acknowledged across ${KILLS} SIGKILLs mid-pipeline`, async () => {
    const config = configureFromEnv(env);
    const platform = await signToken(dataDir, config, { tenant: '*', role: 'admin', sub: 'root' });
    const writers = Object.fromEntries(
      await Promise.all(
        TENANTS.map(async (t) => [
          t,
          await signToken(dataDir, config, { tenant: t, role: 'admin', sub: 'app' }),
        ]),
      ),
    ) as Record<string, string>;
    await start();
    const base = `http://127.0.0.1:${port}`;
    for (const id of TENANTS) {
      expect(
        (await http(base, 'POST', '/api/v1/tenants', { token: platform, body: { id, name: id } })).status,
      ).toBe(201);
    }

    const acked = new Map<string, string>(); // id → tenant
    const sent = new Set<string>();
    let pendingAtKill = 0;
    let batchNo = 0;

    for (let round = 0; round < KILLS; round++) {
      let stop = false;
      let ackedThisRound = 0;
      // Four clients post 100-event batches back to back until the kill cuts them off.
      const failures: unknown[] = [];
      const clients = Array.from({ length: 4 }, async (_, c) => {
        while (!stop) {
          const tenant = TENANTS[(c + batchNo) % TENANTS.length]!;
          const n = batchNo++;
          // Client ids: then even a request cut off by the kill has known ids.
          const events = Array.from({ length: 100 }, (_, i) => ({
            id: randomUUID(),
            action: 'CREATE',
            resource_type: 'order',
            resource_id: `r${round}-b${n}-e${i}`,
            message: `round ${round} batch ${n} event ${i}`,
            metadata: { round, batch: n, i },
          }));
          for (const e of events) sent.add(e.id);
          try {
            const res = await fetch(`${base}/api/v1/logs/bulk`, {
              method: 'POST',
              headers: { authorization: `Bearer ${writers[tenant]}`, 'content-type': 'application/json' },
              body: JSON.stringify({ events }),
            });
            if (res.status !== 202) throw new Error(`unexpected ${res.status}: ${await res.text()}`);
            const body = (await res.json()) as { ids: string[] };
            expect(body.ids).toEqual(events.map((e) => e.id));
            for (const id of body.ids) acked.set(id, tenant);
            ackedThisRound++;
          } catch (err) {
            // Only the kill may interrupt a request; any other failure fails the test.
            if (!stop) failures.push(err);
            return;
          }
        }
      });
      // Kill once a good number of batches is acknowledged and the queue still holds some of them.
      await eventually(async () => {
        if (failures.length > 0) throw failures[0];
        if (ackedThisRound < 8) return undefined;
        const queued = await count('SELECT count(*) AS n FROM queue_messages');
        return queued > 0 ? true : undefined;
      }, 60_000);
      pendingAtKill += await count('SELECT count(*) AS n FROM queue_messages');
      // Clients start no new request from here; those in flight are cut off by the kill.
      stop = true;
      await kill();
      await Promise.all(clients);
      expect(failures).toEqual([]);
      await start();
    }
    expect(pendingAtKill).toBeGreaterThan(0);

    // Let the restarted service drain everything, then compare with what was acknowledged.
    await eventually(async () => {
      const queued = await count('SELECT count(*) AS n FROM queue_messages');
      const stored = await count('SELECT count(*) AS n FROM event_ids WHERE id = ANY($1::uuid[])', [
        [...acked.keys()],
      ]);
      return queued === 0 && stored === acked.size ? true : undefined;
    }, 90_000);

    expect(await count('SELECT count(*) AS n FROM queue_dead_letters')).toBe(0);
    const { rows } = await db.query<{ tenant_id: string; id: string; seq: string }>(
      'SELECT tenant_id, id::text AS id, seq::text AS seq FROM events ORDER BY tenant_id, events.seq',
    );
    // Exactly once: no id twice, every acknowledged id present, nothing that was never sent.
    const seen = new Map<string, number>();
    for (const r of rows) seen.set(r.id, (seen.get(r.id) ?? 0) + 1);
    expect([...seen.values()].filter((n) => n > 1)).toEqual([]);
    const missing = [...acked.keys()].filter((id) => !seen.has(id));
    expect(missing).toEqual([]);
    expect(rows.filter((r) => !sent.has(r.id))).toEqual([]);
    for (const r of rows) {
      if (acked.has(r.id)) expect(r.tenant_id).toBe(acked.get(r.id));
    }
    // event_ids mirrors events one to one.
    expect(await count('SELECT count(*) AS n FROM event_ids')).toBe(rows.length);
    // Gapless per tenant, and last_seq agrees.
    for (const tenant of TENANTS) {
      const seqs = rows.filter((r) => r.tenant_id === tenant).map((r) => Number(r.seq));
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
      expect(await count('SELECT last_seq AS n FROM tenants WHERE id = $1', [tenant])).toBe(seqs.length);
    }
    // Stored rows were not duplicated inside a batch either: resource ids are unique per event.
    const { rows: dup } = await db.query(
      'SELECT resource_id FROM events GROUP BY tenant_id, resource_id HAVING count(*) > 1 LIMIT 5',
    );
    expect(dup).toEqual([]);
  }, 240_000);
});
