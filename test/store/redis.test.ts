import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runStoreConformance } from '../../src/store/conformance.js';
import { RedisStore } from '../../src/store/redis.js';
import {
  redisRequired,
  redisSkip,
  startCluster,
  startRedis,
  type RedisCluster,
  type RedisServer,
} from '../support/redis-servers.js';

const skip = redisSkip();

if (skip && redisRequired()) {
  it('redis-server is installed (required under CI=true)', () => assert.fail(skip));
} else {
  describe('redis store', { skip: skip || undefined }, () => {
    let standalone: RedisServer | undefined;
    let cluster: RedisCluster | undefined;
    before(async () => {
      [standalone, cluster] = await Promise.all([startRedis(), startCluster()]);
    });
    after(async () => {
      await Promise.all([standalone?.stop(), cluster?.stop()]);
    });
    let n = 0;
    const prefix = () => `t${process.pid}x${++n}`;

    runStoreConformance('redis standalone', async () => {
      const url = `${standalone!.url}?prefix=${prefix()}`;
      const h = {
        store: await RedisStore.open(url),
        reopen: async () => {
          await h.store.dispose();
          return RedisStore.open(url);
        },
      };
      return h;
    });

    runStoreConformance('redis cluster, durability=replicated', async () => {
      const url = `${cluster!.url}?prefix=${prefix()}&durability=replicated`;
      const h = {
        store: await RedisStore.open(url),
        reopen: async () => {
          await h.store.dispose();
          return RedisStore.open(url);
        },
      };
      return h;
    });
  });
}
