import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { newToken, type SessionId } from '../../src/core/ids.js';
import { sampleSession } from '../../src/store/conformance.js';
import { RedisStore } from '../../src/store/redis/store.js';
import { NearCache } from '../../src/store/redis/near-cache.js';
import {
  rawCommand,
  redisRequired,
  redisSkip,
  startRedis,
  type RedisServer,
} from '../support/redis-servers.js';

const T0 = Date.UTC(2026, 0, 1);
const id = (): SessionId => newToken().id;

describe('near cache bookkeeping (no server)', () => {
  it('holds nothing until subscribed, and nothing read before the subscription was confirmed', () => {
    const near = new NearCache(1000);
    const a = id();
    assert.equal(near.admit(a, near.seq), false, 'not subscribed yet');
    const before = near.seq;
    near.subscribed();
    assert.equal(near.admit(a, before), false, 'sent before the subscription: messages may be missing');
    assert.equal(near.admit(a, near.seq), true);
  });

  it('an invalidation that arrives while a read is in flight keeps that read from being held', () => {
    const near = new NearCache(1000);
    near.subscribed();
    const [a, b] = [id(), id()];
    const sent = near.seq;
    near.invalidate(a);
    assert.equal(near.admit(a, sent), false, 'the answer may predate the change');
    assert.equal(near.admit(b, sent), true, 'other sessions are not affected');
    assert.equal(near.admit(a, near.seq), true, 'a read sent after the message is fine');
  });

  it('a lost subscription voids everything held and admits nothing until it is back', () => {
    const near = new NearCache(1000);
    near.subscribed();
    const epoch = near.epoch;
    const sent = near.seq;
    assert.equal(near.usable(epoch, T0, T0 + 10), true);
    near.lost();
    assert.equal(near.usable(epoch, T0, T0 + 10), false);
    assert.equal(near.admit(id(), sent), false);
    near.subscribed();
    assert.equal(near.usable(epoch, T0, T0 + 10), false, 'held before the loss: still void');
    assert.equal(near.usable(near.epoch, T0, T0 + 10), true);
  });

  it('a held record answers for less than maxAgeMs of the caller clock', () => {
    const near = new NearCache(1000);
    near.subscribed();
    assert.equal(near.usable(near.epoch, T0, T0 + 999), true);
    assert.equal(near.usable(near.epoch, T0, T0 + 1000), false);
  });

  it('past the remembered ids it forgets them all and admits only reads sent afterwards', () => {
    const near = new NearCache(1000);
    near.subscribed();
    const a = id();
    const sent = near.seq;
    for (let i = 0; i < 5000; i++) near.invalidate(id());
    assert.equal(near.admit(a, sent), false, 'whether `a` was among them is no longer known');
    assert.equal(near.admit(a, near.seq), true);
  });
});

const skip = redisSkip();
if (skip && redisRequired()) {
  it('redis-server is installed (required under CI=true)', () => assert.fail(skip));
}

describe('near cache against redis-server', { skip: skip || undefined }, () => {
  let server: RedisServer | undefined;
  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server?.stop();
  });
  let n = 0;
  const url = () => `${server!.url}?prefix=nc${process.pid}x${++n}`;
  const scriptCalls = async () =>
    Number(
      /cmdstat_evalsha:calls=(\d+)/.exec(await rawCommand(server!.port, ['INFO', 'commandstats']))?.[1] ?? 0,
    );
  const two = async () => {
    const shared = url();
    return [await RedisStore.open(shared), await RedisStore.open(shared)] as const;
  };
  /** Two processes; `b` created a session that `a` validated once (and so holds). */
  const heldByA = async () => {
    const [a, b] = await two();
    const s = sampleSession({ lastAccessAt: T0 });
    await b.create(s, {}, T0);
    const first = await a.validate(s.id, T0 + 10, 1000);
    return { a, b, s, first };
  };

  it('answers repeat validations without Redis until a touch is due; a touch is one call again', async () => {
    const { a, b, s, first } = await heldByA();
    try {
      const calls = await scriptCalls();
      for (let t = 20; t < 1000; t += 100) {
        const again = await a.validate(s.id, T0 + t, 1000);
        assert.ok(first.status === 'valid' && again.status === 'valid');
        assert.equal(again.record, first.record);
      }
      assert.equal((await scriptCalls()) - calls, 0, 'validations answered near went to Redis');
      const touched = await a.validate(s.id, T0 + 1000, 1000);
      assert.ok(touched.status === 'valid' && touched.record.lastAccessAt === T0 + 1000);
      assert.equal((await scriptCalls()) - calls, 1);
      // Redis answered with the new deadline only; the record built from it is the stored one.
      assert.deepEqual(touched.record, await b.get(s.id));
      const again = await a.validate(s.id, T0 + 1010, 1000);
      assert.equal(again.status === 'valid' && again.record, touched.record);
      // What a touch wrote is in Redis: the other process sees the new deadline.
      const seen = await b.validate(s.id, T0 + 1001, 1000);
      assert.ok(seen.status === 'valid' && seen.record.lastAccessAt === T0 + 1000);
    } finally {
      await Promise.all([a.dispose(), b.dispose()]);
    }
  });

  it('validateNow answers what the near cache holds, at once; anything else is left to validate', async () => {
    const { a, b, s, first } = await heldByA();
    let disposed = false;
    try {
      assert.equal(b.validateNow(s.id, T0 + 20, 1000), undefined, 'b never read it: nothing held');
      const calls = await scriptCalls();
      const now = a.validateNow(s.id, T0 + 20, 1000);
      assert.ok(first.status === 'valid' && now?.status === 'valid');
      assert.equal(now.record, first.record);
      assert.equal(a.validateNow(s.id, T0 + 1000, 1000), undefined, 'a touch is due: Redis must write it');
      const lazy = a.validateNow(s.id, T0 + 1000, 1000, { lazyTouch: true });
      assert.ok(
        lazy?.status === 'valid' && lazy.record === first.record,
        'lazyTouch: answered, touch behind',
      );
      const after = await a.validate(s.id, T0 + 1002, 1000);
      assert.ok(after.status === 'valid' && after.record.lastAccessAt === T0 + 1000, 'the touch was written');
      assert.equal((await scriptCalls()) - calls, 1, 'validateNow sent nothing of its own');
      const changed = a.near!.nextInvalidation(s.id);
      await b.update(s.id, { setVariables: { 'session.custom.x': '1' } }, { now: T0 + 1003 });
      await changed;
      assert.equal(a.validateNow(s.id, T0 + 1004, 1000), undefined, 'changed elsewhere: no longer held');
      assert.ok((await a.validate(s.id, T0 + 1005, 1000)).status === 'valid');
      assert.ok(a.validateNow(s.id, T0 + 1006, 1000), 'held again');
      await a.dispose();
      disposed = true;
      assert.equal(a.validateNow(s.id, T0 + 1007, 1000), undefined, 'a disposed store answers nothing');
    } finally {
      await Promise.all([disposed ? undefined : a.dispose(), b.dispose()]);
    }
  });

  it('lazyTouch answers a held session at once and writes its due touch behind the answer, once', async () => {
    const { a, b, s, first } = await heldByA();
    try {
      const calls = await scriptCalls();
      const lazy = { lazyTouch: true };
      const [x, y] = await Promise.all([
        a.validate(s.id, T0 + 1000, 1000, lazy),
        a.validate(s.id, T0 + 1001, 1000, lazy),
      ]);
      assert.ok(first.status === 'valid');
      assert.equal(x.status === 'valid' && x.record, first.record, 'answered from the held record');
      assert.equal(y.status === 'valid' && y.record, first.record);
      // A waiting validation queues behind the touch on the same connection, so it sees it.
      const after = await a.validate(s.id, T0 + 1002, 1000);
      assert.ok(after.status === 'valid' && after.record.lastAccessAt === T0 + 1000, 'the touch was written');
      // The touch behind the two answers and the check after them went out in one batch.
      assert.equal((await scriptCalls()) - calls, 1);
      const seen = await b.get(s.id);
      assert.equal(seen?.lastAccessAt, T0 + 1000);
    } finally {
      await Promise.all([a.dispose(), b.dispose()]);
    }
  });

  it('a session within a second of its deadline is touched before the answer, not behind it', async () => {
    const store = await RedisStore.open(url());
    try {
      const s = sampleSession({ lastAccessAt: T0, idleTimeout: 2 });
      await store.create(s, {}, T0);
      assert.equal((await store.validate(s.id, T0 + 10, 1000)).status, 'valid');
      const out = await store.validate(s.id, T0 + 1500, 1000, { lazyTouch: true });
      assert.ok(out.status === 'valid' && out.record.lastAccessAt === T0 + 1500, 'waited for the touch');
    } finally {
      await store.dispose();
    }
  });

  it('touches written behind their answers share one call; dispose sends the ones still waiting', async () => {
    const [a, b] = await two();
    let disposed = false;
    try {
      const sessions = Array.from({ length: 30 }, () => sampleSession({ lastAccessAt: T0 }));
      await Promise.all(sessions.map((s) => b.create(s, {}, T0)));
      await Promise.all(sessions.map((s) => a.validate(s.id, T0 + 10, 1000)));
      const other = sampleSession({ lastAccessAt: T0 });
      await b.create(other, {}, T0);
      const calls = await scriptCalls();
      const lazy = { lazyTouch: true };
      // Answered from the held records, no I/O ...
      const answers = sessions.slice(0, 20).map((s) => a.validate(s.id, T0 + 1000, 1000, lazy));
      // ... and a validation someone waits for, at the end of this turn, takes their touches along.
      const waited = a.validate(other.id, T0 + 1000, 1000);
      assert.ok((await Promise.all(answers)).every((o) => o.status === 'valid'));
      assert.equal((await waited).status, 'valid');
      assert.equal((await scriptCalls()) - calls, 1, 'one call for 21 validations');
      for (const s of sessions.slice(0, 20)) assert.equal((await b.get(s.id))?.lastAccessAt, T0 + 1000);
      for (const s of sessions.slice(20)) await a.validate(s.id, T0 + 1500, 1000, lazy);
      await a.dispose();
      disposed = true;
      for (const s of sessions.slice(20)) assert.equal((await b.get(s.id))?.lastAccessAt, T0 + 1500);
    } finally {
      await Promise.all([disposed ? undefined : a.dispose(), b.dispose()]);
    }
  });

  it('a change or a close made by another process shows once its message arrives', async () => {
    const [a, b] = await two();
    try {
      const s = sampleSession({ lastAccessAt: T0 });
      await a.create(s, {}, T0);
      assert.equal((await a.validate(s.id, T0 + 10, 1000)).status, 'valid');
      const changed = a.near!.nextInvalidation(s.id);
      await b.update(s.id, { setVariables: { 'session.custom.x': '1' } }, { now: T0 + 20 });
      await changed;
      const after = await a.validate(s.id, T0 + 30, 1000);
      assert.ok(after.status === 'valid');
      assert.equal(after.record.variables['session.custom.x'], '1');
      const closed = a.near!.nextInvalidation(s.id);
      await b.close(s.id, 'logout', T0 + 40);
      await closed;
      assert.deepEqual(await a.validate(s.id, T0 + 50, 1000), { status: 'missing' });
    } finally {
      await Promise.all([a.dispose(), b.dispose()]);
    }
  });

  it('a process reads its own writes at once, even a validation in flight across the write', async () => {
    const store = await RedisStore.open(url());
    try {
      const s = sampleSession({ lastAccessAt: T0 });
      await store.create(s, {}, T0);
      // A validation sent together with the write may be answered before it: not held.
      const [raced] = await Promise.all([
        store.validate(s.id, T0 + 10, 1000),
        store.update(s.id, { setVariables: { 'session.custom.y': 'new' } }, { now: T0 + 10 }),
      ]);
      assert.equal(raced.status, 'valid');
      const next = await store.validate(s.id, T0 + 20, 1000);
      assert.ok(next.status === 'valid');
      assert.equal(next.record.variables['session.custom.y'], 'new');
      await store.close(s.id, 'logout', T0 + 30);
      assert.deepEqual(await store.validate(s.id, T0 + 40, 1000), { status: 'missing' });
    } finally {
      await store.dispose();
    }
  });

  it('a held record answers for nearCacheMs at most, even for a validation that never touches', async () => {
    const store = await RedisStore.open(`${url()}&nearCacheMs=500`);
    try {
      const s = sampleSession({ lastAccessAt: T0 });
      await store.create(s, {}, T0);
      await store.validate(s.id, T0, Infinity);
      const calls = await scriptCalls();
      await store.validate(s.id, T0 + 499, Infinity);
      assert.equal((await scriptCalls()) - calls, 0);
      await store.validate(s.id, T0 + 500, Infinity);
      assert.equal((await scriptCalls()) - calls, 1, 'past nearCacheMs Redis is asked');
    } finally {
      await store.dispose();
    }
  });

  it('a record past its deadline is never answered near: Redis closes it', async () => {
    const store = await RedisStore.open(url());
    try {
      const s = sampleSession({ lastAccessAt: T0, idleTimeout: 1 });
      await store.create(s, {}, T0);
      assert.equal((await store.validate(s.id, T0, Infinity)).status, 'valid');
      assert.deepEqual(await store.validate(s.id, T0 + 1000, Infinity), {
        status: 'expired',
        reason: 'idle_timeout',
      });
    } finally {
      await store.dispose();
    }
  });

  it('while its subscription is down nothing is answered near; held records stay void after it is back', async () => {
    const store = await RedisStore.open(url());
    try {
      const s = sampleSession({ lastAccessAt: T0 });
      await store.create(s, {}, T0);
      assert.equal((await store.validate(s.id, T0 + 10, 1000)).status, 'valid');
      // A change whose message this process misses: written behind the scripts' back, and the
      // subscriber connection killed.
      const key = store.keys.session(s.id);
      const raw = await store.client.get(key);
      await store.client.set(key, raw!.replace('"session.user.clientip":"', '"session.user.clientip":"9'));
      const lost = store.near!.nextStateChange();
      await rawCommand(server!.port, ['CLIENT', 'KILL', 'TYPE', 'pubsub']);
      await lost;
      assert.equal(store.near!.live, false);
      const down = await store.validate(s.id, T0 + 20, 1000);
      assert.ok(down.status === 'valid');
      assert.match(down.record.variables['session.user.clientip'] ?? '', /^9/, 'asked Redis while down');
      await store.near!.nextStateChange();
      assert.equal(store.near!.live, true, 'resubscribed by itself');
      const calls = await scriptCalls();
      await store.validate(s.id, T0 + 30, 1000);
      await store.validate(s.id, T0 + 40, 1000);
      assert.equal((await scriptCalls()) - calls, 1, 'held again after one read');
    } finally {
      await store.dispose();
    }
  });

  it('nearCache=0 asks Redis every time; a bad option is one clear line', async () => {
    const store = await RedisStore.open(`${url()}&nearCache=0`);
    try {
      assert.equal(store.near, undefined);
      const s = sampleSession({ lastAccessAt: T0 });
      await store.create(s, {}, T0);
      await store.validate(s.id, T0 + 10, 1000);
      const calls = await scriptCalls();
      await store.validate(s.id, T0 + 20, 1000);
      assert.equal((await scriptCalls()) - calls, 1);
    } finally {
      await store.dispose();
    }
    await assert.rejects(RedisStore.open(`${url()}&nearCache=yes`), /nearCache is 0 or 1/);
    await assert.rejects(
      RedisStore.open(`${url()}&nearCacheMs=0`),
      /nearCacheMs must be a positive whole number/,
    );
  });
});
