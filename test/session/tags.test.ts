import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SessionClosedEvent } from '../../src/session/dispatcher.js';
import type { SessionStore } from '../../src/store/contract.js';
import { MemoryStore } from '../../src/store/memory/store.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import { testEngine } from './helpers.js';

const SID = 'oidc-sid:9f86d081:5c3b';
const STORES: [string, () => SessionStore][] = [
  ['memory', () => new MemoryStore()],
  ['sqlite', () => SqliteStore.open(':memory:')],
];

for (const [kind, makeStore] of STORES) {
  describe(`engine session tags (${kind} store)`, () => {
    it('closeByTag closes every live session of the tag once, rotated ones too', async () => {
      const { engine } = testEngine({ store: makeStore() });
      const seen: SessionClosedEvent[] = [];
      await engine.onClose('bcl', (e) => void seen.push(e));
      const a = await engine.create({ state: 'allow' });
      const b = await engine.create({ state: 'allow' });
      const other = await engine.create({ state: 'allow' });
      assert.equal(await engine.tag(a.id, [SID, 'oidc-sub:9f86d081:alice']), true);
      assert.equal(await engine.tag(b.id, [SID]), true);
      assert.equal(await engine.tag(other.id, ['oidc-sid:9f86d081:other']), true);
      const rotated = await engine.rotate(a.id); // the logon's token rotation keeps the tags

      assert.equal(await engine.closeByTag(SID, 'logout'), 2);
      assert.equal(await engine.dispatch(), 2);
      assert.deepEqual(seen.map((e) => e.sessionId).sort(), [rotated.id, b.id].sort());
      assert.ok(seen.every((e) => e.reason === 'logout'));
      assert.equal((await engine.validate(other.token)).valid, true, 'another sid is untouched');

      assert.equal(await engine.closeByTag(SID, 'logout'), 0, 'nothing left to close');
      assert.equal(await engine.closeByTag('oidc-sub:9f86d081:alice', 'logout'), 0);
      assert.equal(await engine.dispatch(), 0, 'each session_ended once');
      await engine.stop();
    });

    it('an expired session of the tag is not counted; the sweep ends it with its expiry reason', async () => {
      const { engine, clock } = testEngine({ store: makeStore() });
      const seen: SessionClosedEvent[] = [];
      await engine.onClose('bcl', (e) => void seen.push(e));
      const short = await engine.create({ state: 'allow', timeout: 10 });
      const long = await engine.create({ state: 'allow', timeout: 3600 });
      await engine.tag(short.id, [SID]);
      await engine.tag(long.id, [SID]);
      clock.advance(10_000);
      assert.equal(await engine.closeByTag(SID, 'logout'), 1);
      assert.equal(await engine.sweep(), 1);
      await engine.dispatch();
      assert.deepEqual(
        seen.map((e) => [e.sessionId, e.reason]).sort(),
        [
          [long.id, 'logout'],
          [short.id, 'idle_timeout'],
        ].sort(),
      );
      await engine.stop();
    });

    it('tag refuses what the store refuses; false for a session that is gone', async () => {
      const { engine } = testEngine({ store: makeStore() });
      const s = await engine.create({ state: 'allow' });
      await assert.rejects(engine.tag(s.id, ['']), { code: 'SG_ERR_INVALID_TAG' });
      await assert.rejects(engine.tag(s.id, ['bad\u0007']), { code: 'SG_ERR_INVALID_TAG' });
      await assert.rejects(
        engine.tag(
          s.id,
          Array.from({ length: 17 }, (_, i) => `t${i}`),
        ),
        { code: 'SG_ERR_INVALID_TAG' },
      );
      await assert.rejects(engine.tag(s.token, [SID]), { code: 'SG_ERR_INVALID_SESSION_ID' });
      await assert.rejects(engine.closeByTag('', 'logout'), { code: 'SG_ERR_INVALID_TAG' });
      await engine.remove(s.id);
      assert.equal(await engine.tag(s.id, [SID]), false);
      await engine.stop();
    });
  });
}

describe('engine session tags without store support', () => {
  it('a store without tags is SG_ERR_INTERNAL, naming the store', async () => {
    const inner = new MemoryStore();
    const store = Object.create(inner) as SessionStore;
    Object.defineProperty(store, 'tag', { value: undefined });
    const { engine } = testEngine({ store });
    const s = await engine.create({ state: 'allow' });
    await assert.rejects(engine.tag(s.id, [SID]), /memory session store has no session tags/);
    await assert.rejects(engine.closeByTag(SID, 'logout'), { code: 'SG_ERR_INTERNAL' });
    await engine.stop();
  });
});
