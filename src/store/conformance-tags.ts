import assert from 'node:assert/strict';
import { newToken, type SessionId } from '../core/ids.js';
import { sampleSession, T0, type StoreHarness } from './conformance-harness.js';
import type { SessionStore } from './contract.js';

/** A store that declares session tags (the optional `tag` and `findByTag`). */
export type TaggingStore = SessionStore & Required<Pick<SessionStore, 'tag' | 'findByTag'>>;

type TagCheck = [title: string, run: (store: TaggingStore, h: StoreHarness) => Promise<void>];

const SID = 'oidc-sid:9f86d081:5c3b-a1';
const SUB = 'oidc-sub:9f86d081:alice@example.org';

const sorted = (ids: SessionId[]) => [...ids].sort();

/** Create a session (idle timeout `idle` seconds) and return its id. */
async function live(store: SessionStore, idle = 900): Promise<SessionId> {
  const s = sampleSession({ idleTimeout: idle });
  await store.create(s, {}, T0);
  return s.id;
}

/**
 * The conformance checks of session tags (back-channel logout finds "every session of
 * provider sid X" through them). Run by runStoreConformance for every backend that has
 * `tag` and `findByTag`; skipped, with the reason, for one that has not.
 *
 * @example
 * ```ts
 * for (const [title, run] of TAG_CHECKS) it(title, () => withStore((h) => run(h.store as TaggingStore, h)));
 * ```
 */
export const TAG_CHECKS: TagCheck[] = [
  [
    'tags: tag then findByTag; one tag on two sessions; an unknown tag finds nothing',
    async (store) => {
      const a = await live(store);
      const b = await live(store);
      const other = await live(store);
      assert.equal(await store.tag(a, [SID, SUB], T0), true);
      assert.equal(await store.tag(b, [SUB], T0 + 1), true);
      assert.equal(await store.tag(other, ['unrelated'], T0), true);
      assert.deepEqual(await store.findByTag(SID, T0 + 2), [a]);
      assert.deepEqual(sorted(await store.findByTag(SUB, T0 + 2)), sorted([a, b]));
      assert.equal(await store.tag(a, [SID], T0 + 3), true, 'tagging again is harmless');
      assert.deepEqual(await store.findByTag(SID, T0 + 3), [a]);
      assert.deepEqual(await store.findByTag('never-used', T0), []);
      assert.deepEqual(await store.findByTag('oidc-sid:9f86d081:5c3b-a', T0), [], 'no prefix match');
    },
  ],
  [
    'tags: a closed session is never found again, its neighbours still are',
    async (store) => {
      const a = await live(store);
      const b = await live(store);
      await store.tag(a, [SID], T0);
      await store.tag(b, [SID], T0);
      assert.equal((await store.close(a, 'logout', T0 + 10))?.reason, 'logout');
      assert.deepEqual(await store.findByTag(SID, T0 + 20), [b]);
      await store.close(b, 'logout', T0 + 30);
      assert.deepEqual(await store.findByTag(SID, T0 + 40), []);
      const c = await live(store);
      await store.tag(c, [SID], T0 + 50);
      assert.deepEqual(await store.findByTag(SID, T0 + 60), [c], 'a new session may carry it again');
    },
  ],
  [
    'tags: an expired session is not found, before or after closeExpired',
    async (store) => {
      const short = await live(store, 10);
      const long = await live(store, 3600);
      await store.tag(short, [SID], T0);
      await store.tag(long, [SID], T0);
      assert.deepEqual(sorted(await store.findByTag(SID, T0 + 9_999)), sorted([short, long]));
      assert.deepEqual(await store.findByTag(SID, T0 + 10_000), [long], 'past its deadline, not swept');
      const closed = await store.closeExpired(T0 + 20_000, 100);
      assert.deepEqual(
        closed.map((c) => c.sessionId),
        [short],
      );
      assert.deepEqual(await store.findByTag(SID, T0 + 20_000), [long]);
      assert.equal(await store.tag(short, [SUB], T0 + 20_000), false);
    },
  ],
  [
    'tags: rekey carries the tags to the new id',
    async (store) => {
      const old = await live(store);
      await store.tag(old, [SID, SUB], T0);
      const fresh = newToken().id;
      assert.equal(await store.rekey(old, fresh, {}, { now: T0 + 1 }), true);
      assert.deepEqual(await store.findByTag(SID, T0 + 2), [fresh]);
      assert.deepEqual(await store.findByTag(SUB, T0 + 2), [fresh]);
      assert.equal(await store.tag(old, ['x'], T0 + 2), false, 'the old id is gone');
      assert.equal(await store.tag(fresh, ['x'], T0 + 2), true);
      await store.close(fresh, 'logout', T0 + 3);
      for (const tag of [SID, SUB, 'x']) assert.deepEqual(await store.findByTag(tag, T0 + 4), []);
    },
  ],
  [
    'tags: tagging a missing or expired session is false and leaves nothing behind',
    async (store) => {
      const missing = newToken().id;
      assert.equal(await store.tag(missing, [SID], T0), false);
      const expired = await live(store, 10);
      assert.equal(await store.tag(expired, [SID], T0 + 10_000), false);
      assert.deepEqual(await store.findByTag(SID, T0), []);
    },
  ],
  [
    'tags: limits are refused with SG_ERR_INVALID_TAG and change nothing',
    async (store) => {
      const id = await live(store);
      const refused = { code: 'SG_ERR_INVALID_TAG' };
      for (const bad of ['', 'x'.repeat(257), 'a\nb', 'nul\u0000', 'del\u007f', 'c1\u0085']) {
        await assert.rejects(store.tag(id, ['fine', bad], T0), refused, JSON.stringify(bad));
        await assert.rejects(store.findByTag(bad, T0), refused, JSON.stringify(bad));
      }
      assert.deepEqual(await store.findByTag('fine', T0), [], 'a refused call tags nothing');
      await assert.rejects(store.tag(newToken().id, [''], T0), refused, 'refused even for a missing session');
      const sixteen = Array.from({ length: 16 }, (_, i) => `t${i}`);
      assert.equal(await store.tag(id, ['x'.repeat(256), 'ünïcødé ✓ {odd}%'], T0), true);
      await assert.rejects(store.tag(id, sixteen.slice(0, 15), T0), refused, '17 in all');
      assert.equal(await store.tag(id, sixteen.slice(0, 14), T0), true, '16 in all');
      assert.equal(await store.tag(id, ['t0', 'x'.repeat(256)], T0), true, 'tags it has do not count twice');
      await assert.rejects(store.tag(id, ['t15'], T0), refused);
      assert.deepEqual(await store.findByTag('t15', T0), []);
      assert.deepEqual(await store.findByTag('ünïcødé ✓ {odd}%', T0), [id]);
      assert.deepEqual(await store.findByTag('t13', T0), [id]);
    },
  ],
];
