import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { newToken } from '../../src/core/ids.js';
import { sampleSession } from '../../src/store/conformance.js';
import { RedisStore } from '../../src/store/redis/store.js';
import { redisRequired, redisSkip, startRedis, type RedisServer } from '../support/redis-servers.js';

const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;
const skip = redisSkip();

if (skip && redisRequired()) {
  it('redis-server is installed (required under CI=true)', () => assert.fail(skip));
} else {
  describe('redis store: session tag keys', { skip: skip || undefined }, () => {
    let server: RedisServer | undefined;
    let raw: Redis;
    let n = 0;
    before(async () => {
      server = await startRedis();
      raw = new Redis(server.port, '127.0.0.1');
    });
    after(async () => {
      raw?.disconnect();
      await server?.stop();
    });
    const open = () => RedisStore.open(`${server!.url}?prefix=tg${process.pid}x${++n}`);

    it('a tag set and the session own set, with a TTL past the hard deadline (none without one)', async () => {
      const store = await open();
      try {
        const bounded = sampleSession({ lifetimeDeadline: T0 + HOUR });
        const open_ = sampleSession({ lifetimeDeadline: null, policyDeadline: null });
        await store.create(bounded, {}, T0);
        await store.create(open_, {}, T0);
        await store.tag(bounded.id, ['b'], T0);
        await store.tag(open_.id, ['o'], T0);
        const k = store.keys;
        assert.deepEqual(await raw.smembers(k.tagged('b')), [bounded.id]);
        assert.deepEqual(await raw.smembers(k.tagsOf(bounded.id)), ['b']);
        for (const key of [k.tagged('b'), k.tagsOf(bounded.id)]) {
          const ttl = await raw.pttl(key);
          assert.ok(ttl > HOUR && ttl <= HOUR + 60_000, `${key}: ${ttl}`);
        }
        assert.equal(await raw.pttl(k.tagged('o')), -1);
        assert.equal(await raw.pttl(k.tagsOf(open_.id)), -1);
        // One tag on both: the set keeps no TTL, since one member may live for ever.
        await store.tag(bounded.id, ['o'], T0);
        assert.equal(await raw.pttl(k.tagged('o')), -1);
        // A later deadline renews the TTL.
        await store.update(bounded.id, { lifetimeDeadline: T0 + 5 * HOUR }, { now: T0 });
        assert.ok((await raw.pttl(k.tagged('b'))) > 4 * HOUR);
        assert.ok((await raw.pttl(k.tagsOf(bounded.id))) > 4 * HOUR);
      } finally {
        await store.dispose();
      }
    });

    it('close, expiry and rekey leave no tag key behind', async () => {
      const store = await open();
      try {
        const k = store.keys;
        const closed = sampleSession();
        const expires = sampleSession({ idleTimeout: 10 });
        const moves = sampleSession();
        for (const s of [closed, expires, moves]) {
          await store.create(s, {}, T0);
          await store.tag(s.id, ['shared', `own-${s.id}`], T0);
        }
        await store.close(closed.id, 'logout', T0);
        await store.closeExpired(T0 + 10_000, 10);
        const fresh = newToken().id;
        await store.rekey(moves.id, fresh, {}, { now: T0 });
        for (const s of [closed, expires, moves]) {
          assert.equal(await raw.exists(k.tagsOf(s.id)), 0, `own set of ${s.id}`);
        }
        assert.equal(await raw.exists(k.tagged(`own-${closed.id}`)), 0);
        assert.equal(await raw.exists(k.tagged(`own-${expires.id}`)), 0);
        assert.deepEqual(await raw.smembers(k.tagged(`own-${moves.id}`)), [fresh]);
        assert.deepEqual(await raw.smembers(k.tagged('shared')), [fresh]);
        assert.deepEqual((await raw.smembers(k.tagsOf(fresh))).sort(), ['shared', `own-${moves.id}`].sort());
      } finally {
        await store.dispose();
      }
    });

    it('entries of a session gone without tidying (a crash) are dropped by the next lookup', async () => {
      const store = await open();
      try {
        const k = store.keys;
        const gone = sampleSession();
        const stays = sampleSession();
        for (const s of [gone, stays]) {
          await store.create(s, {}, T0);
          await store.tag(s.id, ['sid'], T0);
        }
        await raw.del(k.session(gone.id)); // as if the process died between close and tidying
        assert.deepEqual(await store.findByTag('sid', T0), [stays.id]);
        assert.deepEqual(await raw.smembers(k.tagged('sid')), [stays.id]);
        assert.equal(await raw.exists(k.tagsOf(gone.id)), 0);
      } finally {
        await store.dispose();
      }
    });
  });
}
