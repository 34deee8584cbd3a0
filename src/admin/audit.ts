import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { AuditEvent, AuditSink } from '../core/audit.js';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { silentLogger } from '../core/logger.js';
import type { SessionEngine } from '../session/engine.js';

/** Fields that never reach an audit line, whoever put them in a record. */
const NEVER = new Set(['token', 'password', 'value', 'secret', 'cookie', 'sessionCookie']);

/** The subscriber name of the audit trail in the close pipeline. */
export const AUDIT_SUBSCRIBER = 'audit';

export interface AuditLogOptions {
  /** Append to this file (created 0640); absent = standard output. */
  file?: string;
  clock?: Clock;
  logger?: Logger;
  /** Reopen the file on SIGHUP (after logrotate moved it). Default true when `file` is set. */
  reopenOnSighup?: boolean;
  /** Where stdout lines go (tests); default process.stdout. */
  stdout?: (line: string) => void;
}

/**
 * The audit trail as JSON lines (docs/admin.md): one line per record, with `time`, `type:
 * "audit"`, `event`, `session_id`, `user`, `client_ip` and the event's own fields in snake
 * case. Lines to a file are single `write(2)` calls in append mode, so several worker
 * processes can share one file; SIGHUP reopens it (rotation-friendly).
 *
 * @example
 * ```ts
 * const audit = new AuditLog({ file: './var/audit.log' });
 * audit.write({ event: 'session_kill', sessionId, user: 'alice', by: 'admin_api' });
 * ```
 */
export class AuditLog implements AuditSink {
  private fd: number | undefined;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly onHup = (): void => this.reopen();
  private readonly toStdout: (line: string) => void;

  constructor(private readonly o: AuditLogOptions = {}) {
    this.clock = o.clock ?? systemClock;
    this.logger = o.logger ?? silentLogger;
    this.toStdout = o.stdout ?? ((line) => void process.stdout.write(line));
    if (o.file !== undefined) {
      this.fd = openAppend(o.file);
      if (o.reopenOnSighup ?? true) process.on('SIGHUP', this.onHup);
    }
  }

  write(event: AuditEvent): void {
    const line = auditLine(event, this.clock.now());
    if (this.o.file === undefined) return this.toStdout(line);
    try {
      if (this.fd === undefined) this.fd = openAppend(this.o.file);
      writeSync(this.fd, line);
    } catch (err) {
      this.logger.error({ err: (err as Error).message, event: event.event }, 'cannot write the audit log');
    }
  }

  /** Close and open the file again (what SIGHUP does). */
  reopen(): void {
    if (this.o.file === undefined) return;
    const old = this.fd;
    this.fd = undefined;
    if (old !== undefined) closeSync(old);
    try {
      this.fd = openAppend(this.o.file);
    } catch (err) {
      this.logger.error(
        { err: (err as Error).message },
        'cannot reopen the audit log; will retry on the next line',
      );
    }
  }

  close(): void {
    process.off('SIGHUP', this.onHup);
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

function openAppend(file: string): number {
  mkdirSync(dirname(file), { recursive: true });
  return openSync(file, 'a', 0o640);
}

/** One audit record as a JSON line (exported for tests and the docs). */
export function auditLine(event: AuditEvent, now: number): string {
  const { event: name, sessionId, user, clientIp, ...rest } = event;
  const out: Record<string, unknown> = {
    time: new Date(now).toISOString(),
    type: 'audit',
    event: name,
    session_id: sessionId,
    user: user ?? null,
    client_ip: clientIp ?? null,
  };
  for (const [key, value] of Object.entries(rest)) {
    if (NEVER.has(key) || value === undefined) continue;
    out[key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] = value;
  }
  return `${JSON.stringify(out)}\n`;
}

/**
 * Write a `session_close` line (with the reason) for every session that ends, through the
 * engine's close pipeline: exactly once per session across every process sharing the store
 * (a delivery cut off by a crash is marked `redelivered`). `onClosed` sees each record too.
 */
export async function auditCloses(
  engine: SessionEngine,
  sink: AuditSink,
  onClosed?: (reason: string) => void,
): Promise<void> {
  await engine.onClose(AUDIT_SUBSCRIBER, (event) => {
    const s = event.snapshot;
    sink.write({
      event: 'session_close',
      sessionId: event.sessionId,
      user: s.user,
      clientIp: s.clientIp,
      reason: event.reason,
      profile: s.profile,
      closedAt: new Date(event.closedAt).toISOString(),
      ...(event.redelivered ? { redelivered: true } : {}),
    });
    onClosed?.(event.reason);
  });
}
