import type { SessionId } from '../core/ids.js';
import type {
  CloseReason,
  CloseRecord,
  JsonObject,
  SessionRecord,
  SessionState,
} from '../core/session-types.js';

/**
 * What a backend can promise. Declared, never faked: the conformance suite skips what a
 * backend does not claim, with the reason.
 */
export interface StoreCapabilities {
  /** Sessions and close records survive a restart of the process, even `kill -9`. */
  durable: boolean;
  /** Several processes may open the same store at once. */
  shared: boolean;
}

/** A session to create. The store fills in `version` and `expiresAt`. */
export type NewSession = Omit<SessionRecord, 'version' | 'expiresAt'>;

/** Limits checked atomically with a create (or with setting the user of a session). */
export interface SessionLimits {
  /** Max live sessions of one user; 0 or absent = unlimited. */
  maxSessionsPerUser?: number;
  /** At the per-user limit: close the oldest sessions (reason `evicted`) or refuse. */
  onUserLimit?: 'evict_oldest' | 'refuse';
  /** Max live sessions in the store; 0 or absent = unlimited. */
  maxConcurrentSessions?: number;
  /** Max `inprogress` sessions of one client address; 0 or absent = unlimited. */
  maxInProgressPerClientIp?: number;
  /**
   * At the per-address limit: close that address's oldest `inprogress` sessions (reason
   * `evicted`) in the same step, or refuse the new one. Default `refuse`.
   */
  onClientIpLimit?: 'evict_oldest' | 'refuse';
}

/**
 * A failure counter (logon throttling): failures counted in a fixed window that opens at the
 * first failure and lasts `windowMs`; after `resetAt` the counter starts again from zero.
 */
export interface FailureCount {
  count: number;
  /** When the window ends (epoch ms); `now` when there is no counter. */
  resetAt: number;
}

/** A change to one session, applied atomically. Absent fields are left as they are. */
export interface SessionPatch {
  state?: SessionState;
  user?: string | null;
  idleTimeout?: number;
  lifetime?: number;
  lifetimeDeadline?: number | null;
  policyDeadline?: number | null;
  setVariables?: Record<string, string>;
  deleteVariables?: string[];
  setSecure?: Record<string, string>;
  deleteSecure?: string[];
  /** Replaces the cookie of each named plugin. */
  cookies?: Record<string, JsonObject>;
  sessionCookie?: JsonObject;
  /** Also count the call as activity (resets the idle timer). */
  touch?: boolean;
}

export interface UpdateOptions {
  now: number;
  /** Compare-and-set: fail with SG_ERR_VERSION_CONFLICT unless the session has this version. */
  expectedVersion?: number;
  /** Enforced when the patch sets a user. */
  limits?: SessionLimits;
}

export interface WriteResult {
  record: SessionRecord;
  /** Sessions closed with reason `evicted` to make room (per-user or per-address limit, oldest first). */
  evicted: SessionId[];
}

export type ValidateOutcome =
  | { status: 'valid'; record: SessionRecord }
  | { status: 'missing' }
  /** It was past its deadline: the store closed it in the same step. */
  | { status: 'expired'; reason: CloseReason };

export interface ListQuery {
  user?: string;
  state?: SessionState;
  clientIp?: string;
  /** Page size, 1..1000 (default 100). */
  limit?: number;
  /** Opaque cursor from the previous page. */
  cursor?: string | null;
}

export interface ListPage {
  sessions: SessionRecord[];
  nextCursor: string | null;
}

/** A close record handed to one subscriber. */
export interface ClaimedClose extends CloseRecord {
  /** 1 on first delivery to this subscriber. */
  attempt: number;
  /** An earlier delivery to this subscriber was claimed and never finished (its process died). */
  redelivered: boolean;
}

export interface ClaimOptions {
  now: number;
  /** How long the claim is exclusive; after that another consumer may take it over. */
  leaseMs: number;
  limit: number;
}

export interface StoreStats {
  sessions: number;
  byState: Record<SessionState, number>;
  /** Close records not yet finished, by subscriber. */
  outboxPending: Record<string, number>;
  /** Close records given up after the retries, by subscriber. */
  outboxFailed: Record<string, number>;
  /**
   * By subscriber: when (epoch ms) its oldest unfinished close record was closed; absent when
   * it has none. `now` minus this is how far the subscriber is behind.
   */
  outboxOldest: Record<string, number>;
}

export interface ReleaseOptions {
  /** The records are offered again from this time on. */
  now: number;
  /**
   * The handler had started on them (a shutdown cut it off): keep the attempt and flag the next
   * delivery `redelivered`. Otherwise the claim is undone: the next delivery has the same attempt.
   */
  interrupted?: boolean;
}

/**
 * The session store contract (docs/sessions.md). Every method is one atomic step, so that a Redis
 * backend can do each as a single Lua script. Times are passed in (`now`) so the engine's
 * injectable clock governs everything.
 *
 * @example
 * ```ts
 * const store = await openStore('sqlite:./var/sessiongate.db');
 * const out = await store.validate(id, clock.now(), 1000);
 * if (out.status === 'valid') serve(out.record);
 * ```
 */
export interface SessionStore {
  readonly kind: string;
  readonly capabilities: StoreCapabilities;

  /** Insert a session, enforcing `limits` in the same step. */
  create(session: NewSession, limits: SessionLimits, now: number): Promise<WriteResult>;
  /** Read a session as stored, even if past its deadline; no side effect. */
  get(id: SessionId): Promise<SessionRecord | null>;
  /**
   * The request path: check the deadline and, when the last recorded access is at least
   * `touchResolutionMs` old, record this access; an expired session is closed in the same step.
   * `lazyTouch`: a store that holds a current copy of the session (the redis near cache) may
   * answer from it at once and write the due touch after answering; the record returned is
   * then the one before the touch. Stores that answer in one step anyway ignore it.
   */
  validate(
    id: SessionId,
    now: number,
    touchResolutionMs: number,
    options?: { lazyTouch?: boolean },
  ): Promise<ValidateOutcome>;
  /**
   * validate() without waiting: the same answer and the same effects, returned at once when
   * the store has it at hand (memory and sqlite: always; redis: a usable near-cache record),
   * or undefined, having done nothing: then call validate(). Optional; the request path uses
   * it to skip the promise hops of a lookup that needs no I/O wait.
   */
  validateNow?(
    id: SessionId,
    now: number,
    touchResolutionMs: number,
    options?: { lazyTouch?: boolean },
  ): ValidateOutcome | undefined;
  /** Apply a patch; closes (and reports missing) a session found past its deadline. */
  update(id: SessionId, patch: SessionPatch, options: UpdateOptions): Promise<WriteResult>;
  /**
   * Give a session a new id (token rotation) and apply `patch` in the same step (secure
   * values are bound to the id, so they are re-sealed); false when the old id is gone.
   */
  rekey(oldId: SessionId, newId: SessionId, patch: SessionPatch, options: UpdateOptions): Promise<boolean>;
  /**
   * Delete the session and append its close record to the outbox, in one step. A session
   * found past its deadline is closed with the expiry reason instead of `reason`.
   */
  close(id: SessionId, reason: CloseReason, now: number): Promise<CloseRecord | null>;
  /** Close up to `limit` sessions whose deadline has passed, found through the deadline index. */
  closeExpired(now: number, limit: number): Promise<CloseRecord[]>;
  /**
   * Attach `tags` to a live session (added to the ones it carries; a tag it has is kept once),
   * so that findByTag finds it, e.g. `oidc-sid:<issuer hash>:<sid>` for back-channel logout.
   * False, changing nothing, when the session is missing or past its deadline at `now`. A tag is
   * 1..256 characters without control characters, at most 16 per session: otherwise
   * SG_ERR_INVALID_TAG and nothing changes. Tags go with the session when it closes (any way:
   * close, expiry, eviction) and move with it on rekey. Optional, like validateNow: every
   * bundled store has it; a store without it cannot serve tag lookups.
   */
  tag?(id: SessionId, tags: string[], now: number): Promise<boolean>;
  /**
   * The sessions live at `now` that carry `tag` (an index lookup, not a scan), in no particular
   * order; [] for a tag nobody carries. A session that closed, moved to a new id, or is past
   * its deadline is never returned (stores that tidy their index lazily drop such entries here).
   */
  findByTag?(tag: string, now: number): Promise<SessionId[]>;
  /** Live sessions of one user, oldest first. */
  listByUser(user: string): Promise<SessionRecord[]>;
  /** All sessions matching the filter, a page at a time, in a stable order. */
  list(query: ListQuery): Promise<ListPage>;

  /** Make sure a subscriber exists; it receives every close record still in the outbox. */
  ensureSubscriber(name: string): Promise<void>;
  /** Lease up to `limit` close records for one subscriber (stale leases are taken over). */
  claim(subscriber: string, consumer: string, options: ClaimOptions): Promise<ClaimedClose[]>;
  /** The subscriber finished this record; it will never see it again. */
  ack(subscriber: string, seq: string): Promise<void>;
  /** The subscriber failed; release the lease and offer the record again at `retryAt`. */
  retry(subscriber: string, seq: string, retryAt: number): Promise<void>;
  /** Give up on this record for this subscriber, keeping it for inspection. */
  fail(subscriber: string, seq: string, error: string, now: number): Promise<void>;
  /**
   * Heartbeat: move the lease end of the records `consumer` still holds among `seqs` to
   * `leaseUntil`; returns those (records taken over, finished or released are left alone).
   */
  renew(subscriber: string, consumer: string, seqs: string[], leaseUntil: number): Promise<string[]>;
  /** Hand back records `consumer` holds (a shutdown), so that any consumer can claim them at once. */
  release(subscriber: string, consumer: string, seqs: string[], options: ReleaseOptions): Promise<void>;

  /**
   * Count one failure under `key` (an opaque name chosen by the caller, e.g. a hash of a user
   * name) and return the count in the current window, this failure included. A counter whose
   * window has ended at `now` starts again at 1 with a new window of `windowMs`. Shared by
   * every process of a shared store, so gateways and workers count together; atomic, so
   * concurrent callers each get a distinct count.
   */
  countFailure(key: string, windowMs: number, now: number): Promise<FailureCount>;
  /** The count under `key` at `now` (0 when absent or its window ended); no side effect. */
  failures(key: string, now: number): Promise<FailureCount>;
  /** Take back one failure counted in the current window (never below 0). */
  uncountFailure(key: string, now: number): Promise<void>;
  /** Forget the counter under `key`. */
  clearFailures(key: string): Promise<void>;

  stats(): Promise<StoreStats>;
  /** Release connections and files. The store is unusable afterwards. */
  dispose(): Promise<void>;
}
