import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/core/clock.js';
import type { Logger } from '../../src/core/logger.js';
import type { SessionClosedEvent } from '../../src/session/dispatcher.js';
import { SessionEngine } from '../../src/session/engine.js';
import { Keyring } from '../../src/session/keyring.js';
import { MemoryStore } from '../../src/store/memory/store.js';
import { closeSessions } from './helpers.js';

/** A logger that keeps what it is given, to assert on warn lines. */
function recordingLogger(): Logger & { lines: { level: string; fields: object; message: string }[] } {
  const lines: { level: string; fields: object; message: string }[] = [];
  const at = (level: string) => (fields: object, message: string) =>
    void lines.push({ level, fields, message });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

/** Two gateway processes' engines on one store and one clock. */
function twoEngines(logger?: Logger) {
  const store = new MemoryStore();
  const clock = new ManualClock();
  const keyring = Keyring.ephemeral();
  const make = () => new SessionEngine({ store, keyring, clock, ...(logger ? { logger } : {}) });
  return { store, clock, a: make(), b: make() };
}

describe('close pipeline leases', () => {
  it('a batch that outlives the lease is never delivered twice by two live processes', async () => {
    const { clock, a, b } = twoEngines();
    const seen: SessionClosedEvent[] = [];
    // In process A session_ended takes 0.8 s, and while A works process B keeps polling the
    // outbox and delivers what it gets (only A's time is modelled: B's passes alongside).
    await a.onClose('slow', async (e) => {
      seen.push(e);
      clock.advance(800);
      await b.dispatch();
    });
    await b.onClose('slow', (e) => void seen.push(e));
    const ids = await closeSessions(a, 151);
    await a.dispatch();
    while ((await b.dispatch()) + (await a.dispatch()) > 0);
    const ended = seen.map((e) => e.sessionId);
    const twice = ended.filter((id, i) => ended.indexOf(id) !== i);
    assert.deepEqual(twice, [], `${twice.length} sessions got session_ended twice`);
    assert.deepEqual(new Set(ended), new Set(ids));
    assert.ok(seen.every((e) => !e.redelivered && e.attempt === 1));
  });

  it('a takeover is flagged redelivered and logged with subscriber and session', async () => {
    const logger = recordingLogger();
    const { store, clock, a } = twoEngines(logger);
    const got: SessionClosedEvent[] = [];
    await a.onClose('audit', (e) => void got.push(e));
    const [id] = await closeSessions(a, 1);
    await store.claim('audit', 'a-process-that-died', { now: clock.now(), leaseMs: 5000, limit: 10 });
    clock.advance(5000);
    await a.dispatch();
    assert.equal(got[0]?.redelivered, true);
    const warn = logger.lines.find((l) => l.level === 'warn' && /taken over/.test(l.message));
    assert.ok(warn, `no warn line about the takeover: ${JSON.stringify(logger.lines)}`);
    assert.deepEqual(
      {
        subscriber: (warn.fields as Record<string, unknown>).subscriber,
        sessionId: (warn.fields as Record<string, unknown>).sessionId,
      },
      { subscriber: 'audit', sessionId: id },
    );
  });

  it('claims under a lease of a few seconds, renewed while the handler runs', async () => {
    const { store, clock, a } = twoEngines();
    let release!: () => void;
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    await a.onClose(
      'vault',
      () =>
        new Promise<void>((r) => {
          release = r;
          started();
        }),
      { timeoutMs: 600_000 },
    );
    await closeSessions(a, 1);
    const delivering = a.dispatch();
    await running;
    // Anyone may take the record over once it has gone unrenewed for a few seconds.
    const probe = () => store.claim('vault', 'probe', { now: clock.now() + 10_000, leaseMs: 1, limit: 1 });
    const stolen = await probe();
    assert.equal(stolen.length, 1, 'the lease is not a few seconds long');
    release();
    await delivering;
  });

  it('the holder renews the lease while a handler runs longer than it: nobody takes over', async () => {
    const store = new WatchedStore();
    const clock = new ManualClock();
    const engine = new SessionEngine({
      store,
      clock,
      keyring: Keyring.ephemeral(),
      closePipeline: { leaseMs: 5000, heartbeatMs: 5 },
    });
    let release!: () => void;
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    await engine.onClose(
      'vault',
      () =>
        new Promise<void>((r) => {
          release = r;
          started();
        }),
      { timeoutMs: 600_000 },
    );
    await closeSessions(engine, 1);
    const delivering = engine.dispatch();
    await running;
    for (let i = 0; i < 3; i++) {
      clock.advance(3000);
      await store.nextRenew(2000);
    }
    // 9 s after the claim, past a 5 s lease that was never renewed.
    assert.deepEqual(await store.claim('vault', 'probe', { now: clock.now(), leaseMs: 1, limit: 1 }), []);
    release();
    await delivering;
    assert.equal((await store.stats()).outboxPending.vault, 0);
  });
});

/** A memory store that reports each lease renewal. */
class WatchedStore extends MemoryStore {
  private waiting: (() => void)[] = [];

  override async renew(
    subscriber: string,
    consumer: string,
    seqs: string[],
    until: number,
  ): Promise<string[]> {
    const kept = await super.renew(subscriber, consumer, seqs, until);
    for (const wake of this.waiting.splice(0)) wake();
    return kept;
  }

  /** Resolves at the next renewal; fails after `boundMs` without one. */
  nextRenew(boundMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no lease renewal within ${boundMs} ms`)), boundMs);
      this.waiting.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
