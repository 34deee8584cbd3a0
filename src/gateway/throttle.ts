import { createHash } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import type { SessionStore } from '../store/contract.js';
import type { LogonThrottleConfig } from './config/throttle-schema.js';
import type { PolicyOutcome } from './policy.js';

/** Which counter refused a logon. */
export type ThrottleScope = 'user_address' | 'user' | 'address';

/** A logon refused before its credentials were checked. */
export interface ThrottleRefusal {
  scope: ThrottleScope;
  /** When the refusing counter's window ends (epoch ms). */
  until: number;
  /** Whole seconds until then, at least 1 (the Retry-After value). */
  retryAfterSeconds: number;
}

interface Counter {
  scope: ThrottleScope;
  key: string;
  limit: number;
  windowMs: number;
}

/** An attempt the throttle let through, counted as a failure until settled. */
export interface LogonAttempt {
  counters: Counter[];
}

/**
 * Logon throttling: failed logons counted in the session store per user name, per client
 * address and per user+address pair, so every worker and gateway on the store counts together.
 * An attempt is counted BEFORE the credentials are checked (a failure reserved in advance) and
 * taken back when they are accepted: parallel guesses cannot all slip in under the limit while
 * the first ones are still being checked. Counter keys are hashes (a user name field sometimes
 * holds a mistyped password); IPv6 addresses count per /64, what one client usually has.
 *
 * @example
 * ```ts
 * const admitted = await throttle.admit(profile.logon_throttle, 'alice', '192.0.2.7');
 * if ('refused' in admitted) return tooMany(admitted.refused.retryAfterSeconds);
 * const ok = await checkPassword();
 * await throttle.settle(admitted.attempt, ok);
 * ```
 */
export class LogonThrottle {
  constructor(
    private readonly store: SessionStore,
    private readonly clock: Clock,
  ) {}

  /** Let one attempt through (counting it), or refuse it when a counter is at its limit. */
  async admit(
    config: LogonThrottleConfig,
    username: string,
    clientIp: string,
  ): Promise<{ attempt: LogonAttempt } | { refused: ThrottleRefusal }> {
    // Read first: while a counter is over its limit, refusals cost no writes.
    const over = await this.blocked(config, username, clientIp);
    if (over) return { refused: over };
    const counters = countersOf(config, username, clientIp);
    const now = this.clock.now();
    const counted = await Promise.all(counters.map((c) => this.store.countFailure(c.key, c.windowMs, now)));
    // Counts are atomic: an attempt that got a count past a limit lost a race, and goes back.
    const raced = refusal(counters, counted, now, 0);
    if (raced) {
      await Promise.all(counters.map((c) => this.store.uncountFailure(c.key, now)));
      return { refused: raced };
    }
    return { attempt: { counters } };
  }

  /**
   * Whether a logon of `username` from `clientIp` would be refused now, and until when; counts
   * nothing (the denied page says when a new logon can be tried).
   */
  async blocked(
    config: LogonThrottleConfig,
    username: string,
    clientIp: string,
  ): Promise<ThrottleRefusal | undefined> {
    const counters = countersOf(config, username, clientIp);
    const now = this.clock.now();
    const seen = await Promise.all(counters.map((c) => this.store.failures(c.key, now)));
    return refusal(counters, seen, now, 1);
  }

  /**
   * Run `policy` (which checks `username`'s credentials) under the throttle: refused at once
   * when a counter is at its limit, else counted and settled by what the policy made of them
   * (a policy that throws settles as not failed: an unreachable directory is no guess).
   */
  async run(
    config: LogonThrottleConfig,
    username: string | undefined,
    clientIp: string,
    policy: () => Promise<PolicyOutcome>,
  ): Promise<PolicyOutcome> {
    if (username === undefined) return policy();
    const admitted = await this.admit(config, username, clientIp);
    if ('refused' in admitted) return { kind: 'throttled', ...admitted.refused };
    let failed = false;
    try {
      const outcome = await policy();
      failed = 'credentialsRefused' in outcome && outcome.credentialsRefused === true;
      return outcome;
    } finally {
      await this.settle(admitted.attempt, failed);
    }
  }

  /**
   * The credentials were checked: a failure stays counted. Accepted (or never checked), the
   * attempt is taken back, and the pair's earlier failures are forgiven: the user got in from
   * there. The per-user and per-address failures stay, or a guesser who also knows one valid
   * account could wipe them.
   */
  async settle(attempt: LogonAttempt, failed: boolean): Promise<void> {
    if (failed) return;
    const now = this.clock.now();
    await Promise.all(
      attempt.counters.map((c) =>
        c.scope === 'user_address' ? this.store.clearFailures(c.key) : this.store.uncountFailure(c.key, now),
      ),
    );
  }
}

function countersOf(config: LogonThrottleConfig, username: string, clientIp: string): Counter[] {
  const user = username.trim().normalize('NFKC').toLowerCase();
  const address = throttledAddress(clientIp);
  const all: Counter[] = [
    counter('user_address', `ua:${digest(`${user}\n${address}`)}`, config.per_user_address),
    counter('user', `u:${digest(user)}`, config.per_user),
    counter('address', `a:${digest(address)}`, config.per_address),
  ];
  return all.filter((c) => c.limit > 0);
}

function counter(scope: ThrottleScope, key: string, l: { limit: number; window: number }): Counter {
  return { scope, key: `throttle:${key}`, limit: l.limit, windowMs: l.window * 1000 };
}

/**
 * The counter at or over its limit whose window ends last, if any: with `slack` 1 for counts
 * read before this attempt (at the limit already refuses), 0 for counts that include it.
 */
function refusal(
  counters: Counter[],
  counts: { count: number; resetAt: number }[],
  now: number,
  slack: number,
): ThrottleRefusal | undefined {
  let worst: ThrottleRefusal | undefined;
  counters.forEach((c, i) => {
    const { count, resetAt } = counts[i]!;
    if (count + slack <= c.limit || (worst && worst.until >= resetAt)) return;
    worst = {
      scope: c.scope,
      until: resetAt,
      retryAfterSeconds: Math.max(1, Math.ceil((resetAt - now) / 1000)),
    };
  });
  return worst;
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}

/**
 * The address a counter is kept for: IPv4 as it is, IPv6 reduced to its /64 (one host
 * usually holds a whole /64 and could otherwise take a fresh address for every guess).
 *
 * @example
 * ```ts
 * throttledAddress('2001:db8:1:2:aaaa::1'); // '2001:db8:1:2::/64'
 * ```
 */
export function throttledAddress(ip: string): string {
  if (!ip.includes(':')) return ip;
  const bare = ip.toLowerCase().replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(bare);
  if (mapped) return mapped[1]!;
  const [head = '', tail] = bare.split('::');
  const groups = (s: string) => (s ? s.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])) : []);
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const full = [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${full
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}
