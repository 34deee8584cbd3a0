import type { Clock } from '../core/clock.js';
import { isSessionGateError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { SessionRecord } from '../core/session-types.js';
import type { SshConfig } from '../gateway/config/ssh-schema.js';
import type { SessionEngine } from '../session/engine.js';
import type { SshConnection } from './connection.js';

/**
 * Keeps one process's SSH connections and their sessions in step, every check interval: a
 * session that was killed (by the admin API, on any gateway process) or timed out ends its
 * connection; channel data since the last look counts as activity for the idle timeout; and
 * the session's lease is renewed, so that a session whose process died ends on its own.
 *
 * @example
 * ```ts
 * const watch = new SessionWatch(engine, clock, config.ssh, logger);
 * watch.start();
 * ```
 */
export class SessionWatch {
  readonly connections = new Set<SshConnection>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly engine: SessionEngine,
    private readonly clock: Clock,
    private readonly config: SshConfig,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.checkAll(), this.config.check_interval_ms);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One look at every live connection (a look still running is waited for, not doubled). */
  checkAll(): Promise<void> {
    this.running ??= Promise.all([...this.connections].map((c) => this.check(c))).then(
      () => void (this.running = undefined),
    );
    return this.running;
  }

  private async check(c: SshConnection): Promise<void> {
    if (!c.live || !c.token) return;
    try {
      const active = c.active;
      c.active = false;
      const v = active ? await this.engine.validate(c.token) : await this.engine.peek(c.token);
      if (!v.valid) return c.sessionEnded(v.reason === 'expired' ? v.closedWith : undefined);
      if (v.session.state === 'allow') await this.renewLease(c, v.session);
    } catch (err) {
      if (isSessionGateError(err, 'SG_ERR_SESSION_NOT_FOUND')) return c.sessionEnded(undefined);
      this.logger.warn({ sessionId: c.sessionId, error: (err as Error).message }, 'ssh session check failed');
    }
  }

  /**
   * The session ends `orphan_after_seconds` after the last renewal unless renewed (never past
   * its own lifetime): the lease that frees the sessions of a process that died.
   */
  async renewLease(c: SshConnection, session: SessionRecord): Promise<void> {
    // Someone else moved the session's end (an admin's PATCH of lifetime or remaining): that is
    // its lifetime from now on, which the lease must not undo.
    if (c.leaseDeadline !== undefined && session.lifetimeDeadline !== c.leaseDeadline) {
      c.lifetimeDeadline = session.lifetimeDeadline;
    }
    const now = this.clock.now();
    const leaseMs = this.config.orphan_after_seconds * 1000;
    if (now - c.leaseRenewedAt < leaseMs / 3) return;
    const untilLifetime =
      c.lifetimeDeadline === null ? Infinity : Math.ceil((c.lifetimeDeadline - now) / 1000);
    const remaining = Math.min(this.config.orphan_after_seconds, untilLifetime);
    if (remaining <= 0) return;
    const record = await this.engine.modify(c.sessionId!, { remaining });
    c.leaseDeadline = record.lifetimeDeadline;
    c.leaseRenewedAt = now;
  }
}
