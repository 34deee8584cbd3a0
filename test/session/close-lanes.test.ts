import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/core/clock.js';
import type { SessionClosedEvent } from '../../src/session/dispatcher.js';
import { SessionEngine } from '../../src/session/engine.js';
import { Keyring } from '../../src/session/keyring.js';
import { MemoryStore } from '../../src/store/memory/store.js';
import { closeSessions } from './helpers.js';

/** Resolves when `check()` holds, tested after every `poke`; fails after `boundMs`. */
function until(what: string, boundMs: number): { poke: (ok: boolean) => void; done: Promise<void> } {
  let poke!: (ok: boolean) => void;
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: not within ${boundMs} ms`)), boundMs);
    poke = (ok) => {
      if (!ok) return;
      clearTimeout(timer);
      resolve();
    };
  });
  return { poke, done };
}

const hangForever = () => new Promise<void>(() => undefined);

describe('close pipeline: independent subscribers and shutdown', () => {
  it('a subscriber that hangs does not hold back the others', async () => {
    const clock = new ManualClock();
    const engine = new SessionEngine({ store: new MemoryStore(), clock, keyring: Keyring.ephemeral() });
    const audit: string[] = [];
    const all = until('the audit subscriber to get all 20 records', 5000);
    await engine.onClose('plugin:stuck', hangForever, { timeoutMs: 600_000 });
    await engine.onClose('audit', (e) => {
      audit.push(e.sessionId);
      all.poke(audit.length === 20);
    });
    const ids = await closeSessions(engine, 20);
    void engine.dispatch();
    await all.done;
    assert.deepEqual(audit, ids, 'in close order, once each');
    // The last ack follows its handler: wait for it, boundedly.
    let stats = await engine.store.stats();
    for (let i = 0; i < 1000 && stats.outboxPending.audit !== 0; i++) {
      await new Promise(setImmediate);
      stats = await engine.store.stats();
    }
    assert.equal(stats.outboxPending.audit, 0);
    assert.equal(stats.outboxPending['plugin:stuck'], 20);
    assert.equal(stats.outboxOldest['plugin:stuck'], clock.now());
    await engine.stop({ graceMs: 0 });
  });

  it('stop() is bounded by its grace period and hands back what is undelivered', async () => {
    const store = new MemoryStore();
    const clock = new ManualClock();
    const keyring = Keyring.ephemeral();
    const first = new SessionEngine({ store, clock, keyring });
    const holding = until('the hanging handler to start', 5000);
    await first.onClose('plugin:stuck', () => (holding.poke(true), hangForever()), { timeoutMs: 600_000 });
    const ids = await closeSessions(first, 3);
    first.start({ dispatchIntervalMs: 5 });
    await holding.done;
    const stopped = until('stop() to return', 2000);
    void first.stop({ graceMs: 20 }).then(() => stopped.poke(true));
    await stopped.done;

    // The next start (or another process) takes them at once: no lease to wait out.
    const next = new SessionEngine({ store, clock, keyring });
    const got: SessionClosedEvent[] = [];
    await next.onClose('plugin:stuck', (e) => void got.push(e));
    assert.equal(await next.dispatch(), 3);
    assert.deepEqual(
      got.map((e) => [e.sessionId, e.attempt, e.redelivered]),
      [
        [ids[0], 2, true], // its handler was cut off: it may have run
        [ids[1], 1, false],
        [ids[2], 1, false],
      ],
    );
  });

  it('a delivery the store fails to record is recorded on a later try, never delivered twice', async () => {
    const store = new MemoryStore();
    let ackFailures = 2; // a short store outage, as during a failover
    const ack = store.ack.bind(store);
    store.ack = (subscriber, seq) =>
      ackFailures-- > 0 ? Promise.reject(new Error('store unavailable')) : ack(subscriber, seq);
    const engine = new SessionEngine({
      store,
      clock: new ManualClock(),
      keyring: Keyring.ephemeral(),
      closePipeline: { ackRetryMs: 1 },
    });
    const got: SessionClosedEvent[] = [];
    await engine.onClose('plugin:x', (e) => void got.push(e), { backoffMs: () => 0 });
    await closeSessions(engine, 1);
    await engine.dispatch();
    await engine.dispatch();
    assert.equal(got.length, 1, 'delivered once');
    assert.equal((await store.stats()).outboxPending['plugin:x'], 0, 'and recorded');
  });

  it('when it cannot be recorded at all, the next delivery, after the lease, says redelivered', async () => {
    const store = new MemoryStore();
    const clock = new ManualClock();
    let storeDown = true;
    const ack = store.ack.bind(store);
    store.ack = (subscriber, seq) =>
      storeDown ? Promise.reject(new Error('store unavailable')) : ack(subscriber, seq);
    const engine = new SessionEngine({
      store,
      clock,
      keyring: Keyring.ephemeral(),
      closePipeline: { ackRetryMs: 1, leaseMs: 5000 },
    });
    const got: SessionClosedEvent[] = [];
    await engine.onClose('plugin:x', (e) => void got.push(e), { backoffMs: () => 0 });
    await closeSessions(engine, 1);
    await engine.dispatch();
    await engine.dispatch();
    assert.equal(got.length, 1, 'not retried as if the handler had failed');
    storeDown = false;
    clock.advance(5001);
    await engine.dispatch();
    assert.deepEqual(
      got.map((e) => [e.attempt, e.redelivered]),
      [
        [1, false],
        [2, true],
      ],
    );
    assert.equal((await store.stats()).outboxPending['plugin:x'], 0);
  });
});
