import type { SessionId } from '../../core/ids.js';
import { computeExpiresAt, expiryReason, isExpired } from '../../core/deadline.js';
import { SessionGateError, sessionNotFound } from '../../core/errors.js';
import {
  copyRecord,
  type CloseReason,
  type CloseRecord,
  type SessionRecord,
  type SessionState,
} from '../../core/session-types.js';
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
import {
  applyPatch,
  checkLimitsBeforeCreate,
  evictsByClientIp,
  inProgressToEvict,
  pageOf,
  sessionsToEvict,
} from '../shared/records.js';
import { MemoryFailureCounters } from './failures.js';
import { MinHeap } from './min-heap.js';
import { MemoryOutbox } from './outbox.js';
import { mergeTags } from '../shared/tags.js';
import { MemoryTags } from './tags.js';

const BUCKET_MS = 1000;

/**
 * Sessions in this process's memory: for tests, development and single-process gateways.
 * Records are immutable (every write stores a new frozen object), so reads hand them out
 * without copying. Deadlines sit in one-second buckets ordered by a heap, so a sweep costs
 * the number of due sessions, not the number of sessions.
 *
 * @example
 * ```ts
 * const store = new MemoryStore();
 * ```
 */
export class MemoryStore implements SessionStore {
  readonly kind = 'memory';
  readonly capabilities: StoreCapabilities = { durable: false, shared: false };

  private readonly sessions = new Map<SessionId, SessionRecord>();
  private readonly byUser = new Map<string, Set<SessionId>>();
  private readonly inProgressByIp = new Map<string, Set<SessionId>>();
  private readonly buckets = new Map<number, Set<SessionId>>();
  private readonly bucketHeap = new MinHeap();
  private readonly outbox = new MemoryOutbox();
  private readonly failureCounters = new MemoryFailureCounters();
  private readonly tags = new MemoryTags();
  private disposed = false;

  async create(session: NewSession, limits: SessionLimits, now: number): Promise<WriteResult> {
    this.open();
    const record = freeze(copyRecord({ ...session, version: 1, expiresAt: computeExpiresAt(session) }));
    if (this.sessions.has(record.id)) throw new SessionGateError('SG_ERR_INTERNAL', 'session id collision');
    const evict = this.prepareLimits(record, limits, now, true);
    for (const id of evict) this.closeNow(id, 'evicted', now);
    this.index(record);
    return { record, evicted: evict };
  }

  async get(id: SessionId): Promise<SessionRecord | null> {
    this.open();
    return this.sessions.get(id) ?? null;
  }

  async validate(id: SessionId, now: number, touchResolutionMs: number): Promise<ValidateOutcome> {
    return this.validateNow(id, now, touchResolutionMs);
  }

  validateNow(id: SessionId, now: number, touchResolutionMs: number): ValidateOutcome {
    this.open();
    const current = this.sessions.get(id);
    if (!current) return { status: 'missing' };
    if (isExpired(current, now)) {
      const reason = expiryReason(current);
      this.closeNow(id, reason, now);
      return { status: 'expired', reason };
    }
    if (now - current.lastAccessAt < touchResolutionMs) return { status: 'valid', record: current };
    const touched = copyRecord(current);
    touched.lastAccessAt = now;
    touched.version = current.version + 1;
    touched.expiresAt = computeExpiresAt(touched);
    const record = Object.freeze(touched);
    this.replace(current, record);
    return { status: 'valid', record };
  }

  async update(id: SessionId, patch: SessionPatch, o: UpdateOptions): Promise<WriteResult> {
    this.open();
    const current = this.live(id, o.now);
    if (o.expectedVersion !== undefined && o.expectedVersion !== current.version) {
      throw new SessionGateError(
        'SG_ERR_VERSION_CONFLICT',
        `session ${id} is at version ${current.version}, not ${o.expectedVersion}`,
      );
    }
    const record = freeze(applyPatch(current, patch, o.now));
    let evict: SessionId[] = [];
    if (patch.user !== undefined && patch.user !== current.user && o.limits) {
      evict = this.prepareLimits(record, o.limits, o.now, false);
    }
    for (const e of evict) this.closeNow(e, 'evicted', o.now);
    this.replace(current, record);
    return { record, evicted: evict };
  }

  async rekey(oldId: SessionId, newId: SessionId, patch: SessionPatch, o: UpdateOptions): Promise<boolean> {
    this.open();
    const current = this.sessions.get(oldId);
    if (!current || isExpired(current, o.now)) return false;
    if (o.expectedVersion !== undefined && o.expectedVersion !== current.version) {
      throw new SessionGateError(
        'SG_ERR_VERSION_CONFLICT',
        `session ${oldId} is at version ${current.version}, not ${o.expectedVersion}`,
      );
    }
    this.unindex(current);
    const moved = applyPatch(current, patch, o.now);
    moved.id = newId;
    this.index(freeze(moved));
    this.tags.move(oldId, newId);
    return true;
  }

  async close(id: SessionId, reason: CloseReason, now: number): Promise<CloseRecord | null> {
    this.open();
    return this.closeNow(id, reason, now);
  }

  async closeExpired(now: number, limit: number): Promise<CloseRecord[]> {
    this.open();
    const closed: CloseRecord[] = [];
    const nowBucket = Math.floor(now / BUCKET_MS);
    while (closed.length < limit) {
      const bucket = this.bucketHeap.peek();
      if (bucket === undefined || bucket > nowBucket) break;
      const ids = this.buckets.get(bucket);
      let notYetDue = 0;
      if (ids) {
        for (const id of ids) {
          if (closed.length >= limit) break;
          const record = this.sessions.get(id)!;
          if (!isExpired(record, now)) {
            notYetDue++;
            continue;
          }
          closed.push(this.closeNow(id, expiryReason(record), now)!);
        }
      }
      if (closed.length >= limit && ids && ids.size > notYetDue) break;
      if (notYetDue > 0) break; // the rest of this bucket is due later within the second
      this.buckets.delete(bucket);
      this.bucketHeap.pop();
    }
    return closed;
  }

  async tag(id: SessionId, tags: string[], now: number): Promise<boolean> {
    this.open();
    mergeTags([], tags); // a malformed call is refused whether or not the session is live
    const current = this.sessions.get(id);
    if (!current || isExpired(current, now)) return false;
    this.tags.add(id, tags);
    return true;
  }

  async findByTag(tag: string, now: number): Promise<SessionId[]> {
    this.open();
    // Past its deadline but not swept yet: not live, so not returned (the sweep closes it).
    return this.tags.find(tag).filter((id) => !isExpired(this.sessions.get(id)!, now));
  }

  async listByUser(user: string): Promise<SessionRecord[]> {
    this.open();
    const ids = this.byUser.get(user);
    if (!ids) return [];
    return [...ids].map((id) => this.sessions.get(id)!).sort(byCreation);
  }

  async list(query: ListQuery): Promise<ListPage> {
    this.open();
    const source =
      query.user !== undefined ? (this.byUser.get(query.user) ?? new Set<SessionId>()) : this.sessions.keys();
    const matches: SessionRecord[] = [];
    for (const id of source) {
      const s = this.sessions.get(id)!;
      if (query.state !== undefined && s.state !== query.state) continue;
      if (query.clientIp !== undefined && s.clientIp !== query.clientIp) continue;
      if (query.cursor && s.id <= query.cursor) continue;
      matches.push(s);
    }
    return pageOf(matches, query.limit);
  }

  async ensureSubscriber(name: string): Promise<void> {
    this.open();
    this.outbox.ensureGroup(name);
  }
  async claim(subscriber: string, consumer: string, o: ClaimOptions): Promise<ClaimedClose[]> {
    this.open();
    return this.outbox.claim(subscriber, consumer, o);
  }
  async ack(subscriber: string, seq: string): Promise<void> {
    this.open();
    this.outbox.ack(subscriber, seq);
  }
  async retry(subscriber: string, seq: string, retryAt: number): Promise<void> {
    this.open();
    this.outbox.retry(subscriber, seq, retryAt);
  }
  async fail(subscriber: string, seq: string, error: string, now: number): Promise<void> {
    this.open();
    this.outbox.fail(subscriber, seq, error, now);
  }

  async renew(subscriber: string, consumer: string, seqs: string[], leaseUntil: number): Promise<string[]> {
    this.open();
    return this.outbox.renew(subscriber, consumer, seqs, leaseUntil);
  }
  async release(subscriber: string, consumer: string, seqs: string[], o: ReleaseOptions): Promise<void> {
    this.open();
    this.outbox.release(subscriber, consumer, seqs, o);
  }

  async countFailure(key: string, windowMs: number, now: number): Promise<FailureCount> {
    this.open();
    return this.failureCounters.count(key, windowMs, now);
  }
  async failures(key: string, now: number): Promise<FailureCount> {
    this.open();
    return this.failureCounters.get(key, now);
  }
  async uncountFailure(key: string, now: number): Promise<void> {
    this.open();
    this.failureCounters.uncount(key, now);
  }
  async clearFailures(key: string): Promise<void> {
    this.open();
    this.failureCounters.clear(key);
  }

  async stats(): Promise<StoreStats> {
    this.open();
    const byState: Record<SessionState, number> = { inprogress: 0, allow: 0, deny: 0, redirect: 0 };
    for (const s of this.sessions.values()) byState[s.state]++;
    return {
      sessions: this.sessions.size,
      byState,
      outboxPending: this.outbox.pendingCounts(),
      outboxFailed: this.outbox.failedCounts(),
      outboxOldest: this.outbox.oldestClosedAt(),
    };
  }

  async dispose(): Promise<void> {
    this.disposed = true;
  }

  private open(): void {
    if (this.disposed) throw new SessionGateError('SG_ERR_STORE_CLOSED', 'the memory store was disposed');
  }

  /** The session, or SG_ERR_SESSION_NOT_FOUND (closing it first if its deadline passed). */
  private live(id: SessionId, now: number): SessionRecord {
    const current = this.sessions.get(id);
    if (current && isExpired(current, now)) this.closeNow(id, expiryReason(current), now);
    else if (current) return current;
    throw sessionNotFound(id);
  }

  private prepareLimits(
    record: SessionRecord,
    limits: SessionLimits,
    now: number,
    isNew: boolean,
  ): SessionId[] {
    const others = record.user === null ? [] : this.liveOfUser(record.user, now, record.id);
    const evict = sessionsToEvict(record, others, limits);
    if (isNew) {
      const ofIp = record.clientIp === null ? undefined : this.inProgressByIp.get(record.clientIp);
      let ipCount = ofIp?.size ?? 0;
      if (ofIp && evictsByClientIp(record, limits)) {
        const oldestFirst = [...ofIp].map((id) => this.sessions.get(id)!).sort(byCreation);
        const byIp = inProgressToEvict(record, oldestFirst, limits);
        for (const id of byIp) if (!evict.includes(id)) evict.push(id);
        ipCount -= byIp.length;
      }
      checkLimitsBeforeCreate(record, limits, this.sessions.size - evict.length, ipCount);
    }
    return evict;
  }

  private liveOfUser(user: string, now: number, except: SessionId): SessionRecord[] {
    const out: SessionRecord[] = [];
    for (const id of this.byUser.get(user) ?? []) {
      const s = this.sessions.get(id)!;
      if (id === except) continue;
      if (isExpired(s, now)) this.closeNow(id, expiryReason(s), now);
      else out.push(s);
    }
    return out.sort(byCreation);
  }

  private closeNow(id: SessionId, reason: CloseReason, now: number): CloseRecord | null {
    const record = this.sessions.get(id);
    if (!record) return null;
    this.unindex(record);
    this.tags.drop(id);
    // A session already past its deadline ended by that deadline, whatever closes it now.
    const why = isExpired(record, now) ? expiryReason(record) : reason;
    return this.outbox.append({ sessionId: id, reason: why, closedAt: now, snapshot: record });
  }

  private replace(previous: SessionRecord, next: SessionRecord): void {
    this.sessions.set(next.id, next);
    if (previous.user !== next.user) {
      if (previous.user !== null) removeFrom(this.byUser, previous.user, previous.id);
      if (next.user !== null) addTo(this.byUser, next.user, next.id);
    }
    const wasIp = inProgressIp(previous);
    const isIp = inProgressIp(next);
    if (wasIp !== isIp) {
      if (wasIp !== null) removeFrom(this.inProgressByIp, wasIp, previous.id);
      if (isIp !== null) addTo(this.inProgressByIp, isIp, next.id);
    }
    const oldBucket = bucketOf(previous.expiresAt);
    const newBucket = bucketOf(next.expiresAt);
    if (oldBucket !== newBucket) {
      if (oldBucket !== null) this.buckets.get(oldBucket)?.delete(previous.id);
      if (newBucket !== null) this.addToBucket(newBucket, next.id);
    }
  }

  private index(record: SessionRecord): void {
    this.sessions.set(record.id, record);
    if (record.user !== null) addTo(this.byUser, record.user, record.id);
    const ip = inProgressIp(record);
    if (ip !== null) addTo(this.inProgressByIp, ip, record.id);
    const bucket = bucketOf(record.expiresAt);
    if (bucket !== null) this.addToBucket(bucket, record.id);
  }

  private unindex(record: SessionRecord): void {
    this.sessions.delete(record.id);
    if (record.user !== null) removeFrom(this.byUser, record.user, record.id);
    const ip = inProgressIp(record);
    if (ip !== null) removeFrom(this.inProgressByIp, ip, record.id);
    const bucket = bucketOf(record.expiresAt);
    if (bucket !== null) this.buckets.get(bucket)?.delete(record.id);
  }

  private addToBucket(bucket: number, id: SessionId): void {
    let set = this.buckets.get(bucket);
    if (!set) {
      set = new Set();
      this.buckets.set(bucket, set);
      this.bucketHeap.push(bucket);
    }
    set.add(id);
  }
}

// Most sessions have no secure variables and no plugin cookies: share one empty object
// instead of keeping three per session (about 150 bytes each session at a million sessions).
const EMPTY = Object.freeze({}) as Record<string, never>;

function frozen<T extends object>(value: T): T {
  for (const _ in value) return Object.freeze(value);
  return EMPTY as T;
}

function freeze(record: SessionRecord): SessionRecord {
  record.variables = frozen(record.variables);
  record.secure = frozen(record.secure);
  record.cookies = frozen(record.cookies);
  record.sessionCookie = frozen(record.sessionCookie);
  return Object.freeze(record);
}

function byCreation(a: SessionRecord, b: SessionRecord): number {
  return a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1);
}

function bucketOf(expiresAt: number | null): number | null {
  return expiresAt === null ? null : Math.floor(expiresAt / BUCKET_MS);
}

function inProgressIp(s: SessionRecord): string | null {
  return s.state === 'inprogress' ? s.clientIp : null;
}

function addTo(index: Map<string, Set<SessionId>>, key: string, id: SessionId): void {
  let set = index.get(key);
  if (!set) index.set(key, (set = new Set()));
  set.add(id);
}

function removeFrom(index: Map<string, Set<SessionId>>, key: string, id: SessionId): void {
  const set = index.get(key);
  if (set?.delete(id) && set.size === 0) index.delete(key);
}
