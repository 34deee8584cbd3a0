import type { SessionId } from '../../core/ids.js';
import type { SessionRecord, SessionState } from '../../core/session-types.js';
import type { ListPage, ListQuery, SessionLimits } from '../contract.js';
import type { RedisClient } from './connect.js';
import type { RedisKeys } from './keys.js';
import {
  checkLimitsBeforeCreate,
  evictsByClientIp,
  inProgressToEvict,
  pageOf,
  sessionsToEvict,
} from '../shared/records.js';

/** How long an index entry without its session may be a create still under way (ms). */
const IN_FLIGHT_MS = 60_000;

/** How the indexes read sessions back (the store's own reads). */
export interface SessionReader {
  /** The record as stored, or null. */
  get(id: SessionId): Promise<SessionRecord | null>;
  /** The record if live at `now`; a session found past its deadline is closed first (null). */
  probe(id: SessionId, now: number): Promise<SessionRecord | null>;
}

/** What the indexes need to know of a session to find its entries. */
export type Indexed = Pick<SessionRecord, 'id' | 'user' | 'clientIp' | 'state'>;

/**
 * The indexes that cannot share the session's slot: per user (`{u:<user>}`) and in-progress
 * sessions per client address (`{ip:<ip>}`). They are written in a separate step from the
 * session, in the order that keeps this invariant through a crash: every live session is in
 * the index it belongs to (entries are added BEFORE the session is written, removed AFTER it
 * closed or moved). The reverse may not hold — an entry may point at a session that closed or
 * moved — so every read checks each entry against its session and drops the stale ones.
 */
export class RedisIndexes {
  constructor(
    private readonly client: RedisClient,
    private readonly keys: RedisKeys,
    private readonly reader: SessionReader,
    /** The session tags (tags.ts), left after a close like the entries here. */
    private readonly tags?: { forget(ids: readonly SessionId[]): Promise<void> },
  ) {}

  /** Index keys `r` belongs in. */
  entries(r: Indexed & { createdAt: number }): [key: string, score: number][] {
    const out: [string, number][] = [];
    if (r.user !== null) out.push([this.keys.user(r.user), r.createdAt]);
    if (r.state === 'inprogress' && r.clientIp !== null)
      out.push([this.keys.inProgressOfIp(r.clientIp), r.createdAt]);
    return out;
  }

  /** Add `r` to its indexes (before writing it), skipping what `before` (same id) had. Returns the keys written. */
  async add(r: SessionRecord, before?: SessionRecord): Promise<string[]> {
    const had = new Set(before && before.id === r.id ? this.entries(before).map(([k]) => k) : []);
    const todo = this.entries(r).filter(([k]) => !had.has(k));
    await Promise.all(todo.map(([key, score]) => this.client.zadd(key, score, r.id)));
    return todo.map(([k]) => k);
  }

  /** Remove the entries of `r` that `keep` (the same session after a change) does not need. */
  async remove(r: Indexed & { createdAt: number }, keep?: SessionRecord): Promise<string[]> {
    const still = new Set(keep && keep.id === r.id ? this.entries(keep).map(([k]) => k) : []);
    const todo = this.entries(r).filter(([k]) => !still.has(k));
    await Promise.all(todo.map(([key]) => this.client.zrem(key, r.id)));
    return todo.map(([k]) => k);
  }

  /** After closes: drop the closed sessions' entries (whatever their state was) and tags. */
  async forget(closed: Pick<SessionRecord, 'id' | 'user' | 'clientIp'>[]): Promise<void> {
    const calls: Promise<unknown>[] = [];
    if (this.tags && closed.length > 0) calls.push(this.tags.forget(closed.map((c) => c.id)));
    for (const c of closed) {
      if (c.user !== null) calls.push(this.client.zrem(this.keys.user(c.user), c.id));
      if (c.clientIp !== null) calls.push(this.client.zrem(this.keys.inProgressOfIp(c.clientIp), c.id));
    }
    await Promise.all(calls);
  }

  /** The user's sessions as stored, oldest first; entries of gone or re-assigned sessions are dropped. */
  async listUser(user: string): Promise<SessionRecord[]> {
    const key = this.keys.user(user);
    const ids = (await this.client.zrange(key, 0, -1)) as SessionId[];
    const found = await Promise.all(ids.map((id) => this.reader.get(id)));
    return this.keepMatching(key, ids, found, (r) => r.user === user);
  }

  /** The user's live sessions other than `except`, oldest first; expired ones are closed. */
  async liveOfUser(user: string, now: number, except: SessionId): Promise<SessionRecord[]> {
    const key = this.keys.user(user);
    const ids = ((await this.client.zrange(key, 0, -1)) as SessionId[]).filter((id) => id !== except);
    const found = await Promise.all(ids.map((id) => this.reader.probe(id, now)));
    return this.keepMatching(key, ids, found, (r) => r.user === user);
  }

  /**
   * In-progress sessions of a client address, oldest first (as memory/store.ts counts them: expired
   * but unswept too). An entry whose session is missing or no longer matches is dropped only
   * once it is older than IN_FLIGHT_MS: a create adds its entry BEFORE it writes the session, so
   * a young entry without its session is most likely a create of this address still under way
   * (dropping it would leave that session out of the index, and out of the limit, for good).
   */
  async inProgressOfIp(ip: string, now: number): Promise<SessionRecord[]> {
    const key = this.keys.inProgressOfIp(ip);
    const flat = (await this.client.zrange(key, 0, -1, 'WITHSCORES')) as string[];
    const ids: SessionId[] = [];
    const young = new Set<SessionId>();
    for (let i = 0; i < flat.length; i += 2) {
      ids.push(flat[i]! as SessionId);
      if (Number(flat[i + 1]) > now - IN_FLIGHT_MS) young.add(flat[i]! as SessionId);
    }
    const found = await Promise.all(ids.map((id) => this.reader.get(id)));
    const belongs = (r: SessionRecord) => r.state === 'inprogress' && r.clientIp === ip;
    const live = await this.keepMatching(
      key,
      ids.filter((id, i) => !young.has(id) || (found[i] && belongs(found[i]))),
      found.filter((r, i) => !young.has(ids[i]!) || (r && belongs(r))),
      belongs,
    );
    return live;
  }

  /** A page of one user's sessions (from the user's index); the cursor is `u:<last id>`. */
  async pageOfUser(user: string, query: ListQuery): Promise<ListPage> {
    const after = query.cursor?.startsWith('u:') ? query.cursor.slice(2) : '';
    const matches = (await this.listUser(user)).filter(
      (s) =>
        (query.state === undefined || s.state === query.state) &&
        (query.clientIp === undefined || s.clientIp === query.clientIp) &&
        s.id > after,
    );
    const page = pageOf(matches, query.limit);
    return { sessions: page.sessions, nextCursor: page.nextCursor === null ? null : `u:${page.nextCursor}` };
  }

  /** Live sessions by state: the per-shard counts (kept by the scripts) summed, one read per shard. */
  async countsByState(): Promise<{ sessions: number; byState: Record<SessionState, number> }> {
    const byState: Record<SessionState, number> = { inprogress: 0, allow: 0, deny: 0, redirect: 0 };
    const perShard = await Promise.all(
      Array.from({ length: this.keys.shards }, (_, s) => this.client.hgetall(this.keys.count(s))),
    );
    let sessions = 0;
    for (const counts of perShard) {
      for (const [state, n] of Object.entries(counts)) {
        if (state in byState) byState[state as SessionState] += Number(n);
        sessions += Number(n);
      }
    }
    return { sessions, byState };
  }

  /** Live sessions in the store: the per-shard counts summed (one pipelined read per shard). */
  async liveSessions(): Promise<number> {
    const counts = await Promise.all(
      Array.from({ length: this.keys.shards }, (_, s) => this.client.hvals(this.keys.count(s))),
    );
    return counts.flat().reduce((sum, n) => sum + Number(n), 0);
  }

  /**
   * The sessions to evict so `record` fits its user's limit (oldest first), after checking the
   * store-wide and per-address limits of a create; throws the refusal of a limit. Only what a
   * configured limit needs is read.
   */
  async prepareLimits(
    record: SessionRecord,
    limits: SessionLimits,
    now: number,
    isNew: boolean,
  ): Promise<SessionId[]> {
    const perUser = (limits.maxSessionsPerUser ?? 0) > 0 && record.user !== null;
    const others = perUser ? await this.liveOfUser(record.user!, now, record.id) : [];
    const evict = sessionsToEvict(record, others, limits);
    if (isNew) {
      const ipLimited =
        (limits.maxInProgressPerClientIp ?? 0) > 0 &&
        record.state === 'inprogress' &&
        record.clientIp !== null;
      const ofIp = ipLimited ? await this.inProgressOfIp(record.clientIp!, now) : [];
      // Not atomic with the insert (the address's index is another slot): creates racing from
      // one address may each evict the same oldest, leaving one over per racing create; the next
      // create evicts down to the limit again, so the bound is the limit plus the creates in flight.
      const byIp = evictsByClientIp(record, limits) ? inProgressToEvict(record, ofIp, limits) : [];
      for (const id of byIp) if (!evict.includes(id)) evict.push(id);
      const all = (limits.maxConcurrentSessions ?? 0) > 0 ? (await this.liveSessions()) - evict.length : 0;
      checkLimitsBeforeCreate(record, limits, all, ofIp.length - byIp.length);
    }
    return evict;
  }

  /** Records that still belong under `key`, oldest first; the other entries are removed. */
  private async keepMatching(
    key: string,
    ids: SessionId[],
    found: (SessionRecord | null)[],
    belongs: (r: SessionRecord) => boolean,
  ): Promise<SessionRecord[]> {
    const keep: SessionRecord[] = [];
    const stale: SessionId[] = [];
    found.forEach((r, i) => (r && belongs(r) ? keep.push(r) : stale.push(ids[i]!)));
    if (stale.length > 0) await this.client.zrem(key, ...stale);
    return keep.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  }
}
