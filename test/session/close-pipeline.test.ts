import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SessionClosedEvent } from '../../src/session/dispatcher.js';
import { accessProfile } from '../../src/session/profile.js';
import { testEngine } from './helpers.js';

describe('close pipeline', () => {
  it('delivers every close reason once to every subscriber, with the snapshot readable', async () => {
    const profile = accessProfile('default', { maxSessionsPerUser: 1 });
    const { engine, clock } = testEngine({ profiles: [profile] });
    const seen: Record<string, SessionClosedEvent[]> = { a: [], b: [] };
    await engine.onClose('a', (e) => void seen.a!.push(e));
    await engine.onClose('b', (e) => void seen.b!.push(e));

    const removed = await engine.create({ state: 'allow' });
    await engine.data.set(removed.id, 'session.custom.note', 'kept');
    await engine.data.set(removed.id, 'session.logon.last.password', 'pw', { secure: true });
    await engine.remove(removed.id);
    const killed = await engine.create({ state: 'allow' });
    await engine.close(killed.id, 'admin_kill');
    const idle = await engine.create({ state: 'allow', timeout: 10 });
    const policy = await engine.create({ timeout: 900 });
    const first = await engine.create({ state: 'allow', timeout: 0, lifetime: 0 });
    await engine.setUser(first.id, 'u');
    clock.advance(1);
    const second = await engine.create({ state: 'allow', timeout: 0, lifetime: 0 });
    await engine.setUser(second.id, 'u');
    clock.advance(300_000);
    assert.equal(await engine.sweep(), 2);

    assert.equal(await engine.dispatch(), 10);
    assert.equal(await engine.dispatch(), 0, 'nothing twice');
    for (const name of ['a', 'b']) {
      const byId = new Map(seen[name]!.map((e) => [e.sessionId, e]));
      assert.equal(seen[name]!.length, 5);
      assert.equal(byId.get(removed.id)?.reason, 'removed');
      assert.equal(byId.get(killed.id)?.reason, 'admin_kill');
      assert.equal(byId.get(idle.id)?.reason, 'idle_timeout');
      assert.equal(byId.get(policy.id)?.reason, 'policy_timeout');
      assert.equal(byId.get(first.id)?.reason, 'evicted');
      const e = byId.get(removed.id)!;
      assert.equal(e.data.get('session.custom.note'), 'kept');
      assert.equal(e.data.get('session.logon.last.password', { secure: true }), 'pw');
      assert.equal(e.attempt, 1);
      assert.equal(e.redelivered, false);
    }
  });

  it('retries a failing subscriber with backoff, without repeating the others', async () => {
    const { engine, clock } = testEngine();
    let calls = 0;
    let okCalls = 0;
    await engine.onClose(
      'flaky',
      () => {
        calls++;
        if (calls < 3) throw new Error('ticket system down');
      },
      { backoffMs: (n) => n * 1000 },
    );
    await engine.onClose('steady', () => void okCalls++);
    const s = await engine.create({ state: 'allow' });
    await engine.remove(s.id);
    await engine.dispatch();
    assert.deepEqual([calls, okCalls], [1, 1]);
    await engine.dispatch();
    assert.equal(calls, 1, 'not before the backoff');
    clock.advance(1000);
    await engine.dispatch();
    assert.equal(calls, 2);
    clock.advance(2000);
    await engine.dispatch();
    clock.advance(60_000);
    await engine.dispatch();
    assert.deepEqual([calls, okCalls], [3, 1]);
    assert.equal((await engine.store.stats()).outboxPending.flaky, 0);
  });

  it('gives up after maxAttempts and records the failure', async () => {
    const { engine, clock } = testEngine();
    let calls = 0;
    await engine.onClose(
      'broken',
      () => {
        calls++;
        throw new Error('always');
      },
      { maxAttempts: 3, backoffMs: () => 10 },
    );
    const s = await engine.create({ state: 'allow' });
    await engine.remove(s.id);
    for (let i = 0; i < 6; i++) {
      await engine.dispatch();
      clock.advance(10);
    }
    assert.equal(calls, 3);
    const stats = await engine.store.stats();
    assert.equal(stats.outboxFailed.broken, 1);
    assert.equal(stats.outboxPending.broken, 0);
  });

  it('a record claimed by a consumer that died is taken over and flagged redelivered', async () => {
    const { engine, clock } = testEngine();
    const got: SessionClosedEvent[] = [];
    await engine.onClose('p', (e) => void got.push(e), { timeoutMs: 5000 });
    const s = await engine.create({ state: 'allow' });
    await engine.remove(s.id);
    const stolen = await engine.store.claim('p', 'dead-process', {
      now: clock.now(),
      leaseMs: 10_000,
      limit: 10,
    });
    assert.equal(stolen.length, 1);
    await engine.dispatch();
    assert.equal(got.length, 0, 'lease still held');
    clock.advance(10_000);
    await engine.dispatch();
    assert.equal(got.length, 1);
    assert.equal(got[0]?.redelivered, true);
    assert.equal(got[0]?.attempt, 2);
  });

  it('a subscriber that hangs past its timeout counts as failed', async () => {
    const { engine } = testEngine();
    await engine.onClose('hang', () => new Promise(() => undefined), { timeoutMs: 20, maxAttempts: 1 });
    const s = await engine.create({ state: 'allow' });
    await engine.remove(s.id);
    await engine.dispatch();
    assert.equal((await engine.store.stats()).outboxFailed.hang, 1);
  });

  it('refuses an empty or duplicate subscriber name', async () => {
    const { engine } = testEngine();
    await engine.onClose('x', () => undefined);
    await assert.rejects(
      engine.onClose('x', () => undefined),
      { code: 'SG_ERR_UNKNOWN_SUBSCRIBER' },
    );
    await assert.rejects(
      engine.onClose('', () => undefined),
      { code: 'SG_ERR_UNKNOWN_SUBSCRIBER' },
    );
  });

  it('start() sweeps and delivers in the background; stop() waits for the round', async () => {
    const { engine } = testEngine();
    const got: string[] = [];
    await engine.onClose('bg', (e) => void got.push(e.sessionId));
    engine.start({ sweepIntervalMs: 5, dispatchIntervalMs: 5 });
    const s = await engine.create({ state: 'allow' });
    await engine.remove(s.id);
    for (let i = 0; i < 200 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    await engine.stop();
    assert.deepEqual(got, [s.id]);
  });
});
