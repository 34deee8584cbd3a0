import { computeExpiresAt } from '../../core/deadline.js';
import { SessionGateError } from '../../core/errors.js';
import type { SessionId } from '../../core/ids.js';
import { copyRecord, mergeWithout, type SessionRecord } from '../../core/session-types.js';
import type { ListPage, SessionLimits, SessionPatch } from '../contract.js';

/**
 * The record a patch produces: one definition of what each patch field means, shared by the
 * stores that hold records as objects (memory, sqlite).
 */
export function applyPatch(current: SessionRecord, patch: SessionPatch, now: number): SessionRecord {
  const next = copyRecord(current);
  next.version = current.version + 1;
  if (patch.state !== undefined) next.state = patch.state;
  if (patch.user !== undefined) next.user = patch.user;
  if (patch.idleTimeout !== undefined) next.idleTimeout = patch.idleTimeout;
  if (patch.lifetime !== undefined) next.lifetime = patch.lifetime;
  if (patch.lifetimeDeadline !== undefined) next.lifetimeDeadline = patch.lifetimeDeadline;
  if (patch.policyDeadline !== undefined) next.policyDeadline = patch.policyDeadline;
  if (patch.setVariables || patch.deleteVariables) {
    next.variables = withChanges(current.variables, patch.setVariables, patch.deleteVariables);
  }
  if (patch.setSecure || patch.deleteSecure) {
    next.secure = withChanges(current.secure, patch.setSecure, patch.deleteSecure);
  }
  if (patch.cookies) next.cookies = mergeWithout(undefined, current.cookies, patch.cookies);
  if (patch.sessionCookie) next.sessionCookie = patch.sessionCookie;
  if (patch.touch) next.lastAccessAt = now;
  next.expiresAt = computeExpiresAt(next);
  return next;
}

function withChanges(
  base: Record<string, string>,
  set: Record<string, string> | undefined,
  remove: string[] | undefined,
): Record<string, string> {
  // Built without the removed keys rather than deleted after: delete turns an object into a
  // dictionary (slower, larger).
  return mergeWithout(remove && remove.length > 0 ? new Set(remove) : undefined, base, set);
}

/**
 * Which of the user's other live sessions (oldest first) must go so `record` fits the
 * per-user limit; throws when the profile refuses instead of evicting.
 */
export function sessionsToEvict(
  record: SessionRecord,
  othersOldestFirst: SessionRecord[],
  limits: SessionLimits,
): SessionId[] {
  const max = limits.maxSessionsPerUser ?? 0;
  if (max <= 0 || record.user === null || othersOldestFirst.length < max) return [];
  if (limits.onUserLimit === 'refuse') {
    throw new SessionGateError(
      'SG_ERR_USER_LIMIT_REACHED',
      `user ${JSON.stringify(record.user)} already has ${othersOldestFirst.length} sessions (limit ${max})`,
    );
  }
  return othersOldestFirst.slice(0, othersOldestFirst.length - max + 1).map((s) => s.id);
}

/**
 * Which `inprogress` sessions of the new session's client address (oldest first) must go so
 * it fits the per-address limit, when the profile evicts rather than refuses. Expired but
 * unswept sessions count (they are in the store) and are evicted first, being oldest.
 *
 * @example
 * ```ts
 * const evict = inProgressToEvict(record, oldestFirst, { maxInProgressPerClientIp: 20, onClientIpLimit: 'evict_oldest' });
 * ```
 */
export function inProgressToEvict(
  record: Pick<SessionRecord, 'state' | 'clientIp'>,
  ofIpOldestFirst: readonly { id: SessionId }[],
  limits: SessionLimits,
): SessionId[] {
  const max = limits.maxInProgressPerClientIp ?? 0;
  if (!evictsByClientIp(record, limits) || ofIpOldestFirst.length < max) return [];
  return ofIpOldestFirst.slice(0, ofIpOldestFirst.length - max + 1).map((s) => s.id);
}

/** Whether a create of `record` evicts for the per-address limit (so the store lists, not counts). */
export function evictsByClientIp(
  record: Pick<SessionRecord, 'state' | 'clientIp'>,
  limits: SessionLimits,
): boolean {
  return (
    (limits.maxInProgressPerClientIp ?? 0) > 0 &&
    limits.onClientIpLimit === 'evict_oldest' &&
    record.state === 'inprogress' &&
    record.clientIp !== null
  );
}

/** The store-wide and per-address limits of a create, given the counts after eviction. */
export function checkLimitsBeforeCreate(
  record: SessionRecord,
  limits: SessionLimits,
  liveSessions: number,
  inProgressOfIp: number,
): void {
  const maxAll = limits.maxConcurrentSessions ?? 0;
  if (maxAll > 0 && liveSessions >= maxAll) {
    throw new SessionGateError(
      'SG_ERR_CONCURRENCY_LIMIT_REACHED',
      `${liveSessions} sessions are live (limit ${maxAll})`,
    );
  }
  const maxIp = limits.maxInProgressPerClientIp ?? 0;
  if (maxIp > 0 && record.state === 'inprogress' && record.clientIp !== null && inProgressOfIp >= maxIp) {
    throw new SessionGateError(
      'SG_ERR_CLIENT_IP_LIMIT_REACHED',
      `client ${record.clientIp} already has ${inProgressOfIp} sessions in progress (limit ${maxIp})`,
    );
  }
}

export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;

export function pageSize(limit: number | undefined): number {
  return Math.min(Math.max(1, Math.floor(limit ?? DEFAULT_PAGE)), MAX_PAGE);
}

/** One page of matches in id order; the cursor is the last id returned. */
export function pageOf(matches: SessionRecord[], limit: number | undefined): ListPage {
  const size = pageSize(limit);
  matches.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const sessions = matches.slice(0, size);
  const more = matches.length > size;
  return { sessions, nextCursor: more ? sessions[sessions.length - 1]!.id : null };
}
