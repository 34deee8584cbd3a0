import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { SessionGateError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { CloseRecord, SessionRecord } from '../core/session-types.js';
import type { ClaimedClose, SessionStore } from '../store/contract.js';
import type { VariableReader } from './session-data.js';

/** What a close-pipeline subscriber receives: the close record and its delivery facts. */
export interface SessionClosedEvent extends CloseRecord {
  /** 1 on the first delivery to this subscriber. */
  attempt: number;
  /** A previous delivery to this subscriber was cut off by a crash; the handler may have run. */
  redelivered: boolean;
  /** The final variables, readable as on a live session (secure ones with `secure: true`). */
  data: VariableReader;
}

export type CloseHandler = (event: SessionClosedEvent) => void | Promise<void>;

export interface SubscriberOptions {
  /** Deliveries before giving up on a record (default 8). */
  maxAttempts?: number;
  /** Delay before retry n (1-based), in ms; default 1 s doubling up to 5 min. */
  backoffMs?: (attempt: number) => number;
  /** A handler running longer than this counts as failed (default 30 s). */
  timeoutMs?: number;
}

interface Subscriber extends Required<SubscriberOptions> {
  name: string;
  handler: CloseHandler;
}

const BATCH = 100;

/**
 * Delivers close records from the store's outbox to every subscriber exactly once: claim with
 * a lease, run the handler, ack; on failure retry with backoff, then record the failure. If
 * this process dies holding a lease, another takes the record over and marks it `redelivered`.
 */
export class CloseDispatcher {
  private readonly subscribers = new Map<string, Subscriber>();
  private readonly consumer = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private again = false;

  constructor(
    private readonly store: SessionStore,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly readerOf: (snapshot: SessionRecord) => VariableReader,
  ) {}

  async subscribe(name: string, handler: CloseHandler, options: SubscriberOptions = {}): Promise<void> {
    if (!name || this.subscribers.has(name)) {
      throw new SessionGateError(
        'SG_ERR_UNKNOWN_SUBSCRIBER',
        `close subscriber name ${JSON.stringify(name)} is empty or taken`,
      );
    }
    await this.store.ensureSubscriber(name);
    this.subscribers.set(name, {
      name,
      handler,
      maxAttempts: options.maxAttempts ?? 8,
      backoffMs: options.backoffMs ?? ((n) => Math.min(1000 * 2 ** (n - 1), 300_000)),
      timeoutMs: options.timeoutMs ?? 30_000,
    });
  }

  /** One round over all subscribers; concurrent calls share the round in flight. */
  runOnce(): Promise<number> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.round().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
    return this.running;
  }

  /** Ask for a round soon (after a close in this process), without waiting for it. */
  kick(): void {
    if (this.timer && this.subscribers.size > 0)
      setImmediate(() => void this.runOnce().catch(() => undefined));
  }

  start(intervalMs: number): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.runOnce().catch(() => undefined), intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  private async round(): Promise<number> {
    let handled = 0;
    for (const sub of this.subscribers.values()) {
      for (;;) {
        const leaseMs = sub.timeoutMs * 2;
        const batch = await this.store.claim(sub.name, this.consumer, {
          now: this.clock.now(),
          leaseMs,
          limit: BATCH,
        });
        for (const record of batch) {
          await this.deliver(sub, record);
          handled++;
        }
        if (batch.length < BATCH) break;
      }
    }
    return handled;
  }

  private async deliver(sub: Subscriber, record: ClaimedClose): Promise<void> {
    const event: SessionClosedEvent = { ...record, data: this.readerOf(record.snapshot) };
    try {
      await withTimeout(
        Promise.resolve().then(() => sub.handler(event)),
        sub.timeoutMs,
      );
      await this.store.ack(sub.name, record.seq);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const fields = {
        subscriber: sub.name,
        sessionId: record.sessionId,
        attempt: record.attempt,
        error: message,
      };
      if (record.attempt >= sub.maxAttempts) {
        this.logger.error(fields, 'close subscriber failed; giving up on this record');
        await this.store.fail(sub.name, record.seq, message, this.clock.now());
      } else {
        this.logger.warn(fields, 'close subscriber failed; will retry');
        await this.store.retry(sub.name, record.seq, this.clock.now() + sub.backoffMs(record.attempt));
      }
    }
  }
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`handler ran past ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
