import { Cluster, type Redis } from 'ioredis';
import type { SessionId } from '../../core/ids.js';
import type { RedisClient } from './connect.js';

/** Ids whose invalidation is remembered for reads still in flight; past it, all are forgotten. */
const REMEMBERED_MAX = 4096;

/**
 * Whether a record read from Redis may answer later validations of its session in this process
 * without asking Redis again: the "near cache". Every script that changes or deletes a session
 * (put, drop, close, sweep, expiry) publishes the session id on `<prefix>:inv` in the same atomic
 * step; every process subscribes and forgets what it held of that session. A touch publishes
 * nothing: it only moves the idle deadline later, and a holder that sees an older deadline asks
 * Redis sooner, never later.
 *
 * What may be held, and for how long, is decided with two counters:
 * - `seq` counts invalidations (and losses of the subscription). A read remembers `seq` when it
 *   is sent; its answer is admitted only if no invalidation of that session arrived meanwhile —
 *   the answer may predate the write that the message announces.
 * - `epoch` changes whenever the subscription is lost: everything admitted before is void, since
 *   messages may have been missed. While it is down nothing is admitted.
 * And every admitted record is used for at most `maxAgeMs` (of the caller's clock) after it was
 * read, so a subscription that silently stalls costs at most that much staleness.
 *
 * @example
 * ```ts
 * const near = new NearCache(1000);
 * const sent = near.seq;             // before sending the read
 * // ... the answer arrives
 * const held = near.admit(id, sent); // true: may serve validations for 1 s
 * ```
 */
export class NearCache {
  /** Invalidations and subscription changes seen so far. */
  seq = 0;
  /** Changes each time the subscription is lost. */
  epoch = 0;
  /** Subscribed, with every message since then received. */
  live = false;
  /** Reads sent before this `seq` are never admitted (the subscription changed, or ids were forgotten). */
  private floor = 0;
  /** The `seq` of the last invalidation of each recently invalidated session. */
  private readonly invalidatedAt = new Map<SessionId, number>();
  private readonly waiters = new Map<SessionId, (() => void)[]>();
  private stateWaiters: (() => void)[] = [];
  /** Called with each invalidated id (the holder drops its entry). */
  onInvalidate: (id: SessionId) => void = () => undefined;

  constructor(readonly maxAgeMs: number) {}

  /** May the answer to a read sent at `sentSeq` be held? */
  admit(id: SessionId, sentSeq: number): boolean {
    if (!this.live || sentSeq < this.floor) return false;
    const at = this.invalidatedAt.get(id);
    return at === undefined || at <= sentSeq;
  }

  /** May a record admitted in `epoch` and read at `readAt` answer at `now`? */
  usable(epoch: number, readAt: number, now: number): boolean {
    return this.live && epoch === this.epoch && now - readAt < this.maxAgeMs;
  }

  /** `id` changed or went away: a message (`fromRedis`), or this process's own write. */
  invalidate(id: SessionId, fromRedis = true): void {
    this.seq++;
    if (this.invalidatedAt.size >= REMEMBERED_MAX) {
      this.invalidatedAt.clear();
      this.floor = this.seq;
    }
    this.invalidatedAt.set(id, this.seq);
    this.onInvalidate(id);
    if (!fromRedis) return;
    const waiting = this.waiters.get(id);
    if (waiting) {
      this.waiters.delete(id);
      for (const resolve of waiting) resolve();
    }
  }

  /** The subscription is confirmed (again): reads sent from now on may be admitted. */
  subscribed(): void {
    this.live = true;
    this.floor = ++this.seq;
    this.stateChanged();
  }

  /** The subscription is gone: hold nothing until it is back. */
  lost(): void {
    this.live = false;
    this.epoch++;
    this.floor = ++this.seq;
    this.invalidatedAt.clear();
    this.stateChanged();
  }

  /** Resolves when the subscription is next lost or confirmed (for tests and tools). */
  nextStateChange(): Promise<void> {
    return new Promise((resolve) => this.stateWaiters.push(resolve));
  }

  private stateChanged(): void {
    const waiting = this.stateWaiters;
    this.stateWaiters = [];
    for (const resolve of waiting) resolve();
  }

  /** Resolves when the next invalidation of `id` arrives (for tests and tools). */
  nextInvalidation(id: SessionId): Promise<void> {
    return new Promise((resolve) => {
      const list = this.waiters.get(id) ?? [];
      list.push(resolve);
      this.waiters.set(id, list);
    });
  }
}

/** The channel the scripts publish invalidations on (scripts.ts builds the same name). */
export function invalidationChannel(prefix: string): string {
  return `${prefix}:inv`;
}

/**
 * Keeps one subscriber connection on the invalidation channel and reports to a NearCache.
 * Standalone: a duplicate of the client. Cluster: a connection to one node (a PUBLISH reaches
 * every node of a cluster); when it drops, the next node of the current slot map is tried, so a
 * failed master is left behind. Reconnects with a backoff of up to 1 s, forever, until stopped.
 */
export class InvalidationSubscriber {
  private sub: Redis | undefined;
  private attempts = 0;
  private turn = 0;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private firstReady: ((ok: boolean) => void) | undefined;

  constructor(
    private readonly client: RedisClient,
    private readonly channel: string,
    private readonly near: NearCache,
  ) {}

  /** Connect and subscribe; resolves true once subscribed, false if that failed in `timeoutMs`. */
  start(timeoutMs: number): Promise<boolean> {
    const ready = new Promise<boolean>((resolve) => (this.firstReady = resolve));
    const timer = setTimeout(() => this.settle(false), timeoutMs);
    this.connect();
    return ready.finally(() => clearTimeout(timer));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.settle(false);
    const sub = this.sub;
    this.sub = undefined;
    this.near.lost();
    if (sub) await sub.quit().catch(() => sub.disconnect());
  }

  private settle(ok: boolean): void {
    const resolve = this.firstReady;
    this.firstReady = undefined;
    resolve?.(ok);
  }

  private connect(): void {
    if (this.stopped) return;
    const base = this.pickNode();
    if (!base) return this.retryLater();
    // Our own reconnection (retryStrategy null): a new connection may go to another node.
    const sub = base.duplicate({
      lazyConnect: true,
      enableAutoPipelining: false,
      autoResubscribe: false,
      enableOfflineQueue: true,
      retryStrategy: () => null,
    });
    this.sub = sub;
    sub.on('error', () => undefined);
    sub.on('message', (channel: string, id: string) => {
      if (channel === this.channel) this.near.invalidate(id as SessionId);
    });
    sub.on('end', () => {
      if (this.sub !== sub) return;
      this.near.lost();
      this.sub = undefined;
      this.retryLater();
    });
    sub
      .connect()
      .then(() => sub.subscribe(this.channel))
      .then(() => {
        if (this.sub !== sub || this.stopped) return;
        this.attempts = 0;
        this.near.subscribed();
        this.settle(true);
      })
      .catch(() => sub.disconnect());
  }

  private retryLater(): void {
    if (this.stopped) return;
    const delay = Math.min(100 * ++this.attempts, 1000);
    this.timer = setTimeout(() => this.connect(), delay);
    this.timer.unref();
  }

  /** Standalone: the client itself. Cluster: its nodes in turn (none while it has no slot map). */
  private pickNode(): Redis | undefined {
    if (!(this.client instanceof Cluster)) return this.client;
    const nodes = this.client.nodes('all');
    return nodes.length > 0 ? nodes[this.turn++ % nodes.length] : undefined;
  }
}
