import { setTimeout as sleep } from 'node:timers/promises';
import type { Context } from '../infra/context.js';
import { decodeRows } from '../query/decode.js';
import type { StreamGrant } from './authorize.js';
import type { Feed, FeedItem, FeedListener } from './feed.js';
import { compileMatcher, type Matcher } from './match.js';
import { parseClientMessage } from './messages.js';
import type { StreamMetrics } from './metrics.js';
import {
  CLOSE,
  type CloseReason,
  type ControlFrame,
  closeReason,
  eventFrame,
  type StreamFilters,
} from './protocol.js';
import type { StreamSocket } from './socket.js';
import { readReplay } from './sql.js';

/** Rows per replay query. */
const REPLAY_CHUNK = 500;
/** How often a replay waiting for its client's buffer to drain looks again. */
const DRAIN_POLL_MS = 10;
/**
 * Frames of one batch are written to the socket together (live: `sendShared`; replay: corked),
 * one system call per this many bytes instead of one per frame: on a fan-out, the per-frame write
 * was the largest single cost. Held frames count towards the client's buffer, so a flush also
 * happens at a quarter of its limits (`flushBytes`, `flushFrames`), far from where a healthy
 * client would look slow.
 */
const FLUSH_BYTES = 64 * 1024;

/** Per-client limits, from config. */
export interface SessionLimits {
  maxBufferedBytes: number;
  maxQueue: number;
  heartbeatMs: number;
  idleTimeoutMs: number;
}

export interface SessionDeps {
  ctx: Context;
  feed: Feed;
  metrics: StreamMetrics;
  limits: SessionLimits;
  /** Runs once when the socket has closed, whoever closed it (after the session ended). */
  gone(session: StreamSession): void;
}

/**
 * One WebSocket subscriber. `covered` is its resume point: every event with a sequence up to it
 * that matches the subscription has been queued on the socket, and nothing after it has. The
 * session starts at the live edge, or replays `(since, live edge]` from the database and then
 * switches to live in the same synchronous step that sees it has caught up with the feed, so the
 * seam has neither a gap nor a duplicate (events offered while replaying are ignored; the replay
 * reads them from the database instead, which keeps memory bounded during long replays).
 */
export class StreamSession implements FeedListener {
  readonly tenantId: string;
  private state: 'starting' | 'replaying' | 'live' | 'closed' = 'starting';
  private covered = 0n;
  /** Frames handed to the socket whose write has not completed. */
  private inFlight = 0;
  private filters: StreamFilters;
  private match: Matcher;
  private awaitingPong = false;
  private lastActivity = Date.now();
  private socketClosed = false;
  /** Bytes and frames written since the socket was last flushed, while corked. */
  private unflushed = 0;
  private unflushedFrames = 0;
  private corked = false;
  private readonly flushBytes: number;
  private readonly flushFrames: number;

  constructor(
    private readonly deps: SessionDeps,
    private readonly socket: StreamSocket,
    private readonly grant: StreamGrant,
  ) {
    this.tenantId = grant.scope.tenantId;
    this.flushBytes = Math.min(FLUSH_BYTES, deps.limits.maxBufferedBytes / 4);
    this.flushFrames = Math.max(1, Math.floor(deps.limits.maxQueue / 4));
    this.filters = grant.filters;
    this.match = compileMatcher(grant.scope, grant.filters);
    deps.metrics.connections.inc();
    socket.listen({
      message: (text, isBinary) => this.onMessage(text, isBinary),
      pong: () => {
        this.awaitingPong = false;
      },
      close: () => {
        this.socketClosed = true;
        deps.metrics.connections.dec();
        this.finish('client');
        deps.gone(this);
      },
    });
  }

  /** True once the socket has closed, whichever side closed it. */
  get isGone(): boolean {
    return this.socketClosed;
  }

  /** Joins the feed, then replays (when `since` was given) and goes live. */
  async start(): Promise<void> {
    try {
      await this.deps.feed.join(this);
      if (this.state !== 'starting') return;
      const since = this.grant.since;
      this.covered = since ?? this.deps.feed.position(this.tenantId);
      this.control({
        type: 'ready',
        tenant_id: this.tenantId,
        since: this.covered.toString(),
        filters: this.filters,
        request_id: this.grant.requestId,
      });
      if (since === undefined) this.goLive();
      else {
        this.state = 'replaying';
        await this.replay();
      }
    } catch (err) {
      this.deps.ctx.log.error({ err }, 'stream session failed');
      this.end(CLOSE.internalError, 'internal_error');
    }
  }

  /**
   * Live fan-out: synchronous, never waits for the socket. The matching frames are written
   * together (`sendShared`: the frame bytes are built once per event for every subscriber), in
   * chunks of `flushBytes` or `flushFrames`, so each check below sees what went before it.
   */
  offer(items: readonly FeedItem[]): void {
    if (this.state !== 'live') return;
    let chunk: Buffer[] = [];
    let bytes = 0;
    let delivered = 0;
    const flush = () => {
      if (chunk.length > 0) this.writeShared(chunk);
      chunk = [];
      bytes = 0;
    };
    try {
      for (const { event, frame, seq } of items) {
        if (seq <= this.covered) continue;
        if (this.match(event)) {
          // Checked before `covered` moves, so the resume point excludes the event not sent.
          if (this.overloaded(1, chunk.length, bytes)) {
            flush();
            this.end(CLOSE.slowConsumer, 'slow_consumer');
            return;
          }
          chunk.push(frame);
          bytes += frame.length;
          delivered++;
          if (bytes >= this.flushBytes || chunk.length >= this.flushFrames) flush();
        }
        this.covered = seq;
      }
    } finally {
      flush();
      this.deps.metrics.delivered.inc(delivered);
    }
  }

  /** Heartbeat, idle and token-expiry checks; the service calls this every heartbeat interval. */
  tick(now: number): void {
    if (this.state === 'closed') return;
    if (this.grant.expiresAt !== undefined && now >= this.grant.expiresAt) {
      this.end(CLOSE.tokenExpired, 'token_expired');
      return;
    }
    const idle = this.deps.limits.idleTimeoutMs;
    if (idle > 0 && now - this.lastActivity >= idle) {
      this.end(CLOSE.idle, 'idle_timeout');
      return;
    }
    if (this.awaitingPong) {
      // No pong for a whole interval: the peer is gone or stuck. No close handshake with it.
      this.finish('heartbeat');
      this.socket.terminate();
      return;
    }
    this.awaitingPong = true;
    this.socket.ping();
  }

  /** Graceful shutdown: 1001 with the resume point. */
  goAway(): void {
    this.end(CLOSE.goingAway, 'going_away');
  }

  /** Drops the connection without a handshake (shutdown grace period over). */
  terminate(): void {
    this.socket.terminate();
  }

  private goLive(): void {
    this.state = 'live';
    this.control({ type: 'live', since: this.covered.toString() });
  }

  private async replay(): Promise<void> {
    const { ctx, feed } = this.deps;
    for (;;) {
      if (this.state !== 'replaying') return;
      // Synchronous with the switch below: every event after `target` will still be offered.
      const target = feed.position(this.tenantId);
      if (this.covered >= target) {
        this.goLive();
        return;
      }
      const rows = await readReplay(
        ctx.pool,
        this.grant.scope,
        this.filters,
        this.covered,
        target,
        REPLAY_CHUNK,
      );
      const events = await decodeRows(ctx.keyring, rows);
      for (const event of events) {
        if (this.overloaded(1)) {
          this.uncork();
          if (!(await this.drained())) return;
        }
        const seq = BigInt(event.sequence);
        if (seq <= this.covered) continue;
        // Re-checked in memory: a subscribe message may have changed the filters meanwhile.
        if (this.match(event)) {
          this.cork();
          this.write(eventFrame(event));
          this.deps.metrics.delivered.inc();
        }
        this.covered = seq;
      }
      this.uncork();
      if (rows.length < REPLAY_CHUNK && target > this.covered) this.covered = target;
      if (!(await this.drained())) return;
    }
  }

  /**
   * Waits until the socket buffer is at most half full. A client that does not drain within one
   * heartbeat interval is cut off as a slow consumer. False when the session ended.
   */
  private async drained(): Promise<boolean> {
    const started = Date.now();
    while (this.overloaded(0.5)) {
      if (this.state === 'closed') return false;
      if (Date.now() - started > this.deps.limits.heartbeatMs) {
        this.end(CLOSE.slowConsumer, 'slow_consumer');
        return false;
      }
      await sleep(DRAIN_POLL_MS);
    }
    return this.state !== 'closed';
  }

  /**
   * Whether the client's buffer, with `frames` more frames of `bytes` bytes not yet written, is
   * past `fraction` of one of its limits.
   */
  private overloaded(fraction: number, frames = 0, bytes = 0): boolean {
    const { maxBufferedBytes, maxQueue } = this.deps.limits;
    return (
      this.socket.bufferedAmount + bytes > maxBufferedBytes * fraction ||
      this.inFlight + frames >= maxQueue * fraction
    );
  }

  /** Writes live frames shared with other sessions (see `offer`). */
  private writeShared(frames: Buffer[]): void {
    const count = frames.length;
    this.inFlight += count;
    this.lastActivity = Date.now();
    this.socket.sendShared(frames, () => {
      this.inFlight -= count;
    });
  }

  private write(frame: Buffer | string): void {
    this.inFlight++;
    this.lastActivity = Date.now();
    this.socket.send(frame, () => {
      this.inFlight--;
    });
    if (this.corked) {
      this.unflushed += frame.length;
      this.unflushedFrames++;
      if (this.unflushed >= this.flushBytes || this.unflushedFrames >= this.flushFrames) {
        this.socket.uncork();
        this.socket.cork();
        this.unflushed = 0;
        this.unflushedFrames = 0;
      }
    }
  }

  /** Holds writes until `uncork` (or every FLUSH_BYTES); idempotent. */
  private cork(): void {
    if (this.corked) return;
    this.corked = true;
    this.unflushed = 0;
    this.unflushedFrames = 0;
    this.socket.cork();
  }

  /** Writes what `cork` held. Must run before waiting for the buffer to drain. */
  private uncork(): void {
    if (!this.corked) return;
    this.corked = false;
    this.socket.uncork();
  }

  private control(frame: ControlFrame): void {
    if (this.state === 'closed') return;
    // A client that sends messages but never reads the answers is as slow as one that never reads events.
    if (this.overloaded(1)) this.end(CLOSE.slowConsumer, 'slow_consumer');
    else this.write(JSON.stringify(frame));
  }

  private onMessage(text: string, isBinary: boolean): void {
    if (this.state === 'closed') return;
    this.lastActivity = Date.now();
    const request = parseClientMessage(text, isBinary);
    if (request.kind === 'invalid') this.control(request.reply);
    else if (request.kind === 'ping') this.control({ type: 'pong' });
    else {
      // Applies from the next event on; `since` in the answer says where that is.
      this.filters = request.filters;
      this.match = compileMatcher(this.grant.scope, request.filters);
      this.control({ type: 'subscribed', since: this.covered.toString(), filters: this.filters });
    }
  }

  /** Closes with a code and the JSON reason carrying the resume point. */
  private end(code: number, reason: CloseReason): void {
    if (this.state === 'closed') return;
    // Before `ready`, the client has no position from us: echo its own `since`, or none.
    const since = this.state === 'starting' ? this.grant.since : this.covered;
    this.finish(reason);
    this.socket.close(code, closeReason(reason, since));
  }

  /** Leaves the feed and accounts for the disconnect, exactly once. */
  private finish(reason: CloseReason | 'client' | 'heartbeat'): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.deps.feed.leave(this);
    this.deps.metrics.disconnects.inc({ reason });
  }
}
