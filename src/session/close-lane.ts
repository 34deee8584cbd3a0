import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { SessionRecord } from '../core/session-types.js';
import type { ClaimedClose, SessionStore } from '../store/contract.js';
import type { CloseHandler, SessionClosedEvent } from './close-events.js';
import type { VariableReader } from './session-data.js';

/** The most records one claim takes. */
const MAX_BATCH = 100;
/** The first claim of a subscriber, before its handler's duration is known. */
const FIRST_BATCH = 10;
/** Tries to record a delivery the handler finished (waits of 1, 2, 3 x ackRetryMs between). */
const ACK_ATTEMPTS = 4;

/** What a lane needs from its dispatcher. */
export interface LaneContext {
  store: SessionStore;
  clock: Clock;
  logger: Logger;
  readerOf: (snapshot: SessionRecord) => VariableReader;
  consumer: string;
  /** How long a claim holds without a renewal (store clock ms). */
  leaseMs: number;
  /** How often a lane holding records renews them in the background (real ms). */
  heartbeatMs: number;
  /** The first wait before trying again to record a finished delivery (real ms). */
  ackRetryMs: number;
}

export interface LaneSettings {
  name: string;
  handler: CloseHandler;
  maxAttempts: number;
  backoffMs: (attempt: number) => number;
  timeoutMs: number;
}

/**
 * One subscriber's delivery: claim, deliver in order, ack; on its own, so that a subscriber
 * that hangs or fails holds back nobody else. Its claims are short leases it renews while it
 * works (before each record, and on a heartbeat timer while a handler runs), so a record is
 * delivered by another process only once this one has stopped renewing — it died, or it was
 * stopped and handed the record back.
 */
export class CloseLane {
  private running: Promise<number> | undefined;
  private again = false;
  private stopping = false;
  /** Claimed and not finished, in delivery order. */
  private held: ClaimedClose[] = [];
  /** The record whose handler runs now. */
  private inFlight: string | undefined;
  private renewedAt = 0;
  private renewing: Promise<void> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  /** The timeout of the handler running now. */
  private deadline: NodeJS.Timeout | undefined;
  /** Moving average of a delivery's duration (clock ms); sizes the claims. */
  private deliveryMs: number | undefined;

  constructor(
    private readonly ctx: LaneContext,
    readonly settings: LaneSettings,
  ) {}

  get name(): string {
    return this.settings.name;
  }

  /** Deliver what is due; a call while a run is under way shares it and asks for another. */
  run(): Promise<number> {
    if (this.stopping) return Promise.resolve(0);
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.loop().finally(() => {
      this.running = undefined;
      if (this.again && !this.stopping) {
        this.again = false;
        void this.run().catch(() => undefined);
      }
    });
    return this.running;
  }

  /** The run under way, if any (settles when it does; never rejects). */
  settled(): Promise<unknown> {
    return this.running?.catch(() => undefined) ?? Promise.resolve();
  }

  /**
   * Stop claiming and delivering, and hand back every record held: those not started as they
   * were, the one whose handler still runs as cut off (its next delivery says `redelivered`).
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.stopHeartbeat();
    // A handler still running is abandoned: its timeout must not keep a stopping process alive.
    if (this.deadline) clearTimeout(this.deadline);
    const held = this.held;
    this.held = [];
    if (held.length === 0) return;
    const now = this.ctx.clock.now();
    const unstarted = held.filter((r) => r.seq !== this.inFlight).map((r) => r.seq);
    const { store, consumer } = this.ctx;
    if (unstarted.length > 0) await store.release(this.name, consumer, unstarted, { now });
    if (this.inFlight !== undefined && held.some((r) => r.seq === this.inFlight)) {
      await store.release(this.name, consumer, [this.inFlight], { now, interrupted: true });
    }
  }

  private async loop(): Promise<number> {
    let handled = 0;
    try {
      while (!this.stopping) {
        const limit = this.batchLimit();
        const now = this.ctx.clock.now();
        const batch = await this.ctx.store.claim(this.name, this.ctx.consumer, {
          now,
          leaseMs: this.ctx.leaseMs,
          limit,
        });
        if (this.stopping) {
          this.held = batch;
          break; // stop() ran meanwhile; the records go back below
        }
        this.held = batch;
        this.renewedAt = now;
        if (batch.length > 0) this.startHeartbeat();
        handled += await this.deliverBatch(batch);
        this.stopHeartbeat();
        if (batch.length < limit) break;
      }
    } catch (err) {
      // A store error: what is held goes back through its lease ending.
      this.held = [];
      this.stopHeartbeat();
      throw err;
    }
    if (this.stopping) await this.stop();
    return handled;
  }

  private async deliverBatch(batch: ClaimedClose[]): Promise<number> {
    let handled = 0;
    for (const record of batch) {
      if (this.stopping) break;
      await this.renewIfDue();
      if (!this.held.includes(record)) continue; // taken over meanwhile: its new holder delivers it
      const started = this.ctx.clock.now();
      await this.deliver(record);
      const took = this.ctx.clock.now() - started;
      this.deliveryMs = this.deliveryMs === undefined ? took : 0.8 * this.deliveryMs + 0.2 * took;
      handled++;
    }
    return handled;
  }

  /** As many records as can be delivered in half a lease at the recent pace (1..100). */
  private batchLimit(): number {
    if (this.deliveryMs === undefined) return FIRST_BATCH;
    const fit = Math.floor(this.ctx.leaseMs / 2 / Math.max(this.deliveryMs, 1));
    return Math.min(MAX_BATCH, Math.max(1, fit));
  }

  private async deliver(record: ClaimedClose): Promise<void> {
    const { store, clock, logger } = this.ctx;
    const sub = this.settings;
    const fields = { subscriber: sub.name, sessionId: record.sessionId, attempt: record.attempt };
    if (record.redelivered) {
      logger.warn(
        fields,
        'close record taken over: an earlier delivery to this subscriber was cut off (its process died or stopped); the handler may run twice',
      );
    }
    const event: SessionClosedEvent = { ...record, data: this.ctx.readerOf(record.snapshot) };
    this.inFlight = record.seq;
    let handled = false;
    try {
      await withTimeout(
        Promise.resolve().then(() => sub.handler(event)),
        sub.timeoutMs,
        (t) => (this.deadline = t),
      );
      handled = true;
      // Even when stop() handed it back meanwhile: done is done, and the ack spares a repeat.
      await this.ackPersistently(record);
    } catch (err) {
      if (handled) return this.leaveForTakeover(record, err);
      if (this.stopping && !this.held.includes(record)) return; // handed back by stop()
      const error = err instanceof Error ? err.message : String(err);
      if (record.attempt >= sub.maxAttempts) {
        logger.error({ ...fields, error }, 'close subscriber failed; giving up on this record');
        await store.fail(sub.name, record.seq, error, clock.now());
      } else {
        logger.warn({ ...fields, error }, 'close subscriber failed; will retry');
        await store.retry(sub.name, record.seq, clock.now() + sub.backoffMs(record.attempt));
      }
    } finally {
      this.inFlight = undefined;
      this.held = this.held.filter((r) => r !== record);
    }
  }

  /**
   * The handler ran; record it, trying again through a short store outage (a failover) while
   * the heartbeat keeps the lease.
   */
  private async ackPersistently(record: ClaimedClose): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.ctx.store.ack(this.name, record.seq);
      } catch (err) {
        if (attempt >= ACK_ATTEMPTS || this.stopping) throw err;
        await new Promise((r) => setTimeout(r, this.ctx.ackRetryMs * attempt));
      }
    }
  }

  /**
   * The handler ran but the store would not record it. Never count that as a handler failure —
   * a retry would deliver it again unflagged. Stop renewing its lease instead: once the lease
   * ends, its next delivery (here or in another process) says `redelivered`.
   */
  private leaveForTakeover(record: ClaimedClose, err: unknown): void {
    this.ctx.logger.warn(
      {
        subscriber: this.name,
        sessionId: record.sessionId,
        error: err instanceof Error ? err.message : String(err),
      },
      'could not record a close delivery in the store; it will be delivered again, flagged redelivered',
    );
  }

  /** Renew before a record when a third of the lease has passed since the last renewal. */
  private async renewIfDue(): Promise<void> {
    if (this.ctx.clock.now() - this.renewedAt >= this.ctx.leaseMs / 3) await this.renew();
  }

  /** Move the lease of every record held; drop those another consumer took meanwhile. */
  private renew(): Promise<void> {
    this.renewing ??= (async () => {
      const held = this.held;
      if (held.length === 0) return;
      const now = this.ctx.clock.now();
      const kept = new Set(
        await this.ctx.store.renew(
          this.name,
          this.ctx.consumer,
          held.map((r) => r.seq),
          now + this.ctx.leaseMs,
        ),
      );
      this.renewedAt = now;
      const lost = held.filter((r) => !kept.has(r.seq) && this.held.includes(r));
      for (const r of lost) {
        this.ctx.logger.warn(
          { subscriber: this.name, sessionId: r.sessionId },
          'lost the lease of a close record (renewed too late); its new holder delivers it',
        );
      }
      this.held = this.held.filter((r) => !lost.includes(r));
    })().finally(() => {
      this.renewing = undefined;
    });
    return this.renewing;
  }

  private startHeartbeat(): void {
    this.heartbeat ??= setInterval(() => {
      void this.renew().catch((err: unknown) =>
        this.ctx.logger.warn(
          { subscriber: this.name, error: err instanceof Error ? err.message : String(err) },
          'could not renew the lease of close records',
        ),
      );
    }, this.ctx.heartbeatMs);
    this.heartbeat.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }
}

function withTimeout<T>(work: Promise<T>, ms: number, onTimer: (t: NodeJS.Timeout) => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`handler ran past ${ms} ms`)), ms);
    onTimer(timer);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
