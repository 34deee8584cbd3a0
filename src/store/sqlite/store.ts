import type Database from 'better-sqlite3';
import { computeExpiresAt, expiryReason, isExpired } from '../../core/deadline.js';
import { SessionGateError, sessionNotFound } from '../../core/errors.js';
import type { SessionId } from '../../core/ids.js';
import type { CloseReason, CloseRecord, SessionRecord, SessionState } from '../../core/session-types.js';
import type {
  ClaimedClose,
  ClaimOptions,
  ReleaseOptions,
  FailureCount,
  ListPage,
  ListQuery,
  NewSession,
  SessionLimits,
  SessionPatch,
  SessionStore,
  StoreCapabilities,
  StoreStats,
  UpdateOptions,
  ValidateOutcome,
  WriteResult,
} from '../contract.js';
import { SqliteFailureCounters } from './failures.js';
import {
  applyPatch,
  checkLimitsBeforeCreate,
  evictsByClientIp,
  inProgressToEvict,
  sessionsToEvict,
} from '../shared/records.js';
import { SqliteOutbox } from './outbox.js';
import {
  openDatabase,
  recordParams,
  rowToRecord,
  storeError,
  type SessionRow,
  type SqliteOptions,
} from './schema.js';
import { prepareSessionStatements, SessionLister, type SessionStatements } from './statements.js';
import { SqliteTags } from './tags.js';
import { mergeTags } from '../shared/tags.js';

export type { SqliteOptions } from './schema.js';

const MISSING: ValidateOutcome = Object.freeze({ status: 'missing' });

/**
 * Sessions in one SQLite file: the embedded default. WAL mode lets several processes open the
 * same file (readers never block; writers queue on `busy_timeout`), and a committed call
 * survives `kill -9`. Every contract call is one transaction; calls that read before writing
 * take the write lock up front (`BEGIN IMMEDIATE`) so concurrent processes serialize instead
 * of failing on a stale snapshot.
 *
 * @example
 * ```ts
 * const store = SqliteStore.open('../var/sessiongate.db');
 * await store.create(session, { maxSessionsPerUser: 3 }, Date.now());
 * const out = await store.validate(session.id, Date.now(), 1000);
 * await store.dispose();
 * ```
 */
export class SqliteStore implements SessionStore {
  readonly kind = 'sqlite';
  readonly capabilities: StoreCapabilities = { durable: true, shared: true };

  private readonly s: SessionStatements;
  private readonly outbox: SqliteOutbox;
  /** Runs a closure in a transaction: `.immediate` for writes, `.deferred` for reads. */
  private readonly tx: Database.Transaction<(fn: () => unknown) => unknown>;
  private readonly lister: SessionLister;
  private readonly failureCounters: SqliteFailureCounters;
  private readonly tags: SqliteTags;
  private disposed = false;

  private constructor(
    private readonly db: Database.Database,
    /** The file this store was opened on (`:memory:` for a private in-memory database). */
    readonly path: string,
  ) {
    this.s = prepareSessionStatements(db);
    this.outbox = new SqliteOutbox(db);
    this.lister = new SessionLister(db);
    this.failureCounters = new SqliteFailureCounters(db);
    this.tags = new SqliteTags(db);
    this.tx = db.transaction((fn: () => unknown) => fn());
  }

  /** Open or create the store in `path` (its directory is created if missing). */
  static open(path: string, options: SqliteOptions = {}): SqliteStore {
    const db = openDatabase(path, options);
    try {
      return new SqliteStore(db, path);
    } catch (err) {
      db.close(); // e.g. a file whose tables do not match its schema version
      throw storeError(path, err, true);
    }
  }

  async create(session: NewSession, limits: SessionLimits, now: number): Promise<WriteResult> {
    return this.writeOrRefuse(() => {
      const record: SessionRecord = { ...session, version: 1, expiresAt: computeExpiresAt(session) };
      if (this.s.exists.get(record.id) !== undefined)
        throw new SessionGateError('SG_ERR_INTERNAL', 'session id collision');
      const evicted = this.prepareLimits(record, limits, now, true);
      if (evicted instanceof SessionGateError) return evicted;
      for (const id of evicted) this.closeNow(id, 'evicted', now);
      this.s.insert.run(recordParams(record));
      return { record, evicted };
    });
  }

  async get(id: SessionId): Promise<SessionRecord | null> {
    return this.guard(() => {
      const row = this.s.byId.get(id);
      return row ? rowToRecord(row) : null;
    });
  }

  async validate(id: SessionId, now: number, touchResolutionMs: number): Promise<ValidateOutcome> {
    return this.validateNow(id, now, touchResolutionMs);
  }

  /** better-sqlite3 is synchronous: validate's answer is always at hand. */
  validateNow(id: SessionId, now: number, touchResolutionMs: number): ValidateOutcome {
    return this.guard(() => {
      // Common path: one primary-key read, no write, no explicit transaction.
      const row = this.s.byId.get(id);
      if (!row) return MISSING;
      if (!isExpired(row, now)) {
        if (now - row.lastAccessAt < touchResolutionMs) return { status: 'valid', record: rowToRecord(row) };
        // Compare-and-set on the version just read, so no other write can slip in between.
        const touched = this.s.touch.get(now, touchedExpiry(row, now), id, row.version);
        if (touched) return { status: 'valid', record: rowToRecord(touched) };
      }
      // Expired, or another writer got in first: decide again under the write lock.
      return this.write(() => this.validateLocked(id, now, touchResolutionMs));
    });
  }

  async update(id: SessionId, patch: SessionPatch, o: UpdateOptions): Promise<WriteResult> {
    return this.writeOrRefuse(() => {
      const row = this.s.byId.get(id);
      if (!row) return sessionNotFound(id);
      const current = rowToRecord(row);
      if (isExpired(current, o.now)) {
        this.closeKnown(current, expiryReason(current), o.now);
        return sessionNotFound(id);
      }
      this.checkVersion(current, o.expectedVersion);
      const record = applyPatch(current, patch, o.now);
      let evicted: SessionId[] | SessionGateError = [];
      if (patch.user !== undefined && patch.user !== current.user && o.limits) {
        evicted = this.prepareLimits(record, o.limits, o.now, false);
      }
      if (evicted instanceof SessionGateError) return evicted;
      for (const e of evicted) this.closeNow(e, 'evicted', o.now);
      this.s.update.run(recordParams(record));
      return { record, evicted };
    });
  }

  async rekey(oldId: SessionId, newId: SessionId, patch: SessionPatch, o: UpdateOptions): Promise<boolean> {
    return this.write(() => {
      const row = this.s.byId.get(oldId);
      // As in memory/store.ts: a session past its deadline is not moved (the sweep closes it).
      if (!row || isExpired(row, o.now)) return false;
      const current = rowToRecord(row);
      this.checkVersion(current, o.expectedVersion);
      this.s.delete.run(oldId);
      this.s.insert.run(recordParams({ ...applyPatch(current, patch, o.now), id: newId }));
      this.tags.move(oldId, newId);
      return true;
    });
  }

  async close(id: SessionId, reason: CloseReason, now: number): Promise<CloseRecord | null> {
    return this.write(() => this.closeNow(id, reason, now));
  }

  async closeExpired(now: number, limit: number): Promise<CloseRecord[]> {
    return this.write(() => {
      const closed: CloseRecord[] = [];
      for (const row of this.s.due.all(now, Math.max(0, Math.floor(limit)))) {
        const record = rowToRecord(row);
        if (isExpired(record, now)) closed.push(this.closeKnown(record, expiryReason(record), now));
      }
      return closed;
    });
  }

  async tag(id: SessionId, tags: string[], now: number): Promise<boolean> {
    return this.write(() => {
      mergeTags([], tags); // a malformed call is refused whether or not the session is live
      const row = this.s.byId.get(id);
      if (!row || isExpired(row, now)) return false;
      this.tags.add(id, tags);
      return true;
    });
  }

  async findByTag(tag: string, now: number): Promise<SessionId[]> {
    return this.guard(() => this.tags.find(tag, now));
  }

  async listByUser(user: string): Promise<SessionRecord[]> {
    return this.guard(() => this.s.byUser.all(user).map(rowToRecord));
  }

  async list(query: ListQuery): Promise<ListPage> {
    return this.guard(() => this.lister.page(query));
  }

  async ensureSubscriber(name: string): Promise<void> {
    this.write(() => this.outbox.ensureGroup(name));
  }
  async claim(subscriber: string, consumer: string, o: ClaimOptions): Promise<ClaimedClose[]> {
    return this.write(() => this.outbox.claim(subscriber, consumer, o));
  }
  async ack(subscriber: string, seq: string): Promise<void> {
    this.write(() => this.outbox.ack(subscriber, seq));
  }
  async retry(subscriber: string, seq: string, retryAt: number): Promise<void> {
    this.write(() => this.outbox.retry(subscriber, seq, retryAt));
  }
  async fail(subscriber: string, seq: string, error: string, now: number): Promise<void> {
    this.write(() => this.outbox.fail(subscriber, seq, error, now));
  }

  async renew(subscriber: string, consumer: string, seqs: string[], leaseUntil: number): Promise<string[]> {
    return this.write(() => this.outbox.renew(subscriber, consumer, seqs, leaseUntil));
  }
  async release(subscriber: string, consumer: string, seqs: string[], o: ReleaseOptions): Promise<void> {
    this.write(() => this.outbox.release(subscriber, consumer, seqs, o));
  }

  async countFailure(key: string, windowMs: number, now: number): Promise<FailureCount> {
    return this.write(() => this.failureCounters.count(key, windowMs, now));
  }
  async failures(key: string, now: number): Promise<FailureCount> {
    return this.guard(() => this.failureCounters.get(key, now));
  }
  async uncountFailure(key: string, now: number): Promise<void> {
    this.guard(() => this.failureCounters.uncount(key, now));
  }
  async clearFailures(key: string): Promise<void> {
    this.guard(() => this.failureCounters.clear(key));
  }

  async stats(): Promise<StoreStats> {
    // A read transaction: every count comes from the same snapshot.
    return this.guard(
      () =>
        this.tx.deferred(() => {
          const byState: Record<SessionState, number> = { inprogress: 0, allow: 0, deny: 0, redirect: 0 };
          let sessions = 0;
          for (const { state, n } of this.s.countByState.all()) {
            byState[state] = n;
            sessions += n;
          }
          return {
            sessions,
            byState,
            outboxPending: this.outbox.pendingCounts(),
            outboxFailed: this.outbox.failedCounts(),
            outboxOldest: this.outbox.oldestClosedAt(),
          };
        }) as StoreStats,
    );
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.db.close();
  }

  /** Run `fn` on the open database, turning lock and I/O failures into catalogue errors. */
  private guard<T>(fn: () => T): T {
    if (this.disposed)
      throw new SessionGateError('SG_ERR_STORE_CLOSED', `the sqlite store ${this.path} was disposed`);
    try {
      return fn();
    } catch (err) {
      throw storeError(this.path, err);
    }
  }

  /** `fn` in one write transaction (BEGIN IMMEDIATE): it commits whole or not at all. */
  private write<T>(fn: () => T): T {
    return this.guard(() => this.tx.immediate(fn) as T);
  }

  /**
   * Like `write`, but an error that `fn` *returns* is thrown after the commit: a refusal then
   * keeps what was done before it (closing sessions found expired), exactly as memory/store.ts does.
   */
  private writeOrRefuse<T>(fn: () => T | SessionGateError): T {
    const out = this.write(fn);
    if (out instanceof SessionGateError) throw out;
    return out;
  }

  /** Compare-and-set; throwing inside the transaction rolls back anything it did. */
  private checkVersion(current: SessionRecord, expected: number | undefined): void {
    if (expected !== undefined && expected !== current.version) {
      throw new SessionGateError(
        'SG_ERR_VERSION_CONFLICT',
        `session ${current.id} is at version ${current.version}, not ${expected}`,
      );
    }
  }

  private validateLocked(id: SessionId, now: number, touchResolutionMs: number): ValidateOutcome {
    const row = this.s.byId.get(id);
    if (!row) return MISSING;
    if (isExpired(row, now)) {
      const reason = expiryReason(row);
      this.closeNow(id, reason, now);
      return { status: 'expired', reason };
    }
    if (now - row.lastAccessAt < touchResolutionMs) return { status: 'valid', record: rowToRecord(row) };
    const touched = this.s.touch.get(now, touchedExpiry(row, now), id, row.version)!;
    return { status: 'valid', record: rowToRecord(touched) };
  }

  /**
   * Sessions to evict so `record` fits its user's limit, or the refusal of a limit (returned,
   * not thrown, so the caller can commit the expiry closes made while counting).
   */
  private prepareLimits(
    record: SessionRecord,
    limits: SessionLimits,
    now: number,
    isNew: boolean,
  ): SessionId[] | SessionGateError {
    const others = record.user === null ? [] : this.liveOfUser(record.user, now, record.id, limits);
    try {
      const evict = sessionsToEvict(record, others, limits);
      if (isNew) {
        // COUNT(*) reads a whole index, so only count what a configured limit needs.
        const ofIp = this.inProgressOfIp(record, limits, evict);
        const all = (limits.maxConcurrentSessions ?? 0) > 0 ? this.s.countAll.get()! - evict.length : 0;
        checkLimitsBeforeCreate(record, limits, all, ofIp);
      }
      return evict;
    } catch (err) {
      if (err instanceof SessionGateError) return err;
      throw err;
    }
  }

  /**
   * In-progress sessions of the new session's address left after eviction; with `evict_oldest`
   * the oldest that must go to make room are added to `evict`.
   */
  private inProgressOfIp(record: SessionRecord, limits: SessionLimits, evict: SessionId[]): number {
    if ((limits.maxInProgressPerClientIp ?? 0) <= 0 || record.clientIp === null) return 0;
    if (!evictsByClientIp(record, limits)) return this.s.countInProgressOfIp.get(record.clientIp)!;
    const oldestFirst = this.s.inProgressOfIpOldest.all(record.clientIp).map((id) => ({ id }));
    const byIp = inProgressToEvict(record, oldestFirst, limits);
    for (const id of byIp) if (!evict.includes(id)) evict.push(id);
    return oldestFirst.length - byIp.length;
  }

  /**
   * The user's other sessions, oldest first, after closing those past their deadline (as
   * memory/store.ts does). Without a per-user limit nothing can be evicted, so the live ones are not
   * read: that keeps a create for a user with many sessions cheap.
   */
  private liveOfUser(user: string, now: number, except: SessionId, limits: SessionLimits): SessionRecord[] {
    for (const due of this.s.dueOfUser.all(user, now)) {
      if (due.id !== except) this.closeNow(due.id, expiryReason(due), now);
    }
    if ((limits.maxSessionsPerUser ?? 0) <= 0) return [];
    return this.s.byUser
      .all(user)
      .filter((row) => row.id !== except)
      .map(rowToRecord);
  }

  private closeNow(id: SessionId, reason: CloseReason, now: number): CloseRecord | null {
    const row = this.s.deleteReturning.get(id);
    if (!row) return null;
    this.tags.drop(id);
    const snapshot = rowToRecord(row);
    // A session already past its deadline ended by that deadline, whatever closes it now.
    const why = isExpired(snapshot, now) ? expiryReason(snapshot) : reason;
    return this.outbox.append({ sessionId: id, reason: why, closedAt: now, snapshot });
  }

  /** Close a session already read in this transaction. */
  private closeKnown(record: SessionRecord, reason: CloseReason, now: number): CloseRecord {
    this.s.delete.run(record.id);
    this.tags.drop(record.id);
    return this.outbox.append({ sessionId: record.id, reason, closedAt: now, snapshot: record });
  }
}

function touchedExpiry(row: SessionRow, now: number): number | null {
  return computeExpiresAt({
    lastAccessAt: now,
    idleTimeout: row.idleTimeout,
    lifetimeDeadline: row.lifetimeDeadline,
    policyDeadline: row.policyDeadline,
  });
}
