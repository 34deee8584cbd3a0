import { SessionGateError } from '../../core/errors.js';

/**
 * The key layout of the redis store (docs/redis.md has the full table). Everything that one
 * atomic step touches shares one hash tag, so it lives in one cluster slot:
 *
 * - shard `{s:XX}` (XX = hex shard number, from the first 8 hex digits of the session id):
 *   `P:{s:XX}:sess:<id>` (string: the record as JSON), `:due` (zset, score = expiresAt), `:ids` (zset, lexical
 *   listing), `:count` (hash: live sessions by state), `:ob` (stream of close records),
 *   `:meta` (hash: the stream's last id), `:lease:<sub>`, `:pend:<sub>`, `:fail:<sub>`.
 * - user `{u:<user>}`: `P:{u:<user>}:sessions` (zset of ids, score = createdAt).
 * - client address `{ip:<ip>}`: `P:{ip:<ip>}:inprogress` (zset of ids, score = createdAt).
 * - failure counter `{f:<key>}`: `P:{f:<key>}:fails` (hash n, r; TTL = its window).
 * - session tag `{t:<tag>}`: `P:{t:<tag>}:sessions` (set of ids); a session's own tags are
 *   `P:{s:XX}:tags:<id>` (set), in its shard's slot.
 * - `P:{meta}` (hash): the shard count every gateway on this prefix must agree on.
 * - `P:{outbox}:closes` (counter): bumped after closes, so idle claims can skip the shards.
 */
export class RedisKeys {
  private readonly width: number;
  private readonly bases: string[];
  private readonly shardKeyCache: string[][];
  /** The `due` key of every shard, in shard order. */
  readonly allDue: readonly string[];

  constructor(
    readonly prefix: string,
    readonly shards: number,
  ) {
    if (!/^[^{}\s]+$/.test(prefix)) {
      throw new SessionGateError(
        'SG_ERR_STORE_URL',
        `redis key prefix ${JSON.stringify(prefix)} must be non-empty, without braces or spaces`,
      );
    }
    if (!Number.isInteger(shards) || shards < 1 || shards > 65_536) {
      throw new SessionGateError(
        'SG_ERR_STORE_URL',
        `redis shards must be a whole number from 1 to 65536, not ${shards}`,
      );
    }
    this.width = Math.max(1, (shards - 1).toString(16).length);
    this.bases = Array.from(
      { length: shards },
      (_, s) => `${prefix}:{s:${s.toString(16).padStart(this.width, '0')}}:`,
    );
    this.shardKeyCache = this.bases.map((b) => [`${b}due`, `${b}ids`, `${b}count`, `${b}ob`, `${b}meta`]);
    this.allDue = this.shardKeyCache.map((k) => k[0]!);
  }

  /** The shard of a session id (32 hex digits): its first 8 digits modulo the shard count. */
  shardOf(id: string): number {
    return parseInt(id.slice(0, 8), 16) % this.shards;
  }

  /** `P:{s:XX}:` — the key base of a shard (scripts build keys of other sessions from it). */
  base(shard: number): string {
    return this.bases[shard]!;
  }

  /** [due, ids, count, ob, meta] of a shard: the KEYS every shard script starts with. */
  shardKeys(shard: number): string[] {
    return this.shardKeyCache[shard]!;
  }

  session(id: string, shard = this.shardOf(id)): string {
    return `${this.bases[shard]!}sess:${id}`;
  }

  stream(shard: number): string {
    return this.shardKeyCache[shard]![3]!;
  }

  count(shard: number): string {
    return this.shardKeyCache[shard]![2]!;
  }

  due(shard: number): string {
    return this.shardKeyCache[shard]![0]!;
  }

  user(user: string): string {
    return `${this.prefix}:{u:${tagSafe(user)}}:sessions`;
  }

  inProgressOfIp(ip: string): string {
    return `${this.prefix}:{ip:${tagSafe(ip)}}:inprogress`;
  }

  /** One failure counter of logon throttling (its own slot; the key is the caller's). */
  failures(key: string): string {
    return `${this.prefix}:{f:${tagSafe(key)}}:fails`;
  }

  /** The sessions carrying one tag (its own slot, like a user's index). */
  tagged(tag: string): string {
    return `${this.prefix}:{t:${tagSafe(tag)}}:sessions`;
  }

  /** The tags one session carries, in the session's shard slot. */
  tagsOf(id: string): string {
    return `${this.bases[this.shardOf(id)]!}tags:${id}`;
  }

  meta(): string {
    return `${this.prefix}:{meta}`;
  }

  /** Counter INCRed after closes: lets an idle claim skip looking at every shard. */
  outboxHint(): string {
    return `${this.prefix}:{outbox}:closes`;
  }
}

/**
 * A user name or address inside a hash tag: `{` and `}` would end the tag early (and `%`
 * is escaped so the mapping stays one-to-one).
 */
function tagSafe(value: string): string {
  return value.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The cluster slot of a key (CRC16/XMODEM of its hash tag, modulo 16384), as Redis computes it. */
export function keySlot(key: string): number {
  let tagged = key;
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) tagged = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(tagged)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16_384;
}
