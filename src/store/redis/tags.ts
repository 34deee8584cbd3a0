import { isExpired } from '../../core/deadline.js';
import type { SessionId } from '../../core/ids.js';
import type { SessionRecord } from '../../core/session-types.js';
import { checkTag, mergeTags } from '../shared/tags.js';
import type { RedisClient } from './connect.js';
import type { SessionReader } from './indexes.js';
import type { RedisKeys } from './keys.js';
import type { ScriptRunner } from './scripts.js';

/** Kept past the last moment a session could live, so a tag never goes before its session. */
const TTL_MARGIN_MS = 60_000;

/**
 * The session tags of the redis store. Each tag is a SET of session ids in its own hash tag
 * (`P:{t:<tag>}:sessions`), so a lookup is one SMEMBERS, never a scan; each session's tags are
 * a SET in its shard's slot (`P:{s:XX}:tags:<id>`), so that a close can find the tag sets to
 * leave and a rekey the tags to carry. Tag sets cannot share the session's slot, so they are
 * written like the user index (indexes.ts): entries are added while the session is live and
 * removed after it closed, and every lookup checks each entry against its session, dropping
 * the ones whose session is gone (a process that died between a close and its tidying).
 *
 * Both sets expire no sooner than the session can: a minute after its hard deadline (the
 * earlier of lifetime and policy deadlines, which touches do not move); a session without one
 * keeps them without TTL. A change of deadline (update, rekey) renews them.
 *
 * @example
 * ```ts
 * const tags = new RedisTags(client, scripts, keys, sessions);
 * await tags.add(record, ['oidc-sid:3f2a:8c1d'], now);
 * await tags.find('oidc-sid:3f2a:8c1d', now); // [record.id]
 * ```
 */
export class RedisTags {
  constructor(
    private readonly client: RedisClient,
    private readonly scripts: ScriptRunner,
    private readonly keys: RedisKeys,
    private readonly reader: SessionReader,
  ) {}

  /**
   * Attach `tags` to the (live) session `r`, checked against the limits first (a refusal
   * writes nothing), and renew the TTL of all its tags. Returns the keys written.
   */
  async add(r: SessionRecord, tags: readonly string[], now: number): Promise<string[]> {
    const had = await this.client.smembers(this.keys.tagsOf(r.id));
    const { all } = mergeTags(had, tags);
    return this.write(r, all, now);
  }

  /** Renew the TTL of the session's tags (its hard deadline changed). Returns the keys written. */
  async renew(r: SessionRecord, now: number): Promise<string[]> {
    const had = await this.client.smembers(this.keys.tagsOf(r.id));
    return had.length === 0 ? [] : this.write(r, had, now);
  }

  /**
   * Rekey, before the old id is dropped: give `to` (already written) the tags of `fromId`.
   * Returns the keys written; the old id's entries go with forget() once it is dropped.
   */
  async carry(fromId: SessionId, to: SessionRecord, now: number): Promise<string[]> {
    const had = await this.client.smembers(this.keys.tagsOf(fromId));
    return had.length === 0 ? [] : this.write(to, had, now);
  }

  /** Sessions that closed (or moved away): leave their tag sets, drop their own set. */
  async forget(ids: readonly SessionId[]): Promise<void> {
    await Promise.all(
      ids.map(async (id) => {
        const own = this.keys.tagsOf(id);
        const tags = await this.client.smembers(own);
        if (tags.length === 0) return;
        await Promise.all(tags.map((tag) => this.client.srem(this.keys.tagged(tag), id)));
        await this.client.del(own);
      }),
    );
  }

  /** Sessions live at `now` carrying `tag`; entries of sessions that are gone are removed. */
  async find(tag: string, now: number): Promise<SessionId[]> {
    const key = this.keys.tagged(checkTag(tag));
    const ids = (await this.client.smembers(key)) as SessionId[];
    if (ids.length === 0) return [];
    const found = await Promise.all(ids.map((id) => this.reader.get(id)));
    const live: SessionId[] = [];
    const gone: SessionId[] = [];
    found.forEach((r, i) => {
      if (r === null) gone.push(ids[i]!);
      else if (!isExpired(r, now)) live.push(ids[i]!); // past its deadline: the sweep tidies it
    });
    // Their own sets may have survived a crash too: drop them with the entries.
    if (gone.length > 0) await Promise.all([this.client.srem(key, ...gone), this.forget(gone)]);
    return live;
  }

  /** Tag sets first, then the session's own set: a live session is always in its tag sets. */
  private async write(r: SessionRecord, tags: readonly string[], now: number): Promise<string[]> {
    if (tags.length === 0) return [];
    const ttl = ttlOf(r, now);
    const sets = tags.map((tag) => this.keys.tagged(tag));
    await Promise.all(sets.map((key) => this.scripts.run('sgTagAdd', key, ttl, r.id)));
    const own = this.keys.tagsOf(r.id);
    await this.scripts.run('sgTagAdd', own, ttl, ...tags);
    return [...sets, own];
  }
}

/** ms the session's tag keys must last from `now` (see RedisTags), or -1: no TTL. */
function ttlOf(r: SessionRecord, now: number): number {
  let bound: number | null = r.lifetimeDeadline;
  if (r.policyDeadline !== null && (bound === null || r.policyDeadline < bound)) bound = r.policyDeadline;
  return bound === null ? -1 : Math.max(0, bound - now) + TTL_MARGIN_MS;
}
