import type { CloseReason, SessionRecord } from './session-types.js';

type DeadlineFields = Pick<
  SessionRecord,
  'lastAccessAt' | 'idleTimeout' | 'lifetimeDeadline' | 'policyDeadline'
>;

/**
 * The moment a session ends if nothing else happens:
 * `min(lastAccess + idle, lifetimeDeadline, policyDeadline)`, ignoring disabled parts.
 * Every store computes expiry with this one function (the Redis scripts mirror it).
 *
 * @example
 * ```ts
 * computeExpiresAt({ lastAccessAt: 0, idleTimeout: 900, lifetimeDeadline: 600_000, policyDeadline: null });
 * // -> 600000: the lifetime ends before the idle timer would
 * ```
 */
export function computeExpiresAt(s: DeadlineFields): number | null {
  let at: number | null = s.idleTimeout > 0 ? s.lastAccessAt + s.idleTimeout * 1000 : null;
  if (s.lifetimeDeadline !== null && (at === null || s.lifetimeDeadline < at)) at = s.lifetimeDeadline;
  if (s.policyDeadline !== null && (at === null || s.policyDeadline < at)) at = s.policyDeadline;
  return at;
}

/** True when the session is past its deadline at `now` (a deadline equal to now has passed). */
export function isExpired(s: Pick<SessionRecord, 'expiresAt'>, now: number): boolean {
  return s.expiresAt !== null && s.expiresAt <= now;
}

/** The close reasons a deadline gives. */
export type ExpiryReason = Extract<CloseReason, 'idle_timeout' | 'lifetime_expired' | 'policy_timeout'>;

/**
 * Which deadline ended an expired session. When several passed, the one that came first
 * wins; ties go to the policy timeout, then the lifetime, as they are the harder limits.
 */
export function expiryReason(s: DeadlineFields): ExpiryReason {
  const idleAt = s.idleTimeout > 0 ? s.lastAccessAt + s.idleTimeout * 1000 : Infinity;
  const lifeAt = s.lifetimeDeadline ?? Infinity;
  const policyAt = s.policyDeadline ?? Infinity;
  if (policyAt <= lifeAt && policyAt <= idleAt) return 'policy_timeout';
  if (lifeAt <= idleAt) return 'lifetime_expired';
  return 'idle_timeout';
}
