import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newToken, type SessionId } from '../core/ids.js';
import type { SessionRecord } from '../core/session-types.js';
import { GUARD_CHECKS } from './conformance-guards.js';
import { OUTBOX_CHECKS } from './conformance-outbox.js';
import { TAG_CHECKS, type TaggingStore } from './conformance-tags.js';
import { sampleSession, T0, type StoreHarness } from './conformance-harness.js';
import type { SessionStore, ValidateOutcome } from './contract.js';

export { sampleSession, type StoreHarness } from './conformance-harness.js';

type Check = (
  store: SessionStore,
  id: SessionId,
  now: number,
  resolution: number,
) => Promise<ValidateOutcome>;
const VALIDATE_ENTRIES: [string, Check][] = [
  ['validate', (store, id, now, res) => store.validate(id, now, res)],
  [
    'validateNow, else validate',
    (store, id, now, res) => {
      const at = store.validateNow?.(id, now, res);
      return at ? Promise.resolve(at) : store.validate(id, now, res);
    },
  ],
];

/**
 * The one conformance suite every `SessionStore` backend runs (memory, sqlite, redis, ...).
 * Tests that need a capability the backend does not declare are skipped with the reason.
 *
 * @example
 * ```ts
 * runStoreConformance('memory', async () => ({ store: new MemoryStore() }));
 * ```
 */
export function runStoreConformance(name: string, open: () => Promise<StoreHarness>): void {
  async function withStore(fn: (h: StoreHarness) => Promise<void>): Promise<void> {
    const h = await open();
    try {
      await fn(h);
    } finally {
      await h.store.dispose().catch(() => undefined);
      await h.cleanup?.();
    }
  }
  const test = (title: string, fn: (h: StoreHarness) => Promise<void>) => it(title, () => withStore(fn));

  describe(`SessionStore conformance: ${name}`, () => {
    test('create then get returns the record with version 1 and a computed deadline', async ({ store }) => {
      const s = sampleSession({ lifetimeDeadline: T0 + 60_000 });
      const { record, evicted } = await store.create(s, {}, T0);
      assert.deepEqual(evicted, []);
      assert.equal(record.version, 1);
      assert.equal(record.expiresAt, T0 + 60_000);
      assert.deepEqual(await store.get(s.id), record);
      assert.equal(await store.get(newToken().id), null);
    });

    test('values round-trip exactly (unicode, empty strings, nested cookies)', async ({ store }) => {
      const s = sampleSession({
        user: 'zoë',
        variables: { 'session.custom.x': 'ünïcødé ✓', 'session.custom.empty': '' },
        secure: { 'session.logon.last.password': 'v1.k1.abc' },
        cookies: { vault: { n: 1, list: [1, 'a', null], deep: { ok: true } } },
        sessionCookie: { shared: 'yes' },
      });
      await store.create(s, {}, T0);
      const got = await store.get(s.id);
      assert.deepEqual(got?.variables, s.variables);
      assert.deepEqual(got?.secure, s.secure);
      assert.deepEqual(got?.cookies, s.cookies);
      assert.deepEqual(got?.sessionCookie, s.sessionCookie);
      assert.equal(got?.user, 'zoë');
    });

    // The request path asks validateNow first (engine.check): both entries must behave the same.
    for (const [how, check] of VALIDATE_ENTRIES) {
      test(`${how}: touches only after the resolution and moves the idle deadline`, async ({ store }) => {
        const s = sampleSession({ idleTimeout: 10 });
        await store.create(s, {}, T0);
        const early = await check(store, s.id, T0 + 500, 1000);
        assert.equal(early.status, 'valid');
        assert.equal(early.status === 'valid' && early.record.lastAccessAt, T0);
        const later = await check(store, s.id, T0 + 1500, 1000);
        assert.equal(later.status === 'valid' && later.record.lastAccessAt, T0 + 1500);
        assert.equal(later.status === 'valid' && later.record.expiresAt, T0 + 11_500);
        assert.equal((await store.get(s.id))?.expiresAt, T0 + 11_500);
      });

      test(`${how}: with an infinite resolution never touches (engine.peek), yet closes what expired`, async ({
        store,
      }) => {
        const s = sampleSession({ idleTimeout: 10 });
        await store.create(s, {}, T0);
        const read = await check(store, s.id, T0 + 9_000, Infinity);
        assert.equal(read.status === 'valid' && read.record.lastAccessAt, T0);
        assert.equal((await store.get(s.id))?.lastAccessAt, T0);
        assert.deepEqual(await check(store, s.id, T0 + 10_000, Infinity), {
          status: 'expired',
          reason: 'idle_timeout',
        });
        assert.equal(await store.get(s.id), null);
      });

      test(`${how}: at or past the deadline closes the session with the right reason`, async ({ store }) => {
        const idle = sampleSession({ idleTimeout: 10 });
        const life = sampleSession({ idleTimeout: 100, lifetimeDeadline: T0 + 5000 });
        const policy = sampleSession({ state: 'inprogress', idleTimeout: 100, policyDeadline: T0 + 3000 });
        for (const s of [idle, life, policy]) await store.create(s, {}, T0);
        assert.deepEqual(await check(store, idle.id, T0 + 10_000, 1000), {
          status: 'expired',
          reason: 'idle_timeout',
        });
        assert.deepEqual(await check(store, life.id, T0 + 5000, 1000), {
          status: 'expired',
          reason: 'lifetime_expired',
        });
        assert.deepEqual(await check(store, policy.id, T0 + 4000, 1000), {
          status: 'expired',
          reason: 'policy_timeout',
        });
        assert.deepEqual(await check(store, idle.id, T0 + 10_001, 1000), { status: 'missing' });
        assert.equal(await store.get(idle.id), null);
      });
    }

    test('update applies a patch atomically and bumps the version', async ({ store }) => {
      const s = sampleSession({ state: 'inprogress', policyDeadline: T0 + 300_000 });
      await store.create(s, {}, T0);
      const { record } = await store.update(
        s.id,
        {
          state: 'allow',
          user: 'alice',
          policyDeadline: null,
          setVariables: { 'session.policy.result': 'allowed' },
          deleteVariables: ['session.user.clientip'],
          setSecure: { 'session.logon.last.password': 'ct' },
          cookies: { users: { tries: 1 } },
          sessionCookie: { a: 1 },
        },
        { now: T0 + 1000 },
      );
      assert.equal(record.version, 2);
      assert.equal(record.state, 'allow');
      assert.equal(record.user, 'alice');
      assert.equal(record.expiresAt, T0 + 900_000, 'policy deadline gone; idle counts from last access');
      assert.deepEqual(record.variables, { 'session.policy.result': 'allowed' });
      assert.deepEqual(await store.get(s.id), record);
      assert.deepEqual(
        (await store.listByUser('alice')).map((r) => r.id),
        [s.id],
      );
    });

    test('update with a stale version is refused and changes nothing', async ({ store }) => {
      const s = sampleSession();
      await store.create(s, {}, T0);
      await store.update(s.id, { setVariables: { a: '1' } }, { now: T0, expectedVersion: 1 });
      await assert.rejects(
        store.update(s.id, { setVariables: { a: '2' } }, { now: T0, expectedVersion: 1 }),
        { code: 'SG_ERR_VERSION_CONFLICT' },
      );
      assert.equal((await store.get(s.id))?.variables.a, '1');
    });

    test('update of a missing or expired session is SG_ERR_SESSION_NOT_FOUND', async ({ store }) => {
      await assert.rejects(store.update(newToken().id, {}, { now: T0 }), {
        code: 'SG_ERR_SESSION_NOT_FOUND',
      });
      const s = sampleSession({ idleTimeout: 1 });
      await store.create(s, {}, T0);
      await assert.rejects(store.update(s.id, { setVariables: { a: 'b' } }, { now: T0 + 1000 }), {
        code: 'SG_ERR_SESSION_NOT_FOUND',
      });
      const [rec] = await store.claim('probe', 'c1', { now: T0 + 1000, leaseMs: 1000, limit: 10 });
      assert.equal(rec?.reason, 'idle_timeout');
    });

    test('close deletes the session and appends one close record with the snapshot', async ({ store }) => {
      await store.ensureSubscriber('a');
      const s = sampleSession({ cookies: { p: { k: 'v' } } });
      await store.create(s, {}, T0);
      const rec = await store.close(s.id, 'removed', T0 + 5);
      assert.equal(rec?.reason, 'removed');
      assert.equal(rec?.snapshot.id, s.id);
      assert.deepEqual(rec?.snapshot.cookies, { p: { k: 'v' } });
      assert.equal(await store.get(s.id), null);
      assert.equal(await store.close(s.id, 'removed', T0 + 6), null, 'second close finds nothing');
      const claimed = await store.claim('a', 'c', { now: T0, leaseMs: 1000, limit: 10 });
      assert.equal(claimed.length, 1);
      assert.equal(claimed[0]?.closedAt, T0 + 5);
      assert.equal(claimed[0]?.attempt, 1);
      assert.equal(claimed[0]?.redelivered, false);
    });

    test('close of a session past its deadline records the expiry reason', async ({ store }) => {
      await store.ensureSubscriber('e');
      const s = sampleSession({ idleTimeout: 10 });
      await store.create(s, {}, T0);
      const rec = await store.close(s.id, 'removed', T0 + 10_000);
      assert.equal(rec?.reason, 'idle_timeout');
    });

    test('rekey moves the session to a new id', async ({ store }) => {
      const s = sampleSession({ user: 'bob' });
      await store.create(s, {}, T0);
      const fresh = newToken().id;
      assert.equal(await store.rekey(s.id, fresh, { setSecure: { k: 'resealed' } }, { now: T0 }), true);
      assert.equal(await store.get(s.id), null);
      assert.equal((await store.get(fresh))?.user, 'bob');
      assert.equal((await store.get(fresh))?.secure.k, 'resealed');
      assert.deepEqual(
        (await store.listByUser('bob')).map((r) => r.id),
        [fresh],
      );
      assert.equal(await store.rekey(s.id, newToken().id, {}, { now: T0 }), false);
    });

    test('closeExpired closes exactly the due sessions, each once, with reasons', async ({ store }) => {
      const due: SessionId[] = [];
      for (let i = 0; i < 30; i++) {
        const s = sampleSession({ idleTimeout: 10 + i }); // due at T0 + 10s .. T0 + 39s
        await store.create(s, {}, T0);
        if (10 + i <= 20) due.push(s.id);
      }
      const forever = sampleSession({ idleTimeout: 0 });
      await store.create(forever, {}, T0);
      const first = await store.closeExpired(T0 + 20_000, 5);
      assert.equal(first.length, 5);
      const rest = await store.closeExpired(T0 + 20_000, 1000);
      const closed = [...first, ...rest].map((r) => r.sessionId).sort();
      assert.deepEqual(closed, [...due].sort());
      assert.ok([...first, ...rest].every((r) => r.reason === 'idle_timeout'));
      assert.deepEqual(await store.closeExpired(T0 + 20_000, 1000), []);
      assert.equal((await store.stats()).sessions, 20);
      assert.ok(await store.get(forever.id));
    });

    test('closeExpired honours a deadline moved by a touch', async ({ store }) => {
      const s = sampleSession({ idleTimeout: 10 });
      await store.create(s, {}, T0);
      await store.validate(s.id, T0 + 9000, 1000);
      assert.deepEqual(await store.closeExpired(T0 + 10_000, 100), []);
      const closed = await store.closeExpired(T0 + 19_000, 100);
      assert.deepEqual(
        closed.map((c) => c.sessionId),
        [s.id],
      );
    });

    test('per-user limit evicts the oldest sessions first', async ({ store }) => {
      const ids: SessionId[] = [];
      for (let i = 0; i < 3; i++) {
        const s = sampleSession({ user: 'carol', createdAt: T0 + i, lastAccessAt: T0 + i });
        ids.push(s.id);
        await store.create(s, { maxSessionsPerUser: 3 }, T0 + i);
      }
      const s4 = sampleSession({ user: 'carol', createdAt: T0 + 10, lastAccessAt: T0 + 10 });
      const { evicted } = await store.create(
        s4,
        { maxSessionsPerUser: 2, onUserLimit: 'evict_oldest' },
        T0 + 10,
      );
      assert.deepEqual(evicted, [ids[0], ids[1]]);
      assert.deepEqual(
        (await store.listByUser('carol')).map((r) => r.id),
        [ids[2], s4.id],
      );
      await store.ensureSubscriber('x');
      const recs = await store.claim('x', 'c', { now: T0, leaseMs: 10, limit: 10 });
      assert.deepEqual(
        recs.map((r) => [r.sessionId, r.reason]),
        [
          [ids[0], 'evicted'],
          [ids[1], 'evicted'],
        ],
      );
    });

    test('per-user limit with refuse rejects and leaves the store unchanged', async ({ store }) => {
      const a = sampleSession({ user: 'dave' });
      await store.create(a, { maxSessionsPerUser: 1, onUserLimit: 'refuse' }, T0);
      const b = sampleSession({ user: 'dave' });
      await assert.rejects(store.create(b, { maxSessionsPerUser: 1, onUserLimit: 'refuse' }, T0), {
        code: 'SG_ERR_USER_LIMIT_REACHED',
      });
      assert.equal(await store.get(b.id), null);
      assert.equal((await store.stats()).sessions, 1);
    });

    test('per-user limit applies when a session gets its user by update', async ({ store }) => {
      const a = sampleSession({ user: 'erin' });
      const b = sampleSession({ user: null, createdAt: T0 + 1 });
      await store.create(a, {}, T0);
      await store.create(b, {}, T0);
      const { evicted } = await store.update(
        b.id,
        { user: 'erin' },
        { now: T0 + 2, limits: { maxSessionsPerUser: 1 } },
      );
      assert.deepEqual(evicted, [a.id]);
      assert.equal(await store.get(a.id), null);
    });

    test('max concurrent sessions and in-progress per client address refuse', async ({ store }) => {
      await store.create(sampleSession(), { maxConcurrentSessions: 2 }, T0);
      await store.create(sampleSession(), { maxConcurrentSessions: 2 }, T0);
      await assert.rejects(store.create(sampleSession(), { maxConcurrentSessions: 2 }, T0), {
        code: 'SG_ERR_CONCURRENCY_LIMIT_REACHED',
      });
      const ip = { clientIp: '192.0.2.7', state: 'inprogress' as const };
      await store.create(sampleSession(ip), { maxInProgressPerClientIp: 1 }, T0);
      await assert.rejects(store.create(sampleSession(ip), { maxInProgressPerClientIp: 1 }, T0), {
        code: 'SG_ERR_CLIENT_IP_LIMIT_REACHED',
      });
      await store.create(sampleSession({ ...ip, state: 'allow' }), { maxInProgressPerClientIp: 1 }, T0);
    });

    for (const [title, run] of GUARD_CHECKS) test(title, run);

    test('list pages through everything with a cursor and filters', async ({ store }) => {
      const made = new Set<string>();
      for (let i = 0; i < 25; i++) {
        const s = sampleSession({ user: i % 2 ? 'odd' : 'even', state: i % 5 ? 'allow' : 'inprogress' });
        made.add(s.id);
        await store.create(s, {}, T0);
      }
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page = await store.list({ limit: 7, cursor });
        seen.push(...page.sessions.map((s: SessionRecord) => s.id));
        cursor = page.nextCursor;
      } while (cursor);
      assert.equal(seen.length, 25);
      assert.deepEqual(new Set(seen), made);
      const odd = await store.list({ user: 'odd', limit: 100 });
      assert.equal(odd.sessions.length, 12);
      const inprog = await store.list({ state: 'inprogress', limit: 100 });
      assert.equal(inprog.sessions.length, 5);
      assert.equal((await store.list({ clientIp: '10.0.0.1' })).sessions.length, 25);
    });

    test('outbox: each subscriber gets each record once; ack is final', async ({ store }) => {
      await store.ensureSubscriber('plugin-a');
      await store.ensureSubscriber('plugin-b');
      const ids: SessionId[] = [];
      for (let i = 0; i < 5; i++) {
        const s = sampleSession();
        ids.push(s.id);
        await store.create(s, {}, T0);
        await store.close(s.id, 'logout', T0);
      }
      for (const sub of ['plugin-a', 'plugin-b']) {
        const got = await store.claim(sub, 'p1', { now: T0, leaseMs: 1000, limit: 3 });
        const more = await store.claim(sub, 'p1', { now: T0, leaseMs: 1000, limit: 10 });
        assert.deepEqual(
          [...got, ...more].map((r) => r.sessionId),
          ids,
        );
        for (const r of [...got, ...more]) await store.ack(sub, r.seq);
        assert.deepEqual(await store.claim(sub, 'p1', { now: T0 + 10_000, leaseMs: 1000, limit: 10 }), []);
      }
      const stats = await store.stats();
      assert.equal(stats.outboxPending['plugin-a'], 0);
    });

    test('outbox: an expired lease is taken over and flagged redelivered', async ({ store }) => {
      await store.ensureSubscriber('s');
      const s = sampleSession();
      await store.create(s, {}, T0);
      await store.close(s.id, 'admin_kill', T0);
      const [first] = await store.claim('s', 'dead', { now: T0, leaseMs: 5000, limit: 10 });
      assert.equal(first?.redelivered, false);
      assert.deepEqual(await store.claim('s', 'alive', { now: T0 + 4999, leaseMs: 5000, limit: 10 }), []);
      const [again] = await store.claim('s', 'alive', { now: T0 + 5000, leaseMs: 5000, limit: 10 });
      assert.equal(again?.sessionId, s.id);
      assert.equal(again?.redelivered, true);
      assert.equal(again?.attempt, 2);
      await store.ack('s', again!.seq);
      assert.deepEqual(await store.claim('s', 'alive', { now: T0 + 99_999, leaseMs: 5000, limit: 10 }), []);
    });

    test('outbox: retry offers the record again at the given time; fail gives up', async ({ store }) => {
      await store.ensureSubscriber('r');
      for (let i = 0; i < 2; i++) {
        const s = sampleSession();
        await store.create(s, {}, T0);
        await store.close(s.id, 'removed', T0);
      }
      const [a, b] = await store.claim('r', 'c', { now: T0, leaseMs: 60_000, limit: 10 });
      await store.retry('r', a!.seq, T0 + 2000);
      assert.deepEqual(await store.claim('r', 'c', { now: T0 + 1999, leaseMs: 60_000, limit: 10 }), []);
      const [again] = await store.claim('r', 'c', { now: T0 + 2000, leaseMs: 60_000, limit: 10 });
      assert.equal(again?.seq, a!.seq);
      assert.equal(again?.attempt, 2);
      assert.equal(again?.redelivered, false, 'a retry after a reported failure is not a crash redelivery');
      await store.fail('r', b!.seq, 'boom', T0);
      await store.ack('r', a!.seq);
      const stats = await store.stats();
      assert.equal(stats.outboxFailed.r, 1);
      assert.equal(stats.outboxPending.r, 0);
    });

    for (const [title, run] of OUTBOX_CHECKS) test(title, run);

    for (const [title, run] of TAG_CHECKS) {
      it(title, (t) =>
        withStore(async (h) => {
          if (!h.store.tag || !h.store.findByTag) return void t.skip(`${name} has no session tags`);
          await run(h.store as TaggingStore, h);
        }),
      );
    }

    test('stats count sessions by state', async ({ store }) => {
      await store.create(sampleSession({ state: 'inprogress' }), {}, T0);
      await store.create(sampleSession({ state: 'allow' }), {}, T0);
      await store.create(sampleSession({ state: 'allow' }), {}, T0);
      const st = await store.stats();
      assert.equal(st.sessions, 3);
      assert.deepEqual(st.byState, { inprogress: 1, allow: 2, deny: 0, redirect: 0 });
    });

    describe('durability', () => {
      it('sessions and undelivered close records survive reopening', async (t) => {
        const h = await open();
        if (!h.store.capabilities.durable || !h.reopen) {
          await h.store.dispose();
          await h.cleanup?.();
          t.skip(`${name} does not declare the durable capability`);
          return;
        }
        try {
          await h.store.ensureSubscriber('d');
          const keep = sampleSession({ user: 'frank', variables: { v: '1' } });
          const gone = sampleSession();
          await h.store.create(keep, {}, T0);
          await h.store.create(gone, {}, T0);
          await h.store.close(gone.id, 'logout', T0);
          const store = await h.reopen();
          h.store = store;
          assert.deepEqual((await store.get(keep.id))?.variables, { v: '1' });
          const [rec] = await store.claim('d', 'c', { now: T0, leaseMs: 100, limit: 10 });
          assert.equal(rec?.sessionId, gone.id);
        } finally {
          await h.store.dispose().catch(() => undefined);
          await h.cleanup?.();
        }
      });
    });
  });
}
