import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { computeExpiresAt, expiryReason, isExpired } from '../../src/core/deadline.js';
import { isSessionGateError } from '../../src/core/errors.js';
import { newToken, type SessionId } from '../../src/core/ids.js';
import { runStoreConformance, sampleSession } from '../../src/store/conformance.js';
import { openStore } from '../../src/store/open.js';
import { RedisStore } from '../../src/store/redis/store.js';
import { parseRedisUrl, redact } from '../../src/store/redis/url.js';
import { keySlot } from '../../src/store/redis/keys.js';
import {
  rawCommand,
  redisRequired,
  redisSkip,
  startCluster,
  startRedis,
  type RedisCluster,
  type RedisServer,
} from '../support/redis-servers.js';

const T0 = Date.UTC(2026, 0, 1);

/** A MONITOR connection; `disconnect()` also closes the connection it was made from. */
async function watch(port: number): Promise<Redis> {
  const base = new Redis(port, '127.0.0.1', { lazyConnect: true });
  base.on('error', () => undefined);
  const monitor = await base.monitor();
  monitor.on('error', () => undefined);
  const disconnect = monitor.disconnect.bind(monitor);
  monitor.disconnect = (reconnect?: boolean) => {
    base.disconnect();
    disconnect(reconnect);
  };
  return monitor;
}

describe('redis store URL', () => {
  it('reads single, TLS, cluster URLs and options; never shows the password', () => {
    const single = parseRedisUrl(
      'redis://:p%40ss@cache.local:6380/2?prefix=gw&durability=replicated&waitMs=50',
    );
    assert.deepEqual(single.nodes, [{ host: 'cache.local', port: 6380 }]);
    assert.equal(single.password, 'p@ss');
    assert.equal(single.db, 2);
    assert.equal(single.prefix, 'gw');
    assert.equal(single.durability, 'replicated');
    assert.equal(single.waitMs, 50);
    assert.equal(single.cluster, false);
    assert.equal(parseRedisUrl('rediss://h:1').tls, true);
    const cluster = parseRedisUrl('rediss+cluster://u:pw@a:7000,b:7001?shards=64');
    assert.deepEqual(cluster.nodes, [
      { host: 'a', port: 7000 },
      { host: 'b', port: 7001 },
    ]);
    assert.equal(cluster.cluster && cluster.tls && cluster.username === 'u' && cluster.shards === 64, true);
    assert.equal(redact('redis://:secret@h:1/0'), 'redis://:***@h:1/0');
    for (const bad of [
      'redis://a:1,b:2',
      'redis://h:1?bogus=1',
      'redis://h:1?durability=sync',
      'redis+cluster://h:1/3',
      'redis://h:1?shards=0',
    ]) {
      assert.throws(
        () => parseRedisUrl(bad),
        (err) => isSessionGateError(err, 'SG_ERR_STORE_URL'),
        bad,
      );
    }
    assert.throws(
      () => parseRedisUrl('redis://:hunter2@h:1?x=1'),
      (err: Error) => !err.message.includes('hunter2'),
    );
  });

  it('computes the cluster slot of a key as Redis does, hash tags included', () => {
    // Reference values from the Redis Cluster specification and CLUSTER KEYSLOT.
    assert.equal(keySlot('123456789'), 12739);
    assert.equal(keySlot('{user1000}.following'), keySlot('{user1000}.followers'));
    assert.equal(keySlot('foo{}{bar}'), keySlot('foo{}{bar}'));
    assert.equal(keySlot('{}x'), keySlot('{}x'));
  });
});

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

    describe('redis specifics', () => {
      const open = (base: string, query = '') => RedisStore.open(`${base}?prefix=${prefix()}${query}`);

      it('puts every key of one session and its outbox in one cluster slot', async () => {
        const store = await open(cluster!.url);
        try {
          const s = sampleSession({ user: 'ann{x}', state: 'inprogress', clientIp: '2001:db8::1' });
          await store.create(s, {}, T0);
          await store.ensureSubscriber('audit');
          await store.close(s.id, 'logout', T0);
          const k = store.keys;
          const shard = k.shardOf(s.id);
          const base = k.base(shard);
          const ofSession = [
            k.session(s.id),
            ...k.shardKeys(shard),
            `${base}lease:audit`,
            `${base}pend:audit`,
            `${base}fail:audit`,
          ];
          const port = cluster!.nodes[0]!.port;
          const slots = await Promise.all(
            ofSession.map((key) => rawCommand(port, ['CLUSTER', 'KEYSLOT', key])),
          );
          assert.equal(new Set(slots).size, 1, `keys of one session span slots ${slots.join(',')}`);
          for (const key of [...ofSession, k.user('ann{x}'), k.inProgressOfIp('2001:db8::1'), k.meta()]) {
            assert.equal(
              String(keySlot(key)),
              (await rawCommand(port, ['CLUSTER', 'KEYSLOT', key])).slice(1),
              key,
            );
          }
          // 256 shards over 16384 slots: the shard tags cover all three masters.
          const shardSlots = new Set(Array.from({ length: k.shards }, (_, i) => keySlot(k.base(i))));
          assert.equal(shardSlots.size, k.shards);
        } finally {
          await store.dispose();
        }
      });

      it('keeps each failure counter in one key of its own, with a TTL of its window', async () => {
        const store = await open(standalone!.url);
        try {
          const now = Date.now();
          await store.countFailure('user:{x}', 60_000, now);
          await store.countFailure('user:{x}', 60_000, now + 1);
          const key = store.keys.failures('user:{x}');
          const ttl = Number((await rawCommand(standalone!.port, ['PTTL', key])).slice(1));
          assert.ok(ttl > 0 && ttl <= 60_000, `PTTL ${ttl}`);
          assert.equal(await rawCommand(standalone!.port, ['HGET', key, 'n']), '2');
          assert.equal(keySlot(key), keySlot(`{f:user:%7Bx%7D}`));
        } finally {
          await store.dispose();
        }
      });

      it('never sends KEYS or SCAN (source and a MONITOR of a full workload)', async () => {
        const dir = new URL('../../src/store/redis/', import.meta.url);
        const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
        assert.ok(files.length > 10, `the redis driver's files in ${dir.pathname}`);
        for (const file of files) {
          const text = readFileSync(new URL(file, dir), 'utf8');
          assert.doesNotMatch(text, /['"`](KEYS|SCAN)['"`]|client\.(scan|scanStream|keys)\(/, file);
        }
        const monitor = await watch(standalone!.port);
        const seen = new Set<string>();
        monitor.on('monitor', (_time: string, args: string[]) => seen.add(String(args[0]).toUpperCase()));
        const store = await open(standalone!.url);
        try {
          await store.ensureSubscriber('m');
          for (let i = 0; i < 20; i++)
            await store.create(
              sampleSession({ user: 'u', idleTimeout: 5 + i }),
              { maxSessionsPerUser: 30, maxConcurrentSessions: 100 },
              T0,
            );
          await store.list({ limit: 7 });
          await store.list({ state: 'allow' });
          await store.listByUser('u');
          await store.closeExpired(T0 + 15_000, 100);
          for (const r of await store.claim('m', 'c', { now: T0, leaseMs: 10, limit: 100 }))
            await store.ack('m', r.seq);
          await store.stats();
        } finally {
          await store.dispose();
          await new Promise((r) => setTimeout(r, 50));
          monitor.disconnect();
        }
        assert.ok(seen.has('EVALSHA') || seen.has('EVAL'), [...seen].join(' '));
        assert.ok(seen.has('XADD') && seen.has('ZRANGEBYSCORE'), 'MONITOR shows commands run inside scripts');
        assert.ok(!seen.has('KEYS') && !seen.has('SCAN'), [...seen].join(' '));
      });

      it('durability=replicated WAITs for a replica: fails without one, succeeds with one', async () => {
        const lonely = await open(standalone!.url, '&durability=replicated&waitMs=50');
        try {
          assert.equal(lonely.capabilities.durable, true);
          const s = sampleSession();
          await assert.rejects(lonely.create(s, {}, T0), (err) => {
            assert.ok(isSessionGateError(err, 'SG_ERR_STORE_NOT_REPLICATED'), String(err));
            assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${standalone!.port}`));
            return true;
          });
          // The write itself stays on the master: only the acknowledgement is missing.
          assert.ok(await lonely.get(s.id));
          const coalesced = await lonely.validate(s.id, T0 + 1, 1000);
          assert.equal(coalesced.status, 'valid', 'a validate that writes nothing does not wait');
        } finally {
          await lonely.dispose();
        }
        const replica = await startRedis(['--replicaof', '127.0.0.1', String(standalone!.port)]);
        try {
          const waits: string[] = [];
          const monitor = await watch(standalone!.port);
          monitor.on(
            'monitor',
            (_t: string, args: string[]) =>
              String(args[0]).toUpperCase() === 'WAIT' && waits.push(args.join(' ')),
          );
          const store = await open(standalone!.url, '&durability=replicated&waitMs=2000');
          try {
            const s = sampleSession();
            await store.create(s, {}, T0); // waits until the replica has synced, then acknowledges
            await store.close(s.id, 'logout', T0);
          } finally {
            await store.dispose();
            await new Promise((r) => setTimeout(r, 50));
            monitor.disconnect();
          }
          assert.ok(waits.length >= 2 && waits.every((w) => w === 'WAIT 1 2000'), waits.join('; '));
        } finally {
          await replica.stop();
        }
      });

      it('expiry in Lua agrees with src/core/deadline.ts (property)', async () => {
        const store = await open(standalone!.url);
        const opt = (arb: fc.Arbitrary<number>) => fc.option(arb, { nil: null });
        try {
          await fc.assert(
            fc.asyncProperty(
              fc.integer({ min: 0, max: 5 }),
              opt(fc.integer({ min: 0, max: 20_000 })),
              opt(fc.integer({ min: 0, max: 20_000 })),
              fc.integer({ min: 0, max: 25_000 }),
              async (idle, life, policy, after) => {
                const s = sampleSession({
                  idleTimeout: idle,
                  lifetimeDeadline: life === null ? null : T0 + life,
                  policyDeadline: policy === null ? null : T0 + policy,
                });
                const { record } = await store.create(s, {}, T0);
                const now = T0 + after;
                const out = await store.validate(s.id, now, 1000);
                if (isExpired(record, now)) {
                  assert.deepEqual(out, { status: 'expired', reason: expiryReason(record) });
                } else {
                  assert.equal(out.status, 'valid');
                  const touched = after >= 1000;
                  const expect = touched
                    ? computeExpiresAt({ ...record, lastAccessAt: now })
                    : record.expiresAt;
                  assert.equal(out.status === 'valid' && out.record.expiresAt, expect);
                  await store.close(s.id, 'removed', now);
                }
              },
            ),
            { numRuns: 150 },
          );
        } finally {
          await store.dispose();
        }
      });

      it('a sweep on a standalone server counts what is due in all 256 shards with one call', async () => {
        const store = await open(standalone!.url);
        try {
          const sessions = Array.from({ length: 3 }, () =>
            sampleSession({ idleTimeout: 1, lastAccessAt: T0 }),
          );
          for (const s of sessions) await store.create(s, {}, T0);
          // Count the ZCOUNTs the client sends (the script's own ZCOUNTs show in commandstats too).
          let zcounts = 0;
          const client = store.client as unknown as { zcount: (...a: unknown[]) => Promise<number> };
          const zcount = client.zcount.bind(client);
          client.zcount = (...a) => (zcounts++, zcount(...a));
          await rawCommand(standalone!.port, ['CONFIG', 'RESETSTAT']);
          const closed = await store.closeExpired(T0 + 5000, 1000);
          assert.deepEqual(closed.map((c) => c.sessionId).sort(), sessions.map((s) => s.id).sort());
          assert.deepEqual(await store.closeExpired(T0 + 6000, 1000), []);
          const stats = await rawCommand(standalone!.port, ['INFO', 'commandstats']);
          assert.equal(zcounts, 0, 'no ZCOUNT per shard');
          const evalsha = Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0);
          // Two counting calls, and one sweep script per shard that had something due.
          const shards = new Set(sessions.map((s) => store.keys.shardOf(s.id))).size;
          assert.ok(evalsha <= 2 + shards, `${evalsha} EVALSHA calls for 2 sweeps`);
        } finally {
          await store.dispose();
        }
      });

      it('validates issued together go to each server as one call and answer as each would alone', async () => {
        const shared = `${cluster!.url}?prefix=${prefix()}`;
        const store = await RedisStore.open(shared);
        const plain = await RedisStore.open(`${shared}&batch=0`);
        try {
          const sessions = Array.from({ length: 300 }, (_, i) =>
            sampleSession({ idleTimeout: 1 + (i % 7), lastAccessAt: T0 + (i % 3) * 500 }),
          );
          await Promise.all(sessions.map((s) => store.create(s, {}, T0)));
          const missing = Array.from({ length: 20 }, () => newToken().id);
          const ids = [...sessions.map((s) => s.id), ...missing];
          const masters = cluster!.nodes.map((n) => n.port);
          const calls = async () => {
            let n = 0;
            for (const port of masters) {
              const stats = await rawCommand(port, ['INFO', 'commandstats']);
              n += Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0);
            }
            return n;
          };
          const before = await calls();
          const now = T0 + 3000;
          const together = await Promise.all(ids.map((id) => store.validate(id, now, 1000)));
          const sent = (await calls()) - before;
          assert.ok(sent < 30, `${ids.length} validations took ${sent} script calls`);
          for (const [i, id] of ids.entries()) {
            const s = sessions[i];
            const out = together[i]!;
            if (!s) assert.deepEqual(out, { status: 'missing' });
            else if (s.lastAccessAt + s.idleTimeout * 1000 <= now)
              assert.deepEqual(out, { status: 'expired', reason: 'idle_timeout' });
            else {
              assert.equal(out.status, 'valid', id);
              assert.deepEqual(out.status === 'valid' && out.record, await plain.get(id));
            }
          }
          // The same again one call per session (batch=0): nothing left to expire, same records.
          const alone = await Promise.all(ids.map((id) => plain.validate(id, now, 1000)));
          assert.deepEqual(
            alone.map((o) => o.status),
            together.map((o) => (o.status === 'expired' ? 'missing' : o.status)),
          );
        } finally {
          await store.dispose();
          await plain.dispose();
        }
      });

      it('nearCache=0: validate reuses the record it holds only while Redis holds the same; writes elsewhere show at once', async () => {
        const url = `${standalone!.url}?prefix=${prefix()}&nearCache=0`;
        const a = await RedisStore.open(url);
        const b = await RedisStore.open(url);
        try {
          const s = sampleSession({ lastAccessAt: T0 });
          await a.create(s, {}, T0);
          const first = await a.validate(s.id, T0 + 10, 1000);
          const again = await a.validate(s.id, T0 + 20, 1000);
          assert.ok(first.status === 'valid' && again.status === 'valid');
          assert.equal(again.record, first.record, 'the same record object: Redis answered "same"');
          await b.update(s.id, { setVariables: { 'session.custom.x': '1' } }, { now: T0 + 30 });
          const changed = await a.validate(s.id, T0 + 40, 1000);
          assert.ok(changed.status === 'valid');
          assert.equal(changed.record.variables['session.custom.x'], '1');
          const touched = await a.validate(s.id, T0 + 2000, 1000);
          assert.ok(touched.status === 'valid' && touched.record.lastAccessAt === T0 + 2000);
          await b.close(s.id, 'logout', T0 + 2001);
          assert.deepEqual(await a.validate(s.id, T0 + 2002, 1000), { status: 'missing' });
        } finally {
          await a.dispose();
          await b.dispose();
        }
      });

      it('near cache in a cluster: a change made through any master reaches every process', async () => {
        const url = `${cluster!.url}?prefix=${prefix()}`;
        const [a, b] = [await RedisStore.open(url), await RedisStore.open(url)];
        try {
          // Sessions on several masters: the subscriber sits on one node, PUBLISH reaches all.
          const sessions = Array.from({ length: 12 }, () => sampleSession({ lastAccessAt: T0 }));
          await Promise.all(sessions.map((s) => a.create(s, {}, T0)));
          for (const s of sessions) assert.equal((await a.validate(s.id, T0 + 10, 1000)).status, 'valid');
          const masters = new Set(
            sessions.map((s) =>
              a.client instanceof Redis ? '' : (a.client.slots[keySlot(a.keys.session(s.id))]?.[0] ?? ''),
            ),
          );
          assert.ok(masters.size > 1, 'the sessions sit on more than one master');
          for (const s of sessions) {
            const seen = a.near!.nextInvalidation(s.id);
            await b.update(s.id, { setVariables: { 'session.custom.n': s.id } }, { now: T0 + 20 });
            await seen;
            const out = await a.validate(s.id, T0 + 30, 1000);
            assert.ok(out.status === 'valid' && out.record.variables['session.custom.n'] === s.id);
          }
        } finally {
          await Promise.all([a.dispose(), b.dispose()]);
        }
      });

      it('an idle claim does not look at every shard, yet sees a close made by another process at once', async () => {
        const url = `${standalone!.url}?prefix=${prefix()}`;
        const a = await RedisStore.open(url);
        const b = await RedisStore.open(url);
        const scriptCalls = async () =>
          Number(/cmdstat_evalsha:calls=(\d+)/.exec(await a.client.info('commandstats'))?.[1] ?? 0);
        try {
          await a.ensureSubscriber('idle');
          assert.deepEqual(await a.claim('idle', 'c', { now: T0, leaseMs: 1000, limit: 10 }), []);
          const before = await scriptCalls();
          for (let i = 0; i < 5; i++)
            assert.deepEqual(await a.claim('idle', 'c', { now: T0 + i, leaseMs: 1000, limit: 10 }), []);
          assert.equal((await scriptCalls()) - before, 0, 'idle claims ran scripts');
          const s = sampleSession();
          await b.create(s, {}, T0);
          await b.close(s.id, 'logout', T0);
          const [rec] = await a.claim('idle', 'c', { now: T0 + 10, leaseMs: 1000, limit: 10 });
          assert.equal(rec?.sessionId, s.id);
          // Its lease ending is noticed without any other change.
          assert.deepEqual(await a.claim('idle', 'c', { now: T0 + 500, leaseMs: 1000, limit: 10 }), []);
          const [again] = await a.claim('idle', 'd', { now: T0 + 1010, leaseMs: 1000, limit: 10 });
          assert.equal(again?.redelivered, true);
          // With nothing leased, an idle answer still expires after RESCAN_MS (5 s of `now`).
          await a.ack('idle', again!.seq);
          assert.deepEqual(await a.claim('idle', 'd', { now: T0 + 1011, leaseMs: 1000, limit: 10 }), []);
          const quiet = await scriptCalls();
          await a.claim('idle', 'd', { now: T0 + 6000, leaseMs: 1000, limit: 10 });
          assert.equal((await scriptCalls()) - quiet, 0);
          await a.claim('idle', 'd', { now: T0 + 6011, leaseMs: 1000, limit: 10 });
          assert.ok((await scriptCalls()) - quiet >= a.keys.shards, 'a periodic full look');
        } finally {
          await a.dispose();
          await b.dispose();
        }
      });

      it('fields inside values cannot fool the scripts that read a record without decoding it', async () => {
        const store = await open(standalone!.url);
        try {
          const tricky = sampleSession({
            user: 'x","state":"deny","clientIp":"6.6.6.6',
            clientIp: '10.9.9.9',
            variables: { clientIp: '6.6.6.6', state: 'deny', 'a,"expiresAt":1': 'v' },
            cookies: { p: { lastAccessAt: 1, list: [] } },
          });
          await store.create(tricky, {}, T0);
          assert.deepEqual((await store.list({ clientIp: '6.6.6.6' })).sessions, []);
          assert.deepEqual((await store.list({ state: 'deny' })).sessions, []);
          assert.deepEqual(
            (await store.list({ clientIp: '10.9.9.9', state: 'allow' })).sessions.map((r) => r.id),
            [tricky.id],
          );
          const touched = await store.validate(tricky.id, T0 + 5000, 1000);
          assert.equal(touched.status === 'valid' && touched.record.expiresAt, T0 + 5000 + 900_000);
          assert.deepEqual(touched.status === 'valid' && touched.record.cookies, {
            p: { lastAccessAt: 1, list: [] },
          });
          assert.deepEqual(await store.get(tricky.id), touched.status === 'valid' && touched.record);
        } finally {
          await store.dispose();
        }
      });

      it('close order holds across shards; fully acked records leave the streams and no idle consumer stays', async () => {
        const store = await open(standalone!.url);
        try {
          await store.ensureSubscriber('a');
          await store.ensureSubscriber('b');
          const ids: SessionId[] = [];
          for (let i = 0; i < 40; i++) {
            const s = sampleSession();
            ids.push(s.id);
            await store.create(s, {}, T0);
          }
          for (const id of ids) await store.close(id, 'logout', T0 + 1);
          const got: string[] = [];
          for (;;) {
            const batch = await store.claim('a', 'worker', { now: T0, leaseMs: 1000, limit: 7 });
            if (batch.length === 0) break;
            got.push(...batch.map((r) => r.sessionId));
            for (const r of batch) await store.ack('a', r.seq);
          }
          assert.deepEqual(got, ids, 'claims come in close order across shards');
          const streamLength = async () =>
            (
              await Promise.all(
                Array.from({ length: store.keys.shards }, (_, i) => store.client.xlen(store.keys.stream(i))),
              )
            ).reduce((a, b) => a + b, 0);
          assert.equal(await streamLength(), 40, 'subscriber b still needs them');
          for (const r of await store.claim('b', 'worker', { now: T0, leaseMs: 1000, limit: 100 }))
            await store.ack('b', r.seq);
          assert.equal(await streamLength(), 0);
          const consumers = await store.client.xinfo(
            'CONSUMERS',
            store.keys.stream(store.keys.shardOf(ids[0]!)),
            'a',
          );
          assert.deepEqual(consumers, []);
          assert.deepEqual((await store.stats()).outboxPending, { a: 0, b: 0 });
        } finally {
          await store.dispose();
        }
      });

      it('repairs the user index lazily and limits stay right after a session vanished', async () => {
        const store = await open(standalone!.url);
        try {
          const a = sampleSession({ user: 'zed', createdAt: T0 });
          const b = sampleSession({ user: 'zed', createdAt: T0 + 1 });
          await store.create(a, {}, T0);
          await store.create(b, {}, T0);
          // As if a process died between the session's removal and its index update:
          await store.client.del(store.keys.session(a.id));
          await store.client.zadd(store.keys.user('zed'), T0 - 5, newToken().id);
          assert.deepEqual(
            (await store.listByUser('zed')).map((r) => r.id),
            [b.id],
          );
          assert.equal(await store.client.zcard(store.keys.user('zed')), 1);
          const c = sampleSession({ user: 'zed', createdAt: T0 + 2 });
          const { evicted } = await store.create(c, { maxSessionsPerUser: 1 }, T0 + 2);
          assert.deepEqual(evicted, [b.id]);
          // A rekey moves the index entry; update of the user moves it between users.
          const fresh = newToken().id;
          assert.equal(await store.rekey(c.id, fresh, {}, { now: T0 + 3 }), true);
          await store.update(fresh, { user: 'yan' }, { now: T0 + 4 });
          assert.deepEqual(await store.listByUser('zed'), []);
          assert.deepEqual(
            (await store.listByUser('yan')).map((r) => r.id),
            [fresh],
          );
        } finally {
          await store.dispose();
        }
      });

      it('fails fast and says which server when it cannot connect; refuses a cluster node as single', async () => {
        const t = Date.now();
        await assert.rejects(openStore('redis://:hunter2@127.0.0.1:1?connectTimeoutMs=2000'), (err) => {
          assert.ok(isSessionGateError(err, 'SG_ERR_STORE_UNAVAILABLE'), String(err));
          assert.match(err.message, /127\.0\.0\.1:1/);
          assert.ok(!err.message.includes('hunter2') && !err.message.includes('\n'), err.message);
          return true;
        });
        assert.ok(Date.now() - t < 5000);
        await assert.rejects(RedisStore.open(`redis://127.0.0.1:${cluster!.nodes[0]!.port}`), {
          code: 'SG_ERR_STORE_URL',
        });
        const p = prefix();
        (await RedisStore.open(`${standalone!.url}?prefix=${p}&shards=16`)).dispose();
        await assert.rejects(RedisStore.open(`${standalone!.url}?prefix=${p}`), { code: 'SG_ERR_CONFIG' });
      });

      it('a server that goes away turns calls into SG_ERR_STORE_UNAVAILABLE, not a hang', async () => {
        const doomed = await startRedis();
        const store = await RedisStore.open(doomed.url);
        try {
          const s = sampleSession();
          await store.create(s, {}, T0);
          await doomed.stop();
          const t = Date.now();
          await assert.rejects(store.validate(s.id, T0, 1000), { code: 'SG_ERR_STORE_UNAVAILABLE' });
          assert.ok(Date.now() - t < 10_000, `took ${Date.now() - t} ms`);
        } finally {
          await store.dispose();
        }
      });
    });
  });
}
