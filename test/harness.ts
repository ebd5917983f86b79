import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { inject } from 'vitest';
import { type DaemonName, type Running, startDaemons } from '../bin/compose.js';
import type { Role } from '../infra/auth/principal.js';
import { signToken } from '../infra/auth/sign.js';
import { type Config, configureFromEnv } from '../infra/config.js';
import { type Context, createContext } from '../infra/context.js';
import { TEMPLATE_DB, withDatabase } from './global-setup.js';

/** A fresh database cloned from the migrated template; one per test file (or per test). */
export async function createTestDatabase(): Promise<string> {
  const admin = new pg.Client({ connectionString: inject('pgAdminUrl') });
  await admin.connect();
  const name = `t_${randomBytes(6).toString('hex')}`;
  try {
    // Cloning needs the template to have no other connections; retry briefly if one lingers.
    for (let i = 0; ; i++) {
      try {
        await admin.query(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE_DB}`);
        break;
      } catch (err) {
        if (i >= 20) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    await admin.end();
  }
  return withDatabase(inject('pgAdminUrl'), name);
}

export function tempDir(prefix = 'auditlog-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Environment for a test service: real database, its own DATA_DIR, quiet logs, a free port. */
export function testEnv(databaseUrl: string, dataDir: string, extra: Record<string, string> = {}) {
  return {
    DATABASE_URL: databaseUrl,
    DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    PORT: '0',
    STAGE_RETRY_BASE_MS: '50',
    // In-process tests reach into the stages' context (e.g. a recording OpenSearch adapter), so the
    // stages run on the test's thread; test/stage-worker.test.ts covers the worker thread.
    STAGE_WORKER: 'false',
    ...extra,
  };
}

export interface TestService {
  url: string;
  ctx: Context;
  config: Config;
  running: Running;
  token(tenant: string, role: Role, sub?: string): Promise<string>;
  /** Creates a tenant through the API as a platform admin; throws unless it answers 201. */
  createTenant(id: string, name?: string): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the named daemons in this process against a fresh database. */
export async function startTestService(
  daemons: DaemonName[] | 'all' = 'all',
  extraEnv: Record<string, string> = {},
): Promise<TestService> {
  const databaseUrl = await createTestDatabase();
  const dataDir = tempDir();
  const config = configureFromEnv(testEnv(databaseUrl, dataDir, extraEnv));
  const ctx = await createContext(config, { daemon: 'test', log: pino({ level: 'silent' }) });
  const names: DaemonName[] =
    daemons === 'all'
      ? ['ingest', 'mask', 'encrypt', 'persist', 'index', 'query', 'stream', 'archive']
      : daemons;
  const running = await startDaemons(ctx, names);
  return {
    url: running.url,
    ctx,
    config,
    running,
    token: (tenant, role, sub = `${role}-1`) => signToken(dataDir, config, { tenant, role, sub }),
    async createTenant(id, name = id) {
      const platform = await signToken(dataDir, config, { tenant: '*', role: 'admin', sub: 'root' });
      const res = await http(running.url, 'POST', '/api/v1/tenants', { token: platform, body: { id, name } });
      if (res.status !== 201) throw new Error(`creating tenant ${id} answered ${res.status}`);
    },
    async stop() {
      await running.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls `check` until it returns a value that is not undefined, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`condition not met in ${timeoutMs} ms${last ? `: ${last}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Minimal JSON HTTP client for tests. */
export async function http(
  base: string,
  method: string,
  url: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string>; raw?: string } = {},
): Promise<{ status: number; body: any; headers: Headers; text: string }> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined;
  if (options.raw !== undefined) body = options.raw;
  else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(base + url, { method, headers, body });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, headers: res.headers, text };
}
