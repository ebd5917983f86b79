import { setTimeout as sleep } from 'node:timers/promises';
import { Client, type ClientOptions, errors } from '@opensearch-project/opensearch';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { PersistedEvent } from '../schema/batch.js';
import { toDocument } from './documents.js';
import { indexTemplate } from './mapping.js';
import { templateName, tenantNames } from './names.js';
import { buildSearchBody, type SearchRequest } from './query-dsl.js';
import { backoffDelay, type RetryPolicy } from './retry.js';

/** One search hit: enough to load the event from PostgreSQL and to build the next cursor. */
export interface SearchHit {
  id: string;
  sequence: string;
  /** UTC with microseconds, exactly as PostgreSQL returns it. */
  occurred_at: string;
}

export interface SearchIndexOptions extends Partial<RetryPolicy> {
  /** Name prefix (`OPENSEARCH_INDEX_PREFIX`). */
  prefix: string;
  log: Logger;
  /** Injectable for tests; defaults to a real timer. */
  sleep?: (ms: number) => Promise<unknown>;
  /** Injectable for tests; defaults to Math.random (backoff jitter). */
  random?: () => number;
}

/** Thrown for bulk items OpenSearch refused for good (e.g. a mapping conflict): retrying cannot help. */
export class BulkRejectedError extends Error {
  override name = 'BulkRejectedError';
}

interface BulkItem {
  status: number;
  error?: { type?: string };
}

/** Statuses worth retrying: overload (429) and server-side failures. */
const retryableStatus = (status: number) => status === 429 || status >= 500;

/** Whole-request failures worth retrying: 429/5xx answers and connection-level errors. */
function retryableError(err: unknown): boolean {
  if (err instanceof errors.ResponseError) return retryableStatus(err.statusCode ?? 0);
  return (
    err instanceof errors.ConnectionError ||
    err instanceof errors.TimeoutError ||
    err instanceof errors.NoLivingConnectionsError
  );
}

/**
 * The OpenSearch adapter: per-tenant aliases over versioned indices, an index template, bulk
 * indexing with retries, and tenant-filtered search. The client's own retries are off
 * (`maxRetries: 0`): it retries 502–504 immediately and never 429, so this class applies one
 * policy (exponential backoff with jitter) to 429, 5xx and connection errors, per request and per
 * bulk item.
 */
export class SearchIndex {
  private readonly policy: RetryPolicy;
  private readonly sleep: (ms: number) => Promise<unknown>;
  private readonly random: () => number;
  private template: Promise<void> | undefined;
  private readonly tenants = new Map<string, Promise<void>>();

  constructor(
    readonly client: Client,
    private readonly options: SearchIndexOptions,
  ) {
    this.policy = {
      maxRetries: options.maxRetries ?? 5,
      baseMs: options.baseMs ?? 200,
      maxMs: options.maxMs ?? 10_000,
    };
    this.sleep = options.sleep ?? ((ms) => sleep(ms));
    this.random = options.random ?? Math.random;
  }

  /** Builds the adapter from configuration. `clientOptions` lets tests plug in a recording Connection. */
  static fromConfig(config: Config, log: Logger, clientOptions: Partial<ClientOptions> = {}): SearchIndex {
    if (!config.OPENSEARCH_URL) throw new Error('OPENSEARCH_URL is not set');
    const client = new Client({
      node: config.OPENSEARCH_URL,
      maxRetries: 0,
      requestTimeout: 30_000,
      ...clientOptions,
    });
    return new SearchIndex(client, {
      prefix: config.OPENSEARCH_INDEX_PREFIX,
      maxRetries: config.OPENSEARCH_MAX_RETRIES,
      log,
    });
  }

  /** Runs `fn`, retrying retryable failures with backoff; other failures are thrown at once. */
  private async retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!retryableError(err) || attempt >= this.policy.maxRetries) throw err;
        const delay = backoffDelay(this.policy, attempt, this.random);
        this.options.log.warn(
          { what, attempt: attempt + 1, delay, err: (err as Error).name },
          'OpenSearch retry',
        );
        await this.sleep(delay);
      }
    }
  }

  /** Installs the index template (once per process; PUT is idempotent across processes). */
  ensureTemplate(): Promise<void> {
    this.template ??= this.retrying('template', async () => {
      await this.client.indices.putIndexTemplate({
        name: templateName(this.options.prefix),
        body: indexTemplate(this.options.prefix) as never,
      });
    }).catch((err) => {
      this.template = undefined;
      throw err;
    });
    return this.template;
  }

  /** Creates the tenant's versioned index and its write alias unless the alias exists (cached). */
  ensureTenant(tenant: string): Promise<void> {
    let ready = this.tenants.get(tenant);
    if (!ready) {
      ready = this.createTenant(tenant).catch((err) => {
        this.tenants.delete(tenant);
        throw err;
      });
      this.tenants.set(tenant, ready);
    }
    return ready;
  }

  private async createTenant(tenant: string): Promise<void> {
    await this.ensureTemplate();
    const { alias, index } = tenantNames(this.options.prefix, tenant);
    const exists = await this.retrying('alias', () => this.client.indices.existsAlias({ name: alias }));
    if (exists.body === true) return;
    const created = await this.retrying('create', () =>
      this.client.indices.create(
        { index, body: { aliases: { [alias]: { is_write_index: true } } } },
        { ignore: [400] },
      ),
    );
    if (created.statusCode === 400) {
      const type = (created.body as { error?: { type?: string } }).error?.type;
      if (type !== 'resource_already_exists_exception') throw new Error(`creating ${index} failed: ${type}`);
      // The index exists (a racing worker, or an alias removed by hand): (re)attach the alias.
      await this.retrying('alias', () =>
        this.client.indices.putAlias({ index, name: alias, body: { is_write_index: true } }),
      );
    }
  }

  /**
   * Indexes events into their tenants' aliases with the event id as `_id`, so redelivery
   * overwrites instead of duplicating. Items failing with 429/5xx are retried alone, with backoff;
   * an item refused for good fails the call (the batch is retried and, in the end, dead-lettered:
   * never dropped). `require_alias` stops a missing alias from auto-creating an unmapped index.
   */
  async bulkIndex(events: PersistedEvent[]): Promise<void> {
    if (events.length === 0) return;
    await Promise.all([...new Set(events.map((e) => e.tenant_id))].map((t) => this.ensureTenant(t)));
    let pending = events;
    for (let attempt = 0; ; attempt++) {
      const body = pending.flatMap((e) => [
        { index: { _index: tenantNames(this.options.prefix, e.tenant_id).alias, _id: e.id } },
        toDocument(e),
      ]);
      const response = await this.retrying('bulk', () => this.client.bulk({ body, require_alias: true }));
      if (!response.body.errors) return;
      const items = response.body.items as Record<string, BulkItem>[];
      const retry: PersistedEvent[] = [];
      const refused: string[] = [];
      pending.forEach((e, i) => {
        const item = items[i] && Object.values(items[i])[0];
        if (!item) retry.push(e);
        else if (item.status >= 200 && item.status < 300) return;
        else if (retryableStatus(item.status)) retry.push(e);
        else refused.push(`${item.status} ${item.error?.type ?? 'error'}`);
      });
      if (refused.length > 0) {
        // Types and statuses only: an error reason may quote event content.
        throw new BulkRejectedError(`${refused.length} event(s) refused by OpenSearch: ${refused[0]}`);
      }
      if (retry.length === 0) return;
      if (attempt >= this.policy.maxRetries) {
        throw new Error(`${retry.length} event(s) still failing after ${attempt + 1} bulk attempts`);
      }
      const delay = backoffDelay(this.policy, attempt, this.random);
      this.options.log.warn(
        { attempt: attempt + 1, items: retry.length, delay },
        'OpenSearch bulk item retry',
      );
      await this.sleep(delay);
      pending = retry;
    }
  }

  /**
   * Up to `request.size` events matching `request` in its tenant, ordered like the PostgreSQL path.
   * Only refs come back (`_source` is limited to id, sequence and occurred_at).
   */
  async search(request: SearchRequest): Promise<SearchHit[]> {
    const { alias } = tenantNames(this.options.prefix, request.tenantId);
    const response = await this.retrying('search', () =>
      this.client.search({ index: alias, body: buildSearchBody(request) as never }, { ignore: [404] }),
    );
    if (response.statusCode === 404) {
      // A tenant that never had an event indexed has no alias yet: nothing matches. Any other
      // 404 (none is expected from _search) is an error, not an empty result.
      const type = (response.body as { error?: { type?: string } }).error?.type;
      if (type === 'index_not_found_exception') return [];
      throw new Error(`OpenSearch search answered 404: ${type}`);
    }
    const hits = (response.body.hits?.hits ?? []) as { _source?: SearchHit }[];
    return hits.flatMap((h) =>
      h._source
        ? [{ id: h._source.id, sequence: String(h._source.sequence), occurred_at: h._source.occurred_at }]
        : [],
    );
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
