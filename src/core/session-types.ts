import type { SessionId } from './ids.js';

export const SESSION_STATES = ['inprogress', 'allow', 'deny', 'redirect'] as const;
/** APM's session states: the access policy is running, or ended with allow, deny or redirect. */
export type SessionState = (typeof SESSION_STATES)[number];

export const CLOSE_REASONS = [
  'logout',
  'idle_timeout',
  'lifetime_expired',
  'policy_timeout',
  'removed',
  'admin_kill',
  'evicted',
  'denied',
  /** `users passwd` ended the user's other sessions (ASVS 3.3.3). */
  'password_changed',
  /** The identity provider refused to refresh the session's access token (revoked sign-in). */
  'token_refresh_failed',
  /** The identity provider said a bearer token's session's token is no longer active (revoked). */
  'token_revoked',
  /** The user ended the session from their own sessions page (`/sg/sessions`, ASVS 3.3.4). */
  'user_ended',
] as const;
/** Why a session ended. Every close carries exactly one. */
export type CloseReason = (typeof CLOSE_REASONS)[number];

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/**
 * A session as the store keeps it. Times are epoch milliseconds; timeouts are seconds
 * (0 = disabled), as in APM's profile settings.
 */
export interface SessionRecord {
  id: SessionId;
  state: SessionState;
  user: string | null;
  clientIp: string | null;
  /** Access profile the session belongs to. */
  profile: string;
  createdAt: number;
  lastAccessAt: number;
  /** Idle (inactivity) timeout in seconds; 0 = none. */
  idleTimeout: number;
  /** Maximum session lifetime in seconds as configured; 0 = none. */
  lifetime: number;
  /** Absolute end set by `lifetime` (from creation) or `remaining` (from the call); null = none. */
  lifetimeDeadline: number | null;
  /** End of the access-policy window while `inprogress`; null once the policy ended. */
  policyDeadline: number | null;
  /** The earliest of the deadlines above (idle counted from lastAccessAt); null = never. */
  expiresAt: number | null;
  /** Plain variables. */
  variables: Record<string, string>;
  /** Secure variables: ciphertext only. */
  secure: Record<string, string>;
  /** Per-plugin state (SPS `cookie`), by plugin name. */
  cookies: Record<string, JsonObject>;
  /** State shared by all plugins of the session (SPS `session_cookie`). */
  sessionCookie: JsonObject;
  /** Increases on every write; used for compare-and-set. */
  version: number;
}

/** What the store keeps after a session ends, for the close pipeline. */
export interface CloseRecord {
  /**
   * Opaque position of the record in the store's outbox, passed back to ack/retry/fail
   * (memory and sqlite: a decimal sequence number; redis: shard and stream entry id).
   */
  seq: string;
  sessionId: SessionId;
  reason: CloseReason;
  closedAt: number;
  /** The session as it was at the moment it closed. */
  snapshot: SessionRecord;
}

/**
 * A plain copy of a record's fields, built as one object literal. Object spread of a record
 * yields a slow, dictionary-backed object about three times the size; at a million sessions
 * in memory that difference is most of the footprint.
 *
 * @example
 * ```ts
 * const next = copyRecord({ ...current, version: current.version + 1 }); // compact again
 * ```
 */
export function copyRecord(r: SessionRecord): SessionRecord {
  return {
    id: r.id,
    state: r.state,
    user: r.user,
    clientIp: r.clientIp,
    profile: r.profile,
    createdAt: r.createdAt,
    lastAccessAt: r.lastAccessAt,
    idleTimeout: r.idleTimeout,
    lifetime: r.lifetime,
    lifetimeDeadline: r.lifetimeDeadline,
    policyDeadline: r.policyDeadline,
    expiresAt: r.expiresAt,
    variables: r.variables,
    secure: r.secure,
    cookies: r.cookies,
    sessionCookie: r.sessionCookie,
    version: r.version,
  };
}

/**
 * A new plain object with the own properties of `sources`, later ones winning, `drop` left
 * out. Unlike `{ ...a, ...b }` this gives objects with the same keys in the same order the
 * same V8 hidden class: object spread, once its call site has seen many shapes, builds a
 * hidden class per object (measured: about 250 bytes more per session at a million sessions).
 * `__proto__` is copied as a plain key, as spread would.
 *
 * @example
 * ```ts
 * mergeStrings({ a: '1' }, { b: '2' }); // { a: '1', b: '2' }
 * ```
 */
export function mergeStrings(...sources: (Record<string, string> | undefined)[]): Record<string, string> {
  return mergeWithout(undefined, ...sources);
}

/** mergeStrings without the keys in `drop`. */
export function mergeWithout<T>(
  drop: ReadonlySet<string> | undefined,
  ...sources: (Record<string, T> | undefined)[]
): Record<string, T> {
  const out: Record<string, T> = {};
  for (const source of sources) {
    if (!source) continue;
    for (const key of Object.keys(source)) {
      if (drop?.has(key)) continue;
      const value = source[key] as T;
      if (key === '__proto__')
        Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
      else out[key] = value;
    }
  }
  return out;
}
