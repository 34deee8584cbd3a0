import assert from 'node:assert/strict';
import type { SessionId } from '../core/ids.js';
import { sampleSession, type StoreHarness } from './conformance-harness.js';
import type { SessionLimits } from './contract.js';

const T0 = Date.UTC(2026, 0, 1);

type GuardCheck = [title: string, run: (h: StoreHarness) => Promise<void>];

/**
 * The conformance checks of what guards the gateway against abuse: the failure counters of
 * logon throttling and the per-address eviction of in-progress sessions. Run by
 * runStoreConformance for every backend.
 *
 * @example
 * ```ts
 * for (const [title, run] of GUARD_CHECKS) it(title, () => withStore(run));
 * ```
 */
export const GUARD_CHECKS: GuardCheck[] = [
  [
    'failure counters count in a fixed window from the first failure, then start again',
    async ({ store }) => {
      assert.deepEqual(await store.failures('k1', T0), { count: 0, resetAt: T0 });
      assert.deepEqual(await store.countFailure('k1', 1000, T0), { count: 1, resetAt: T0 + 1000 });
      assert.deepEqual(await store.countFailure('k1', 1000, T0 + 400), { count: 2, resetAt: T0 + 1000 });
      assert.deepEqual(await store.countFailure('k2', 5000, T0 + 400), { count: 1, resetAt: T0 + 5400 });
      assert.deepEqual(await store.failures('k1', T0 + 999), { count: 2, resetAt: T0 + 1000 });
      assert.equal((await store.failures('k1', T0 + 1000)).count, 0, 'the window ended');
      assert.deepEqual(await store.countFailure('k1', 1000, T0 + 1500), { count: 1, resetAt: T0 + 2500 });
      assert.equal((await store.failures('k2', T0 + 1500)).count, 1, 'other keys are their own');
    },
  ],
  [
    'failure counters: uncount takes one back (never below 0), clear forgets',
    async ({ store }) => {
      const key = 'user:{odd}%key';
      for (let i = 0; i < 3; i++) await store.countFailure(key, 60_000, T0);
      await store.uncountFailure(key, T0 + 1);
      assert.equal((await store.failures(key, T0 + 1)).count, 2);
      for (let i = 0; i < 4; i++) await store.uncountFailure(key, T0 + 2);
      assert.equal((await store.failures(key, T0 + 2)).count, 0);
      await store.countFailure(key, 60_000, T0 + 3);
      await store.clearFailures(key);
      assert.equal((await store.failures(key, T0 + 3)).count, 0);
      await store.uncountFailure('never-counted', T0);
      assert.deepEqual(await store.countFailure(key, 60_000, T0 + 4), { count: 1, resetAt: T0 + 60_004 });
    },
  ],
  [
    'failure counters: concurrent counts each get a distinct count',
    async ({ store }) => {
      const counts = await Promise.all(
        Array.from({ length: 25 }, () => store.countFailure('race', 60_000, T0)),
      );
      assert.deepEqual(
        counts.map((c) => c.count).sort((a, b) => a - b),
        Array.from({ length: 25 }, (_, i) => i + 1),
      );
    },
  ],
  [
    'per-address limit with evict_oldest closes the oldest in-progress sessions of that address only',
    async ({ store }) => {
      const limits: SessionLimits = { maxInProgressPerClientIp: 3, onClientIpLimit: 'evict_oldest' };
      const at = (i: number, ip = '198.51.100.9', state: 'inprogress' | 'allow' = 'inprogress') =>
        sampleSession({ clientIp: ip, state, createdAt: T0 + i, lastAccessAt: T0 + i });
      const other = at(0, '198.51.100.10');
      const allowed = at(0, '198.51.100.9', 'allow');
      await store.create(other, limits, T0);
      await store.create(allowed, limits, T0);
      const ids: SessionId[] = [];
      for (let i = 1; i <= 3; i++) {
        const s = at(i);
        ids.push(s.id);
        assert.deepEqual((await store.create(s, limits, T0 + i)).evicted, []);
      }
      const fourth = at(4);
      assert.deepEqual((await store.create(fourth, limits, T0 + 4)).evicted, [ids[0]]);
      assert.equal(await store.get(ids[0]!), null);
      for (let i = 5; i < 25; i++) await store.create(at(i), limits, T0 + i);
      const left = await store.list({ clientIp: '198.51.100.9', state: 'inprogress' });
      assert.equal(left.sessions.length, 3, 'the bound holds');
      assert.deepEqual(
        left.sessions.map((s) => s.createdAt).sort((a, b) => a - b),
        [T0 + 22, T0 + 23, T0 + 24],
        'the newest stay',
      );
      assert.ok(await store.get(other.id), 'another address is never touched');
      assert.ok(await store.get(allowed.id), 'a finished logon of the address is not counted');
      await store.ensureSubscriber('g');
      const recs = await store.claim('g', 'c', { now: T0 + 30, leaseMs: 10, limit: 100 });
      assert.equal(recs.length, 21);
      assert.ok(recs.every((r) => r.reason === 'evicted'));
      assert.deepEqual((await store.stats()).byState.inprogress, 4);
    },
  ],
];
