import { computeExpiresAt, isExpired } from '../../core/deadline.js';
import { SessionGateError, sessionNotFound } from '../../core/errors.js';
import type { SessionId } from '../../core/ids.js';
import {
  copyRecord,
  type CloseReason,
  type CloseRecord,
  type SessionRecord,
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
import { connectRedis, inspectServer, unavailable, type RedisClient } from './connect.js';
import { parseRedisUrl, type RedisStoreOptions } from './url.js';
import { RedisFailureCounters } from './failures.js';
import type { RedisIndexes } from './indexes.js';
import { RedisKeys } from './keys.js';
import { InvalidationSubscriber, NearCache, invalidationChannel } from './near-cache.js';
import { listShards } from './list.js';
import { RedisOutbox } from './outbox.js';
import { ScriptRunner } from './scripts.js';
import { RedisSessions } from './sessions.js';
import { sweepShards } from './sweep.js';
import type { RedisTags } from './tags.js';
import { applyPatch } from '../shared/records.js';
import { mergeTags } from '../shared/tags.js';

export type { RedisStoreOptions } from './url.js';

/** Optimistic retries of a write that lost a race with a touch (no expected version given). */
const MAX_RACES = 50;

/**
 * Sessions in Redis or Redis Cluster, shared by any number of gateway processes and machines.
 * Every contract step is one Lua script on one shard's slot (scripts.ts); sessions spread
 * over `shards` hash tags. The per-user and per-address indexes live in their own slots and are
 * written around the session in crash-safe order (indexes.ts). docs/redis.md has the
 * key layout, the scripts and the durability of each setting.
 *
 * @example
 * ```ts
 * const store = await RedisStore.open('redis+cluster://10.0.0.1:7000,10.0.0.2:7000?durability=replicated');
 * const out = await store.validate(id, Date.now(), 1000);
 * await store.dispose();
 * ```
 */
export class RedisStore implements SessionStore {
  readonly kind = 'redis';
  readonly capabilities: StoreCapabilities;
  readonly keys: RedisKeys;
  private readonly scripts: ScriptRunner;
  private readonly s: RedisSessions;
  private readonly indexes: RedisIndexes;
  private readonly tags: RedisTags;
  private readonly outbox: RedisOutbox;
  private readonly failureCounters: RedisFailureCounters;
  private disposed = false;
  private sweepStart = 0;

  private constructor(
    /** The ioredis client (standalone or cluster), for tests and tools. */
    readonly client: RedisClient,
    readonly options: RedisStoreOptions,
    durable: boolean,
    /** The near cache (absent with nearCache=0): what it holds, whether it is live. */
    readonly near?: NearCache,
    private readonly subscriber?: InvalidationSubscriber,
  ) {
    this.keys = new RedisKeys(options.prefix, options.shards);
    this.capabilities = { durable, shared: true };
    this.scripts = new ScriptRunner(client);
    this.s = new RedisSessions(
      client,
      this.scripts,
      this.keys,
      options,
      () => this.outbox.noteCloses(),
      near,
    );
    this.indexes = this.s.indexes;
    this.tags = this.s.tags;
    this.outbox = new RedisOutbox(client, this.scripts, this.keys, (keys) => this.s.replicate(keys));
    this.failureCounters = new RedisFailureCounters(client, this.scripts, this.keys);
  }

  /** Connect, check the shard count agreed for this prefix, and find out what is durable. */
  static async open(url: string | RedisStoreOptions): Promise<RedisStore> {
    const options = typeof url === 'string' ? parseRedisUrl(url) : url;
    const keys = new RedisKeys(options.prefix, options.shards);
    const client = await connectRedis(options);
    let subscriber: InvalidationSubscriber | undefined;
    try {
      const durable = await inspectServer(client, options, keys);
      if (!options.nearCache) return new RedisStore(client, options, durable);
      const near = new NearCache(options.nearCacheMs);
      const channel = invalidationChannel(options.prefix);
      subscriber = new InvalidationSubscriber(client, channel, near);
      if (!(await subscriber.start(options.connectTimeoutMs))) {
        throw new Error(
          `could not subscribe to channel ${channel} for the near cache (nearCache=0 turns it off)`,
        );
      }
      return new RedisStore(client, options, durable, near, subscriber);
    } catch (err) {
      await subscriber?.stop();
      client.disconnect();
      throw unavailable(options, err);
    }
  }

  /**
   * Limits first (they read other slots), then the index entries, the evictions, and last the
   * session itself: a crash at any point leaves at most index entries that point nowhere.
   */
  async create(session: NewSession, limits: SessionLimits, now: number): Promise<WriteResult> {
    return this.guard(async () => {
      const record = copyRecord({ ...session, version: 1, expiresAt: computeExpiresAt(session) });
      const evict = await this.indexes.prepareLimits(record, limits, now, true);
      const written = await this.indexes.add(record);
      const closed = await Promise.all(evict.map((id) => this.s.close(id, 'evicted', now)));
      if (!(await this.s.insert(record))) {
        await this.indexes.remove(record);
        throw collision(record.id);
      }
      await this.s.replicate([record.id, ...evict].map((id) => this.keys.session(id)).concat(written));
      return { record, evicted: evict.filter((_, i) => closed[i]) };
    });
  }

  get(id: SessionId): Promise<SessionRecord | null> {
    return this.guard(() => this.s.get(id));
  }

  /** The request path: one script call, no extra awaits between it and the caller. */
  validate(
    id: SessionId,
    now: number,
    touchResolutionMs: number,
    options?: { lazyTouch?: boolean },
  ): Promise<ValidateOutcome> {
    // The near cache's answers skip the error mapping: they cannot fail.
    const held = this.validateNow(id, now, touchResolutionMs, options);
    if (held) return Promise.resolve(held);
    return this.guard(() => this.s.ask(id, now, touchResolutionMs));
  }

  /** The near cache's answer (see validate), if it has one; undefined: ask validate(). */
  validateNow(
    id: SessionId,
    now: number,
    touchResolutionMs: number,
    options?: { lazyTouch?: boolean },
  ): ValidateOutcome | undefined {
    if (this.disposed) return undefined;
    return this.s.heldAnswer(id, now, touchResolutionMs, options?.lazyTouch === true);
  }

  /**
   * Read, apply the patch here (shared/records.ts, the one definition of a patch), then write the whole
   * record back with a compare-and-set on the version read: one atomic script. Without an
   * expected version, losing the race to a concurrent touch just means reading again.
   */
  async update(id: SessionId, patch: SessionPatch, o: UpdateOptions): Promise<WriteResult> {
    return this.guard(async () => {
      for (let race = 0; ; race++) {
        const current = await this.s.get(id);
        if (current && isExpired(current, o.now)) await this.s.probe(id, o.now); // closes it
        if (!current || isExpired(current, o.now)) throw sessionNotFound(id);
        if (o.expectedVersion !== undefined && o.expectedVersion !== current.version) {
          throw conflict(id, current.version, o.expectedVersion);
        }
        const next = applyPatch(current, patch, o.now);
        let evict: SessionId[] = [];
        if (patch.user !== undefined && patch.user !== current.user && o.limits) {
          evict = await this.indexes.prepareLimits(next, o.limits, o.now, false);
        }
        const added = await this.indexes.add(next, current);
        const out = await this.s.put(next, current.version, o.now);
        if (out === 'written') {
          const removed = await this.indexes.remove(current, next);
          const closed = await Promise.all(evict.map((e) => this.s.close(e, 'evicted', o.now)));
          const renewed = hardDeadlineMoved(current, next) ? await this.tags.renew(next, o.now) : [];
          const keys = [id, ...evict].map((e) => this.keys.session(e)).concat(added, removed, renewed);
          await this.s.replicate(keys);
          return { record: next, evicted: evict.filter((_, i) => closed[i]) };
        }
        const lostRace = typeof out === 'object';
        if (lostRace && o.expectedVersion === undefined && race < MAX_RACES) continue;
        await this.indexes.remove(next, current);
        if (lostRace) throw conflict(id, out.conflict, o.expectedVersion ?? current.version);
        throw sessionNotFound(id);
      }
    });
  }

  /**
   * Two slots: the copy is written under the new id first, then the old id is deleted (without
   * a close record) only if it is still the version copied. A crash in between leaves both (the
   * old one ends at its own deadline): the session is never lost.
   */
  async rekey(oldId: SessionId, newId: SessionId, patch: SessionPatch, o: UpdateOptions): Promise<boolean> {
    return this.guard(async () => {
      for (let race = 0; ; race++) {
        const current = await this.s.get(oldId);
        if (!current || isExpired(current, o.now)) return false;
        if (o.expectedVersion !== undefined && o.expectedVersion !== current.version) {
          throw conflict(oldId, current.version, o.expectedVersion);
        }
        const moved = copyRecord({ ...applyPatch(current, patch, o.now), id: newId });
        const added = await this.indexes.add(moved);
        if (!(await this.s.insert(moved))) throw collision(newId);
        const carried = await this.tags.carry(oldId, moved, o.now);
        const dropped = await this.s.drop(oldId, current.version);
        if (dropped === 'dropped') {
          const [removed] = await Promise.all([this.indexes.remove(current), this.tags.forget([oldId])]);
          const keys = [newId, oldId].map((id) => this.keys.session(id)).concat(added, carried, removed);
          await this.s.replicate(keys);
          return true;
        }
        // The old session changed or went away since it was read: take the copy back.
        await this.s.drop(newId, moved.version);
        await Promise.all([this.indexes.remove(moved), this.tags.forget([newId])]);
        if (dropped === 'missing') return false;
        if (race >= MAX_RACES) throw conflict(oldId, current.version, current.version);
      }
    });
  }

  async close(id: SessionId, reason: CloseReason, now: number): Promise<CloseRecord | null> {
    return this.guard(async () => {
      const closed = await this.s.close(id, reason, now);
      if (closed) await this.s.replicate([this.keys.session(id)]);
      return closed;
    });
  }

  /** Close due sessions through the per-shard deadline index (sweep.ts). */
  async closeExpired(now: number, limit: number): Promise<CloseRecord[]> {
    return this.guard(async () => {
      const start = this.sweepStart;
      this.sweepStart = (start + 1) % this.keys.shards;
      const closed = await sweepShards(this.client, this.scripts, this.keys, now, limit, start, (n) =>
        this.s.order(now, n),
      );
      if (closed.length > 0) {
        this.s.changed(closed.map((c) => c.sessionId));
        await Promise.all([this.indexes.forget(closed.map((c) => c.snapshot)), this.outbox.noteCloses()]);
        await this.s.replicate(closed.map((c) => this.keys.session(c.sessionId)));
      }
      return closed;
    });
  }

  /**
   * The tag sets are other slots than the session: written while it is live, then checked
   * again, so a close that tidied up before this write does not leave the tags behind.
   */
  async tag(id: SessionId, tags: string[], now: number): Promise<boolean> {
    mergeTags([], tags); // a malformed call is refused whether or not the session is live
    return this.guard(async () => {
      const current = await this.s.get(id);
      if (!current || isExpired(current, now)) return false;
      const written = await this.tags.add(current, tags, now);
      if ((await this.s.get(id)) === null) {
        await this.tags.forget([id]);
        return false;
      }
      await this.s.replicate(written);
      return true;
    });
  }

  findByTag(tag: string, now: number): Promise<SessionId[]> {
    return this.guard(() => this.tags.find(tag, now));
  }

  async listByUser(user: string): Promise<SessionRecord[]> {
    return this.guard(() => this.indexes.listUser(user));
  }

  async list(query: ListQuery): Promise<ListPage> {
    return this.guard(async () => {
      if (query.user === undefined) return listShards(this.scripts, this.keys, query);
      return this.indexes.pageOfUser(query.user, query);
    });
  }

  async ensureSubscriber(name: string): Promise<void> {
    return this.guard(() => this.outbox.ensure(name));
  }
  async claim(subscriber: string, consumer: string, o: ClaimOptions): Promise<ClaimedClose[]> {
    return this.guard(() => this.outbox.claim(subscriber, consumer, o));
  }
  async ack(subscriber: string, seq: string): Promise<void> {
    return this.guard(() => this.outbox.ack(subscriber, seq));
  }
  async retry(subscriber: string, seq: string, retryAt: number): Promise<void> {
    return this.guard(() => this.outbox.retry(subscriber, seq, retryAt));
  }
  async fail(subscriber: string, seq: string, error: string, now: number): Promise<void> {
    return this.guard(() => this.outbox.fail(subscriber, seq, error, now));
  }

  async renew(subscriber: string, consumer: string, seqs: string[], leaseUntil: number): Promise<string[]> {
    return this.guard(() => this.outbox.renew(subscriber, consumer, seqs, leaseUntil));
  }
  async release(subscriber: string, consumer: string, seqs: string[], o: ReleaseOptions): Promise<void> {
    return this.guard(() => this.outbox.release(subscriber, consumer, seqs, o));
  }

  countFailure(key: string, windowMs: number, now: number): Promise<FailureCount> {
    return this.guard(() => this.failureCounters.count(key, windowMs, now));
  }
  failures(key: string, now: number): Promise<FailureCount> {
    return this.guard(() => this.failureCounters.get(key, now));
  }
  uncountFailure(key: string, now: number): Promise<void> {
    return this.guard(() => this.failureCounters.uncount(key, now));
  }
  clearFailures(key: string): Promise<void> {
    return this.guard(() => this.failureCounters.clear(key));
  }

  async stats(): Promise<StoreStats> {
    return this.guard(async () => {
      const [{ sessions, byState }, { pending, failed, oldest }] = await Promise.all([
        this.indexes.countsByState(),
        this.outbox.counts(),
      ]);
      return { sessions, byState, outboxPending: pending, outboxFailed: failed, outboxOldest: oldest };
    });
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.s.drain(); // touches written behind their answers go out before QUIT
    await this.subscriber?.stop();
    await this.client.quit().catch(() => this.client.disconnect());
  }

  /** Every failure of the server or the connection becomes SG_ERR_STORE_UNAVAILABLE. */
  private guard<T>(fn: () => Promise<T>): Promise<T> {
    if (this.disposed) {
      return Promise.reject(new SessionGateError('SG_ERR_STORE_CLOSED', 'the redis store was disposed'));
    }
    return fn().catch(this.failure);
  }

  private readonly failure = (err: unknown): never => {
    if (err instanceof CollisionError) throw err;
    throw unavailable(this.options, err);
  };
}

/** A 128-bit random id already taken: never expected, and not the server's fault. */
class CollisionError extends SessionGateError {}

function collision(id: SessionId): CollisionError {
  return new CollisionError('SG_ERR_INTERNAL', `session id collision on ${id}`);
}

/** The deadlines touches do not move, which the tag keys' TTL follows (tags.ts). */
function hardDeadlineMoved(a: SessionRecord, b: SessionRecord): boolean {
  return a.lifetimeDeadline !== b.lifetimeDeadline || a.policyDeadline !== b.policyDeadline;
}

function conflict(id: SessionId, actual: number, expected: number): SessionGateError {
  return new SessionGateError(
    'SG_ERR_VERSION_CONFLICT',
    `session ${id} is at version ${actual}, not ${expected}`,
  );
}
