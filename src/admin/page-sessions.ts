import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Clock } from '../core/clock.js';
import { findCookie } from '../core/cookie-header.js';

/** The cookie of the web page's admin session. */
export const ADMIN_COOKIE = 'sg_admin';

interface PageSession {
  createdAt: number;
  lastSeen: number;
}

/**
 * The admin web page's sessions, in this process's memory: a random cookie value, kept only as
 * its SHA-256 (a leaked memory dump or log names no usable cookie), ended after `idleMs`
 * without a request or `lifetimeMs` after the login.
 *
 * @example
 * ```ts
 * const pages = new PageSessions(systemClock, 30 * 60_000, 8 * 3_600_000);
 * const cookie = pages.start(); // Set-Cookie: sg_admin=<cookie>
 * pages.find(req); // the session's key while it lives, else undefined
 * ```
 */
export class PageSessions {
  private readonly pages = new Map<string, PageSession>();

  constructor(
    private readonly clock: Clock,
    private readonly idleMs: number,
    private readonly lifetimeMs: number,
  ) {}

  /** The key of the live page session the request's cookie names (its last use is now), if any. */
  find(req: IncomingMessage): string | undefined {
    const header = req.headers.cookie;
    const value = header ? findCookie(header, ADMIN_COOKIE) : undefined;
    if (!value) return undefined;
    const key = keyOf(value);
    const s = this.pages.get(key);
    if (!s) return undefined;
    const now = this.clock.now();
    if (this.over(s, now)) {
      this.pages.delete(key);
      return undefined;
    }
    s.lastSeen = now;
    return key;
  }

  /** A new page session (ended ones are dropped first); returns the cookie value. */
  start(): string {
    const now = this.clock.now();
    for (const [key, s] of this.pages) if (this.over(s, now)) this.pages.delete(key);
    const value = randomBytes(32).toString('base64url');
    this.pages.set(keyOf(value), { createdAt: now, lastSeen: now });
    return value;
  }

  end(key: string): void {
    this.pages.delete(key);
  }

  private over(s: PageSession, now: number): boolean {
    return now - s.lastSeen > this.idleMs || now - s.createdAt > this.lifetimeMs;
  }
}

function keyOf(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}
