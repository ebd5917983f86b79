import pg from 'pg';
import type { Context } from '../infra/context.js';
import type { StoredEvent } from '../infra/schema/event.js';
import { decodeRows } from '../query/decode.js';
import { eventFrame } from './protocol.js';
import { readTenantAfter, tenantPositions } from './sql.js';

/** The channel persist notifies at commit with `{"tenant", "from", "to"}`. */
export const EVENTS_CHANNEL = 'auditlog_events';
/** Rows read per query; a burst is read in several rounds so memory stays bounded. */
const READ_CHUNK = 1000;
/**
 * Positions are re-checked this often, so a notification lost with a dropped LISTEN connection
 * delays delivery by at most this long instead of stalling it.
 */
const POLL_MS = 2000;
/** Wait before retrying a failed read, or reconnecting a lost LISTEN connection. */
const RETRY_MS = 1000;

/** One event as the fan-out hands it out: decoded, serialized once, with its sequence. */
export interface FeedItem {
  event: StoredEvent;
  frame: Buffer;
  seq: bigint;
}

/** A subscriber as the feed sees it. */
export interface FeedListener {
  readonly tenantId: string;
  /**
   * Called synchronously with every event of the tenant, in sequence order, in batches (one per
   * read). Must not block: the fan-out never waits for a client.
   */
  offer(items: readonly FeedItem[]): void;
}

interface TenantFeed {
  readonly id: string;
  readonly listeners: Set<FeedListener>;
  /** The last sequence read and handed to the listeners. */
  position: bigint;
  /** The highest sequence known to exist (from notifications and polls). */
  target: bigint;
  reading: boolean;
  /** Resolves once `position` holds the tenant's last committed sequence at join time. */
  ready: Promise<void>;
}

/**
 * The one source of live events in a stream instance: one LISTEN connection, and for each tenant
 * that has subscribers a reader that follows the tenant's sequence. Each event is read and
 * decrypted once per instance, whatever the number of subscribers. Notifications only say "there
 * is something up to `to`": the reader always reads `seq > position`, so notifications that arrive
 * late, out of order, coalesced, or not at all cannot cause a gap or a duplicate.
 */
export class Feed {
  private readonly tenants = new Map<string, TenantFeed>();
  private client: pg.Client | undefined;
  private poller: NodeJS.Timeout | undefined;
  private reconnecting: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly ctx: Context) {}

  /** Connects the LISTEN connection; rejects when the database is unreachable at start. */
  async start(): Promise<void> {
    await this.connect();
    this.poller = setInterval(() => void this.refresh(), POLL_MS);
  }

  /** Registers a listener; resolves once the tenant's position is known (see {@link position}). */
  async join(listener: FeedListener): Promise<void> {
    let tenant = this.tenants.get(listener.tenantId);
    if (!tenant) {
      const created: TenantFeed = {
        id: listener.tenantId,
        listeners: new Set(),
        position: 0n,
        target: 0n,
        reading: false,
        ready: Promise.resolve(),
      };
      created.ready = tenantPositions(this.ctx.pool, [created.id]).then(
        (positions) => {
          created.position = positions.get(created.id) ?? 0n;
          if (created.target < created.position) created.target = created.position;
        },
        (err) => {
          // Forget the tenant so the next join retries; the joiners waiting now see the error.
          if (this.tenants.get(created.id) === created) this.tenants.delete(created.id);
          throw err;
        },
      );
      this.tenants.set(created.id, created);
      tenant = created;
    }
    tenant.listeners.add(listener);
    await tenant.ready;
  }

  /** Unregisters a listener; a tenant without listeners is no longer read. */
  leave(listener: FeedListener): void {
    const tenant = this.tenants.get(listener.tenantId);
    if (!tenant) return;
    tenant.listeners.delete(listener);
    if (tenant.listeners.size === 0) this.tenants.delete(tenant.id);
  }

  /**
   * The last sequence handed to the tenant's listeners. Every event after it will be offered to
   * every listener registered now; a joiner compares its replay position against this.
   */
  position(tenantId: string): bigint {
    return this.tenants.get(tenantId)?.position ?? 0n;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.poller);
    clearTimeout(this.reconnecting);
    this.tenants.clear();
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.ctx.databaseUrl,
      application_name: 'auditlog-stream-listen',
    });
    client.on('notification', (msg) => this.onNotification(msg.payload));
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${EVENTS_CHANNEL}`);
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    if (this.stopped) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
    // Whatever committed while nobody was listening is found by comparing positions.
    void this.refresh();
  }

  private lost(client: pg.Client, err?: Error): void {
    if (this.client !== client) return;
    this.client = undefined;
    if (this.stopped) return;
    this.ctx.log.warn({ err }, 'stream LISTEN connection lost; reconnecting');
    client.end().catch(() => {});
    this.reconnectLater();
  }

  private reconnectLater(): void {
    this.reconnecting = setTimeout(() => {
      this.connect().catch((err) => {
        this.ctx.log.warn({ err }, 'stream LISTEN reconnect failed');
        if (!this.stopped) this.reconnectLater();
      });
    }, RETRY_MS);
  }

  private onNotification(payload: string | undefined): void {
    let note: unknown;
    try {
      note = JSON.parse(payload ?? '');
    } catch {
      return;
    }
    const { tenant, to } = (note ?? {}) as { tenant?: unknown; to?: unknown };
    if (typeof tenant !== 'string') return;
    const state = this.tenants.get(tenant);
    if (!state) return;
    if (
      (typeof to === 'number' && Number.isSafeInteger(to)) ||
      (typeof to === 'string' && /^\d+$/.test(to))
    ) {
      const seq = BigInt(to);
      if (seq > state.target) state.target = seq;
    }
    this.kick(state);
  }

  /** Compares every followed tenant with its committed position: the fallback for lost notifications. */
  private async refresh(): Promise<void> {
    if (this.stopped || this.tenants.size === 0) return;
    try {
      const positions = await tenantPositions(this.ctx.pool, [...this.tenants.keys()]);
      for (const [id, seq] of positions) {
        const state = this.tenants.get(id);
        if (!state) continue;
        if (seq > state.target) state.target = seq;
        this.kick(state);
      }
    } catch (err) {
      this.ctx.log.warn({ err }, 'stream position refresh failed');
    }
  }

  /** Starts the tenant's reader unless it is already running (it re-checks `target` before it stops). */
  private kick(state: TenantFeed): void {
    if (state.reading || this.stopped) return;
    state.reading = true;
    this.read(state).then(
      () => {
        state.reading = false;
      },
      (err) => {
        state.reading = false;
        // Never skip ahead: an event that cannot be read or decrypted now is retried, because
        // skipping it would silently break the gapless guarantee.
        this.ctx.log.error({ err, tenant: state.id }, 'stream read failed; retrying');
        setTimeout(() => this.kick(state), RETRY_MS).unref();
      },
    );
  }

  private async read(state: TenantFeed): Promise<void> {
    await state.ready;
    while (!this.stopped && this.tenants.get(state.id) === state && state.target > state.position) {
      const rows = await readTenantAfter(this.ctx.pool, state.id, state.position, READ_CHUNK);
      if (rows.length === 0) {
        // Announced but not there (e.g. purged meanwhile): wait for the next announcement.
        state.target = state.position;
        return;
      }
      const events = await decodeRows(this.ctx.keyring, rows);
      if (this.tenants.get(state.id) !== state) return;
      const items: FeedItem[] = [];
      for (const event of events) {
        const seq = BigInt(event.sequence);
        if (seq > (items.at(-1)?.seq ?? state.position)) items.push({ event, frame: eventFrame(event), seq });
      }
      // One synchronous step: every listener gets the batch, then the position moves past it.
      for (const listener of state.listeners) listener.offer(items);
      const last = items.at(-1);
      if (last) state.position = last.seq;
      if (state.position > state.target) state.target = state.position;
    }
  }
}
