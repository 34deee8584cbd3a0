import { Cluster } from 'ioredis';
import type { SessionId } from '../../core/ids.js';
import type { CloseReason, CloseRecord } from '../../core/session-types.js';
import { decodeRecord, seqOf } from './codec.js';
import type { RedisClient } from './connect.js';
import type { ScriptRunner } from './scripts.js';
import type { RedisKeys } from './keys.js';

/**
 * closeExpired over the shards: count what is due in every shard (one ZCOUNT on its `due` ZSET
 * each: all in one script on a standalone server, pipelined per shard on a cluster), share
 * `limit` among the shards that have something, one at a time in round-robin from `start`
 * (the caller moves it on each call, so a small limit does not always favour the same shards),
 * then close with one sweep script per shard, which re-checks every
 * deadline against the record. Cost grows with the due sessions and the shard count, never
 * with all sessions. Concurrent sweepers may close fewer than their share: each session is
 * closed exactly once, by whichever script reaches it first.
 */
export async function sweepShards(
  client: RedisClient,
  scripts: ScriptRunner,
  keys: RedisKeys,
  now: number,
  limit: number,
  start: number,
  order: (n: number) => string,
): Promise<CloseRecord[]> {
  let budget = Math.max(0, Math.floor(limit));
  if (budget === 0) return [];
  const shards = keys.shards;
  const due =
    client instanceof Cluster
      ? await Promise.all(
          Array.from({ length: shards }, (_, s) => client.zcount(keys.due(s), '-inf', String(now))),
        )
      : ((await scripts.runKeys('sgDueCounts', keys.allDue, String(now))) as number[]);
  const quota = new Map<number, number>();
  for (let progress = true; budget > 0 && progress;) {
    progress = false;
    for (let i = 0; i < shards && budget > 0; i++) {
      const s = (start + i) % shards;
      const q = quota.get(s) ?? 0;
      if (q < due[s]!) {
        quota.set(s, q + 1);
        budget--;
        progress = true;
      }
    }
  }
  const results = await Promise.all(
    [...quota].map(async ([s, q]) => {
      const flat = (await scripts.run(
        'sgSweep',
        keys.due(s),
        keys.base(s),
        String(now),
        q,
        order(q),
      )) as string[];
      const out: CloseRecord[] = [];
      for (let i = 0; i + 3 < flat.length; i += 4) {
        const [id, sid, reason, json] = flat.slice(i, i + 4) as [SessionId, string, CloseReason, string];
        out.push({ seq: seqOf(s, sid), sessionId: id, reason, closedAt: now, snapshot: decodeRecord(json) });
      }
      return out;
    }),
  );
  return results.flat();
}
