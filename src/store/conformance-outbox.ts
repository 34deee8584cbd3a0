import assert from 'node:assert/strict';
import { sampleSession, type StoreHarness } from './conformance-harness.js';

const T0 = Date.UTC(2026, 0, 1);

type OutboxCheck = [title: string, run: (h: StoreHarness) => Promise<void>];

/**
 * The conformance checks of the outbox's leases as the close dispatcher uses them: heartbeat
 * renewal by the holder only, handing records back at shutdown, and the age of each
 * subscriber's oldest unfinished record. Run by runStoreConformance for every backend.
 *
 * @example
 * ```ts
 * for (const [title, run] of OUTBOX_CHECKS) it(title, () => withStore(run));
 * ```
 */
export const OUTBOX_CHECKS: OutboxCheck[] = [
  [
    'outbox: renew extends the lease of its holder only; a renewed record is not taken over',
    async ({ store }) => {
      await store.ensureSubscriber('h');
      for (let i = 0; i < 2; i++) {
        const s = sampleSession();
        await store.create(s, {}, T0);
        await store.close(s.id, 'logout', T0);
      }
      const got = await store.claim('h', 'p1', { now: T0, leaseMs: 5000, limit: 10 });
      const seqs = got.map((r) => r.seq);
      assert.deepEqual(await store.renew('h', 'p1', seqs, T0 + 9000), seqs);
      assert.deepEqual(await store.renew('h', 'p2', seqs, T0 + 99_000), [], 'only the holder renews');
      assert.deepEqual(await store.claim('h', 'p2', { now: T0 + 8999, leaseMs: 5000, limit: 10 }), []);
      const taken = await store.claim('h', 'p2', { now: T0 + 9000, leaseMs: 5000, limit: 10 });
      assert.deepEqual(
        taken.map((r) => [r.seq, r.attempt, r.redelivered]),
        seqs.map((seq) => [seq, 2, true]),
      );
      assert.deepEqual(await store.renew('h', 'p1', seqs, T0 + 20_000), [], 'a lost lease stays lost');
      await store.ack('h', seqs[0]!);
      assert.deepEqual(await store.renew('h', 'p2', seqs, T0 + 20_000), [seqs[1]], 'an acked record is gone');
    },
  ],
  [
    'outbox: release hands back records at once; not started = the same attempt',
    async ({ store }) => {
      await store.ensureSubscriber('q');
      for (let i = 0; i < 3; i++) {
        const s = sampleSession();
        await store.create(s, {}, T0);
        await store.close(s.id, 'logout', T0);
      }
      const [a, b, c] = await store.claim('q', 'p1', { now: T0, leaseMs: 60_000, limit: 10 });
      await store.release('q', 'p2', [b!.seq], { now: T0 }); // not the holder: no effect
      assert.deepEqual(await store.claim('q', 'p2', { now: T0 + 1, leaseMs: 60_000, limit: 10 }), []);
      await store.release('q', 'p1', [a!.seq], { now: T0 + 10, interrupted: true });
      await store.release('q', 'p1', [b!.seq, c!.seq], { now: T0 + 10 });
      const again = await store.claim('q', 'p2', { now: T0 + 10, leaseMs: 60_000, limit: 10 });
      assert.deepEqual(
        again.map((r) => [r.seq, r.attempt, r.redelivered]),
        [
          [a!.seq, 2, true],
          [b!.seq, 1, false],
          [c!.seq, 1, false],
        ],
      );
    },
  ],
  [
    'outbox: stats give each subscriber the close time of its oldest unfinished record',
    async ({ store }) => {
      await store.ensureSubscriber('fast');
      await store.ensureSubscriber('slow');
      for (const at of [T0, T0 + 1000, T0 + 2000]) {
        const s = sampleSession();
        await store.create(s, {}, T0);
        await store.close(s.id, 'logout', at);
      }
      assert.deepEqual((await store.stats()).outboxOldest, { fast: T0, slow: T0 });
      const [first, second] = await store.claim('fast', 'p', { now: T0, leaseMs: 1000, limit: 2 });
      await store.ack('fast', first!.seq);
      assert.deepEqual((await store.stats()).outboxOldest, { fast: T0 + 1000, slow: T0 });
      await store.ack('fast', second!.seq);
      assert.deepEqual((await store.stats()).outboxOldest, { fast: T0 + 2000, slow: T0 });
      const [third] = await store.claim('fast', 'p', { now: T0, leaseMs: 1000, limit: 2 });
      await store.fail('fast', third!.seq, 'gave up', T0);
      assert.deepEqual((await store.stats()).outboxOldest, { slow: T0 }, 'given up is not pending');
    },
  ],
];
