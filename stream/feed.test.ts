import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestService, type TestService } from '../test/harness.js';
import { EVENTS_CHANNEL } from './feed.js';
import { createTenants, ingest, range, StreamClient } from './test-client.js';

/**
 * The feed treats notifications as hints: bogus, stale, repeated or lost ones never cause a gap
 * or a duplicate, because every read is `seq > last delivered`.
 */
describe('stream feed robustness', () => {
  let svc: TestService;
  let db: pg.Client;
  let writer: string;
  let reader: string;

  beforeAll(async () => {
    svc = await startTestService();
    await createTenants(svc.url, await svc.token('*', 'admin', 'root'), ['acme', 'globex']);
    writer = await svc.token('acme', 'admin', 'app');
    reader = await svc.token('acme', 'auditor', 'tail');
    db = new pg.Client({ connectionString: svc.config.DATABASE_URL });
    await db.connect();
  });
  afterAll(async () => {
    await db?.end();
    await svc?.stop();
  });

  const batch = (tag: string) =>
    Array.from({ length: 10 }, (_, i) => ({
      action: 'CREATE',
      resource_type: 'order',
      resource_id: `${tag}-${i}`,
    }));

  it('ignores malformed, stale, inflated and foreign notifications', async () => {
    const client = await StreamClient.open(svc.url, reader, { since: '0' });
    const first = await ingest(svc.url, writer, batch('a'));
    await client.waitForIds(first);
    for (const payload of [
      'not json',
      'null',
      '{"tenant":5,"from":1,"to":2}',
      '{"tenant":"acme","from":1,"to":"abc"}',
      // Stale and repeated: already delivered.
      '{"tenant":"acme","from":1,"to":3}',
      '{"tenant":"acme","from":1,"to":3}',
      // Announces rows that do not exist (yet).
      '{"tenant":"acme","from":1,"to":100000}',
      // Another tenant's range must not make acme's reader deliver anything of globex.
      '{"tenant":"globex","from":1,"to":5}',
    ]) {
      await db.query('SELECT pg_notify($1, $2)', [EVENTS_CHANNEL, payload]);
    }
    const second = await ingest(svc.url, writer, batch('b'));
    await client.waitForIds(second);
    const seqs = client.sequences();
    expect(seqs).toEqual(range(1, seqs.length));
    expect(client.events.every((e) => e.tenant_id === 'acme')).toBe(true);
    expect(client.closed).toBeUndefined();
    await client.close();
  });

  it('catches up after losing its LISTEN connection', async () => {
    const client = await StreamClient.open(svc.url, reader, { since: '0' });
    const { rows } = await db.query(
      `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
        WHERE application_name = 'auditlog-stream-listen' AND datname = current_database()`,
    );
    expect(rows).toEqual([{ killed: true }]);
    // Committed while nobody listens: found by the position check after reconnecting.
    const ids = await ingest(svc.url, writer, batch('c'));
    await client.waitForIds(ids);
    const seqs = client.sequences();
    expect(seqs).toEqual(range(1, seqs.length));
    // A new LISTEN connection is in place.
    await eventually(async () => {
      const r = await db.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE application_name = 'auditlog-stream-listen' AND datname = current_database()`,
      );
      return r.rows[0].n === 1 ? true : undefined;
    });
    await client.close();
  });
});
