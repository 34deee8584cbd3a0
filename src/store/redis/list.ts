import type { SessionRecord } from '../../core/session-types.js';
import type { ListPage, ListQuery } from '../contract.js';
import type { ScriptRunner } from './scripts.js';
import { decodeRecord } from './codec.js';
import type { RedisKeys } from './keys.js';
import { pageSize } from '../shared/records.js';

/** Shards asked at once: enough to fill a page of a small store in one round trip. */
const PARALLEL = 16;
/** Sessions one script call may look at before it hands back a position (bounds its run time). */
const MAX_SCAN = 1000;

/**
 * A page of all sessions matching the filter, walking the shards in order and each shard's ids
 * in lexical order (the `ids` ZSET, ZRANGEBYLEX). No KEYS, no SCAN: in a cluster every shard's
 * keys sit on the master that serves its slot. The cursor is `<shard>:<last id looked at>`;
 * a page may come back short (with a cursor) when a sparse filter hit the scan bound.
 */
export async function listShards(
  scripts: ScriptRunner,
  keys: RedisKeys,
  query: ListQuery,
): Promise<ListPage> {
  const size = pageSize(query.limit);
  let { shard, after } = parseCursor(query.cursor, keys.shards);
  const state = query.state ?? '';
  const ip = query.clientIp === undefined ? '' : JSON.stringify(query.clientIp);
  const sessions: SessionRecord[] = [];
  while (shard < keys.shards) {
    const want = size - sessions.length;
    const batch = Array.from({ length: Math.min(PARALLEL, keys.shards - shard) }, (_, i) => shard + i);
    const replies = (await Promise.all(
      batch.map((s, i) =>
        scripts.run('sgList', keys.due(s), keys.base(s), i === 0 ? after : '', want, MAX_SCAN, state, ip),
      ),
    )) as (string | number)[][];
    for (let i = 0; i < replies.length; i++) {
      const s = batch[i]!;
      const reply = replies[i]!;
      const done = reply[0] === 1;
      const lastScanned = String(reply[1]);
      for (let j = 2; j < reply.length; j++) {
        const record = decodeRecord(String(reply[j]));
        sessions.push(record);
        if (sessions.length === size) {
          const lastOfShard = done && j + 1 >= reply.length;
          const next = lastOfShard ? nextShardCursor(s, keys.shards) : `${s}:${record.id}`;
          return { sessions, nextCursor: next };
        }
      }
      if (!done) return { sessions, nextCursor: `${s}:${lastScanned}` }; // the scan bound: resume here
    }
    shard += batch.length;
    after = '';
  }
  return { sessions, nextCursor: null };
}

function nextShardCursor(shard: number, shards: number): string | null {
  return shard + 1 < shards ? `${shard + 1}:` : null;
}

function parseCursor(cursor: string | null | undefined, shards: number): { shard: number; after: string } {
  const m = cursor ? /^(\d+):([0-9a-f]*)$/.exec(cursor) : null;
  if (!m) return { shard: 0, after: '' };
  return { shard: Math.min(Number(m[1]), shards), after: m[2]! };
}
