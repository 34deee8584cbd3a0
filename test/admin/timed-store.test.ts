import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { timedStore } from '../../src/admin/timed-store.js';
import { sampleSession } from '../../src/store/conformance.js';
import type { SessionStore } from '../../src/store/contract.js';
import { MemoryStore } from '../../src/store/memory/store.js';

const T0 = Date.UTC(2026, 0, 1);

describe('timedStore', () => {
  it('times validateNow as validate and answers what the store answers', async () => {
    const seen: string[] = [];
    const inner = new MemoryStore();
    const store = timedStore(inner, (op) => seen.push(op));
    const s = sampleSession({ lastAccessAt: T0 });
    await store.create(s, {}, T0);
    const now = store.validateNow?.(s.id, T0 + 1500, 1000);
    assert.ok(now?.status === 'valid' && now.record.lastAccessAt === T0 + 1500, 'the touch was made');
    assert.deepEqual(seen, ['create', 'validate']);
    await store.dispose();
  });

  it('times the optional tag methods when the store has them', async () => {
    const seen: string[] = [];
    const inner = new MemoryStore();
    const store = timedStore(inner, (op) => seen.push(op));
    const s = sampleSession();
    await store.create(s, {}, T0);
    assert.equal(await store.tag?.(s.id, ['t'], T0), true);
    assert.deepEqual(await store.findByTag?.('t', T0), [s.id]);
    assert.deepEqual(seen, ['create', 'tag', 'findByTag']);
    const without: SessionStore = Object.create(inner) as SessionStore;
    Object.defineProperty(without, 'tag', { value: undefined });
    assert.equal(timedStore(without, () => undefined).tag, undefined);
    await store.dispose();
  });

  it('has no validateNow when the store has none (callers then use validate)', async () => {
    const inner = new MemoryStore();
    const withoutNow: SessionStore = Object.create(inner) as SessionStore;
    Object.defineProperty(withoutNow, 'validateNow', { value: undefined });
    const store = timedStore(withoutNow, () => undefined);
    assert.equal(store.validateNow, undefined);
    await inner.dispose();
  });
});
