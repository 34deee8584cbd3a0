import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { SessionGateError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { SessionRecord } from '../core/session-types.js';
import type { SessionStore } from '../store/contract.js';
import type { CloseHandler } from './close-events.js';
import { CloseLane, type LaneContext } from './close-lane.js';
import type { VariableReader } from './session-data.js';

export type { CloseHandler, SessionClosedEvent } from './close-events.js';

export interface SubscriberOptions {
  /** Deliveries before giving up on a record (default 8). */
  maxAttempts?: number;
  /** Delay before retry n (1-based), in ms; default 1 s doubling up to 5 min. */
  backoffMs?: (attempt: number) => number;
  /** A handler running longer than this counts as failed (default 30 s). */
  timeoutMs?: number;
}

/** How the dispatcher leases close records (see CloseLane). */
export interface DispatcherOptions {
  /** How long a claim holds without a renewal: the wait after a crash (default 5000 ms). */
  leaseMs?: number;
  /** How often held records are renewed while a handler runs (real ms; default a quarter lease). */
  heartbeatMs?: number;
  /** The first wait before trying again to record a finished delivery (real ms; default 250). */
  ackRetryMs?: number;
}

/**
 * Delivers close records from the store's outbox to every subscriber exactly once: claim with
 * a short lease renewed while working, run the handler, ack; on failure retry with backoff,
 * then record the failure. Each subscriber progresses on its own (one lane each). If this
 * process dies holding a lease, another takes the record over once the lease ends and marks it
 * `redelivered`.
 *
 * @example
 * ```ts
 * const dispatcher = new CloseDispatcher(store, clock, logger, (s) => data.ofSnapshot(s));
 * await dispatcher.subscribe('audit', (event) => write(event.sessionId, event.reason));
 * dispatcher.start(250);
 * await dispatcher.drain(5000); // at shutdown
 * ```
 */
export class CloseDispatcher {
  private readonly lanes = new Map<string, CloseLane>();
  private readonly context: LaneContext;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    store: SessionStore,
    clock: Clock,
    logger: Logger,
    readerOf: (snapshot: SessionRecord) => VariableReader,
    options: DispatcherOptions = {},
  ) {
    const leaseMs = options.leaseMs ?? 5000;
    this.context = {
      store,
      clock,
      logger,
      readerOf,
      consumer: `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`,
      leaseMs,
      heartbeatMs: options.heartbeatMs ?? Math.max(1, Math.floor(leaseMs / 4)),
      ackRetryMs: options.ackRetryMs ?? 250,
    };
  }

  async subscribe(name: string, handler: CloseHandler, options: SubscriberOptions = {}): Promise<void> {
    if (!name || this.lanes.has(name)) {
      throw new SessionGateError(
        'SG_ERR_UNKNOWN_SUBSCRIBER',
        `close subscriber name ${JSON.stringify(name)} is empty or taken`,
      );
    }
    await this.context.store.ensureSubscriber(name);
    this.lanes.set(
      name,
      new CloseLane(this.context, {
        name,
        handler,
        maxAttempts: options.maxAttempts ?? 8,
        backoffMs: options.backoffMs ?? ((n) => Math.min(1000 * 2 ** (n - 1), 300_000)),
        timeoutMs: options.timeoutMs ?? 30_000,
      }),
    );
  }

  /**
   * One round: every subscriber delivers what is due, side by side; resolves with how many
   * records were handled once all are done (a hanging subscriber delays this answer, never
   * the others' deliveries).
   */
  async runOnce(): Promise<number> {
    const counts = await Promise.all([...this.lanes.values()].map((lane) => lane.run()));
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Ask for a round soon (after a close in this process), without waiting for it. */
  kick(): void {
    if (this.timer && this.lanes.size > 0) setImmediate(() => this.runInBackground());
  }

  start(intervalMs: number): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.runInBackground(), intervalMs);
    this.timer.unref();
  }

  /** Stop the timer and wait for the rounds under way (unbounded; see drain() for shutdown). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([...this.lanes.values()].map((lane) => lane.settled()));
  }

  /**
   * Shutdown: stop the timer, deliver what is due for at most `graceMs`, then stop every
   * subscriber and hand back what it holds, so that the next start or another process takes
   * it at once. Records never delivered stay in the outbox; nothing is lost.
   */
  async drain(graceMs: number): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const lanes = [...this.lanes.values()];
    const flushed = Promise.all(lanes.map((lane) => lane.run().catch(() => 0)));
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    await Promise.race([flushed, grace]).finally(() => clearTimeout(timer));
    await Promise.all(lanes.map((lane) => lane.stop()));
  }

  private runInBackground(): void {
    for (const lane of this.lanes.values()) {
      // A store error ends this round only; the next tick tries again.
      void lane.run().catch(() => undefined);
    }
  }
}
