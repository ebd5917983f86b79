import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { SQSClient } from '@aws-sdk/client-sqs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main, parseDlqArgs, summarizeBody, UsageError, withRunningEmbedded } from '../bin/dlq.js';
import { configureFromEnv } from '../infra/config.js';
import { type Context, createContext } from '../infra/context.js';
import { createSqsTransport } from '../infra/transport/sqs.js';
import type { QueueName, Transport } from '../infra/transport/types.js';
import { type FauxqsServer, startFauxqs } from './fauxqs.js';
import { createTestDatabase, tempDir } from './harness.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Runs the CLI in-process; returns its exit code and what it wrote. */
async function run(argv: string[], env: Record<string, string>) {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  err.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const code = await main(argv, env, out, err);
  return {
    code,
    stdout,
    stderr,
    lines: stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l)),
  };
}

/** A batch as the queues carry it; `secret` stands for event content the CLI must never print. */
function batchBody(tenant: string, ids: string[], secret: string): string {
  return JSON.stringify({
    v: 1,
    tenant_id: tenant,
    events: ids.map((id) => ({ id, tenant_id: tenant, action: 'UPDATE', message: secret })),
  });
}

/** Sends `bodies` to `queue` and fails each delivery until it is dead-lettered (max attempts 1). */
async function deadLetter(transport: Transport, queue: QueueName, bodies: { group: string; body: string }[]) {
  await transport.send(
    queue,
    bodies.map((b) => ({ group: b.group, dedupId: randomUUID(), body: b.body })),
  );
  for (let round = 0; round < 20; round++) {
    const got = await transport.receive(queue, { max: 10, waitMs: 0, visibilityMs: 30_000 });
    if (got.length > 0) await transport.retry(queue, got, 0);
    if ((await transport.listDeadLetters(queue, 10)).length === bodies.length) return;
  }
  throw new Error('messages were not dead-lettered');
}

describe('dlq CLI arguments', () => {
  it('parses list and redrive', () => {
    expect(parseDlqArgs(['list', 'persist'])).toEqual({ command: 'list', queue: 'persist', limit: 100 });
    expect(parseDlqArgs(['list', 'mask', '--limit', '7'])).toEqual({
      command: 'list',
      queue: 'mask',
      limit: 7,
    });
    expect(parseDlqArgs(['redrive', 'index'])).toEqual({
      command: 'redrive',
      queue: 'index',
      ids: undefined,
    });
    expect(parseDlqArgs(['redrive', 'encrypt', '--ids', 'a, b,a'])).toEqual({
      command: 'redrive',
      queue: 'encrypt',
      ids: ['a', 'b'],
    });
    expect(parseDlqArgs(['--help'])).toEqual({ command: 'help' });
  });

  it.each([
    [[], 'the command must be list or redrive'],
    [['purge', 'persist'], 'the command must be list or redrive'],
    [['list'], 'the queue must be one of mask, encrypt, persist, index'],
    [['list', 'events'], 'the queue must be one of mask, encrypt, persist, index'],
    [['list', 'persist', 'extra'], 'unexpected argument "extra"'],
    [['list', 'persist', '--limit', '0'], '--limit must be a whole number from 1 to 10000'],
    [['list', 'persist', '--limit', '10001'], '--limit must be a whole number from 1 to 10000'],
    [['list', 'persist', '--limit', '2.5'], '--limit must be a whole number from 1 to 10000'],
    [['list', 'persist', '--ids', 'a'], '--ids applies to redrive only'],
    [['redrive', 'persist', '--limit', '3'], '--limit applies to list only'],
    [['redrive', 'persist', '--ids', 'a,,b'], '--ids must be a comma-separated list of ids'],
  ])('rejects %j', (argv, message) => {
    expect(() => parseDlqArgs(argv)).toThrow(new UsageError(message));
  });

  it('exits 2 with the usage on bad arguments, without touching any queue', async () => {
    const res = await run(['list', 'nope'], { DATABASE_URL: 'postgres://nowhere.invalid/x' });
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(/^error: the queue must be one of mask, encrypt, persist, index\nusage: /);
  });

  it('exits 1 on invalid configuration', async () => {
    const res = await run(['list', 'persist'], { TRANSPORT: 'kafka' });
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain('TRANSPORT');
  });
});

describe('dead-letter body summary', () => {
  it('reports the event count and ids, never the content', () => {
    const ids = Array.from(
      { length: 23 },
      (_, i) => `00000000-0000-7000-8000-${String(i).padStart(12, '0')}`,
    );
    const summary = summarizeBody(batchBody('acme', ids, 'card 4111 1111 1111 1111'));
    expect(summary).toEqual({ events: 23, ids: ids.slice(0, 20), more: 3 });
    expect(JSON.stringify(summary)).not.toContain('4111');
  });

  it('describes bodies that are not batches by their size only', () => {
    expect(summarizeBody('{"v":1,"events":[')).toEqual({ unparsable: true, bytes: 17 });
    expect(summarizeBody('{"secret":"hunter2"}')).toEqual({ unparsable: true, bytes: 20 });
    expect(summarizeBody('{"events":[{"id":7},null,{"id":"x"}]}')).toEqual({
      events: 3,
      ids: ['x'],
      more: 0,
    });
  });
});

describe('dlq CLI next to a running embedded PostgreSQL', () => {
  const pidFile = (dir: string, pid: number, port: number) => {
    fs.mkdirSync(path.join(dir, 'pg'), { recursive: true });
    fs.writeFileSync(
      path.join(dir, 'pg', 'postmaster.pid'),
      `${pid}\n${dir}/pg\n1795840000\n${port}\n/tmp\n`,
    );
  };

  it('connects to the server a daemon is running instead of starting (and stopping) its own', () => {
    const dir = tempDir('auditlog-dlq-pid-');
    try {
      const env = { DATA_DIR: dir };
      expect(withRunningEmbedded(configureFromEnv(env), env).DATABASE_URL).toBeUndefined();
      pidFile(dir, process.pid, 54777);
      expect(withRunningEmbedded(configureFromEnv(env), env).DATABASE_URL).toBe(
        'postgres://postgres:auditlog@127.0.0.1:54777/postgres',
      );
      // An explicit DATABASE_URL wins.
      const explicit = { ...env, DATABASE_URL: 'postgres://db.example/audit' };
      expect(withRunningEmbedded(configureFromEnv(explicit), explicit).DATABASE_URL).toBe(
        'postgres://db.example/audit',
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ignores a stale pid file', async () => {
    const dir = tempDir('auditlog-dlq-pid-');
    try {
      // A pid that certainly is not running: a child that has already exited.
      const child = spawn(process.execPath, ['-e', '']);
      const pid = child.pid!;
      await new Promise((r) => child.on('exit', r));
      pidFile(dir, pid, 54777);
      const env = { DATA_DIR: dir };
      expect(withRunningEmbedded(configureFromEnv(env), env).DATABASE_URL).toBeUndefined();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The same scenario on both transports: list, redrive one by id, fail on an unknown id, redrive all. */
function lifecycle(
  name: string,
  setup: () => Promise<{ env: Record<string, string>; transport: Transport }>,
) {
  describe(`dlq CLI on the ${name} transport`, () => {
    let env: Record<string, string>;
    let transport: Transport;
    const acmeIds = [randomUUID(), randomUUID()];
    const globexIds = [randomUUID()];

    beforeAll(async () => {
      ({ env, transport } = await setup());
      await deadLetter(transport, 'persist', [
        { group: 'acme', body: batchBody('acme', acmeIds, 'hunter2') },
        { group: 'globex', body: batchBody('globex', globexIds, 'hunter2') },
      ]);
    });

    it('lists dead letters as JSON lines with a summary, not the events', async () => {
      const res = await run(['list', 'persist'], env);
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      expect(res.stdout).not.toContain('hunter2');
      const byGroup = Object.fromEntries(res.lines.map((l) => [l.group, l]));
      expect(Object.keys(byGroup).sort()).toEqual(['acme', 'globex']);
      for (const [group, ids] of [
        ['acme', acmeIds],
        ['globex', globexIds],
      ] as const) {
        const line = byGroup[group];
        expect(Object.keys(line).sort()).toEqual([
          'attempts',
          'body',
          'deadAt',
          'group',
          'id',
          'queue',
          'sentAt',
        ]);
        expect(line).toMatchObject({
          queue: 'persist',
          group,
          attempts: 1,
          body: { events: ids.length, ids, more: 0 },
        });
        expect(typeof line.id).toBe('string');
        expect(new Date(line.sentAt).toISOString()).toBe(line.sentAt);
        expect(Date.parse(line.deadAt)).toBeGreaterThanOrEqual(Date.parse(line.sentAt));
      }
      expect((await run(['list', 'persist', '--limit', '1'], env)).lines).toHaveLength(1);
      expect((await run(['list', 'mask'], env)).lines).toEqual([]);
    });

    it('redrives by id, fails on unknown ids, then redrives the rest', async () => {
      const before = (await run(['list', 'persist'], env)).lines;
      const globex = before.find((l) => l.group === 'globex');
      const one = await run(['redrive', 'persist', '--ids', globex.id], env);
      expect(one).toMatchObject({ code: 0, stderr: '', lines: [{ queue: 'persist', redriven: 1 }] });
      const left = (await run(['list', 'persist'], env)).lines;
      expect(left.map((l) => l.group)).toEqual(['acme']);

      // The redriven message is back on its queue, whole, in its tenant's group.
      const back = await transport.receive('persist', { max: 10, waitMs: 0, visibilityMs: 30_000 });
      expect(back.map((m) => ({ group: m.group, body: m.body }))).toEqual([
        { group: 'globex', body: batchBody('globex', globexIds, 'hunter2') },
      ]);
      await transport.ack('persist', back);

      const missing = await run(['redrive', 'persist', '--ids', globex.id], env);
      expect(missing.code).toBe(1);
      expect(missing.lines).toEqual([{ queue: 'persist', redriven: 0 }]);
      expect(missing.stderr).toBe('error: 1 of the 1 ids were not found in the persist dead letters\n');

      const rest = await run(['redrive', 'persist'], env);
      expect(rest).toMatchObject({ code: 0, lines: [{ queue: 'persist', redriven: 1 }] });
      expect((await run(['list', 'persist'], env)).lines).toEqual([]);
      const acme = await transport.receive('persist', { max: 10, waitMs: 0, visibilityMs: 30_000 });
      expect(acme.map((m) => m.group)).toEqual(['acme']);
      await transport.ack('persist', acme);
    });
  });
}

let embeddedCtx: Context | undefined;
let dataDir: string | undefined;
lifecycle('embedded', async () => {
  dataDir = tempDir('auditlog-dlq-');
  const env = {
    DATABASE_URL: await createTestDatabase(),
    DATA_DIR: dataDir,
    TRANSPORT: 'embedded',
    QUEUE_MAX_ATTEMPTS: '1',
    LOG_LEVEL: 'silent',
  };
  embeddedCtx = await createContext(configureFromEnv(env), {
    daemon: 'test',
    log: pino({ level: 'silent' }),
  });
  return { env, transport: embeddedCtx.transport };
});

let fauxqs: FauxqsServer | undefined;
let sqsClient: SQSClient | undefined;
let sqsTransport: Transport | undefined;
let sqsEnv: Record<string, string> | undefined;
lifecycle('sqs', async () => {
  fauxqs = await startFauxqs();
  const env = {
    DATABASE_URL: await createTestDatabase(),
    DATA_DIR: dataDir ?? tempDir('auditlog-dlq-'),
    TRANSPORT: 'sqs',
    SQS_ENDPOINT: fauxqs.endpoint,
    SQS_REGION: 'us-east-1',
    SQS_QUEUE_PREFIX: `dlq-${randomUUID().slice(0, 8)}`,
    SQS_CREATE_QUEUES: 'true',
    QUEUE_MAX_ATTEMPTS: '1',
    LOG_LEVEL: 'silent',
  };
  // The CLI's SQS client takes credentials from the default chain, i.e. these variables.
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
  sqsClient = new SQSClient({
    region: 'us-east-1',
    endpoint: fauxqs.endpoint,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  sqsTransport = await createSqsTransport(configureFromEnv(env), { client: sqsClient });
  sqsEnv = env;
  return { env, transport: sqsTransport };
});

describe('dlq CLI as a process', () => {
  it('`npm run dlq` prints JSON lines and exits 0, and exits 1 when the queue server is unreachable', async () => {
    const env = sqsEnv!;
    await deadLetter(sqsTransport!, 'mask', [
      { group: 'acme', body: batchBody('acme', [randomUUID()], 'x') },
    ]);
    const exec = (extra: Record<string, string>) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn('npm', ['run', '--silent', 'dlq', '--', 'list', 'mask'], {
          cwd: ROOT,
          env: {
            PATH: process.env.PATH ?? '',
            HOME: process.env.HOME ?? '',
            AWS_ACCESS_KEY_ID: 'test',
            AWS_SECRET_ACCESS_KEY: 'test',
            ...env,
            ...extra,
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (c: Buffer) => {
          stdout += c.toString();
        });
        child.stderr.on('data', (c: Buffer) => {
          stderr += c.toString();
        });
        child.on('exit', (code) => resolve({ code, stdout, stderr }));
      });
    const ok = await exec({});
    expect(ok.code, ok.stderr).toBe(0);
    const lines = ok.stdout.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ queue: 'mask', group: 'acme', attempts: 1 });

    const down = await exec({ SQS_ENDPOINT: 'http://127.0.0.1:9', SQS_CREATE_QUEUES: 'false' });
    expect(down.code).toBe(1);
    expect(down.stdout).toBe('');
    expect(down.stderr).toMatch(/^error: /m);
  }, 60_000);
});

afterAll(async () => {
  vi.unstubAllEnvs();
  await embeddedCtx?.close();
  await sqsTransport?.close();
  sqsClient?.destroy();
  await fauxqs?.stop();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});
