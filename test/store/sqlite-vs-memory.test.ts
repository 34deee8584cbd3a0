import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { SessionId } from '../../src/core/ids.js';
import { CLOSE_REASONS, SESSION_STATES } from '../../src/core/session-types.js';
import type { ClaimedClose, SessionLimits, SessionPatch, SessionStore } from '../../src/store/contract.js';
import { sampleSession } from '../../src/store/conformance.js';
import { MemoryStore } from '../../src/store/memory/store.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';

// The sqlite store must behave exactly like the reference memory store. Random programs of
// contract calls run against both, and every answer (or error code) must be the same.
//
// Two things are allowed to differ and are normalised away: the seq numbers (closeExpired may
// close due sessions of one second in another order, so the outbox numbers them differently)
// and the order of records within one closeExpired or claim answer.

const T0 = Date.UTC(2026, 0, 1);
const SUBSCRIBERS = ['a', 'b'] as const;

const user = fc.constantFrom<string | null>('u1', 'u2', null);
const limits: fc.Arbitrary<SessionLimits> = fc.record(
  {
    maxSessionsPerUser: fc.integer({ min: 0, max: 3 }),
    onUserLimit: fc.constantFrom('evict_oldest' as const, 'refuse' as const),
    maxConcurrentSessions: fc.integer({ min: 0, max: 6 }),
    maxInProgressPerClientIp: fc.integer({ min: 0, max: 2 }),
    onClientIpLimit: fc.constantFrom('evict_oldest' as const, 'refuse' as const),
  },
  { requiredKeys: [] },
);
const patch: fc.Arbitrary<SessionPatch> = fc.record(
  {
    state: fc.constantFrom(...SESSION_STATES),
    user,
    idleTimeout: fc.integer({ min: 0, max: 30 }),
    lifetimeDeadline: fc.option(
      fc.integer({ min: 0, max: 60_000 }).map((ms) => T0 + ms),
      { nil: null },
    ),
    policyDeadline: fc.constant(null),
    setVariables: fc.dictionary(fc.constantFrom('x', 'y.z'), fc.string({ maxLength: 3 }), { maxKeys: 2 }),
    deleteVariables: fc.array(fc.constantFrom('x', 'session.user.clientip'), { maxLength: 2 }),
    cookies: fc.dictionary(
      fc.constantFrom('p1', 'p2'),
      fc.dictionary(fc.string({ maxLength: 2 }), fc.integer()),
    ),
    touch: fc.boolean(),
  },
  { requiredKeys: [] },
);
const pick = fc.nat(); // an index into the sessions (or records) seen so far
const step = fc.oneof(
  fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 15_000 }) }),
  fc.record({
    op: fc.constant('create' as const),
    user,
    ip: fc.constantFrom('10.0.0.1', '10.0.0.2'),
    state: fc.constantFrom(...SESSION_STATES),
    idle: fc.integer({ min: 0, max: 30 }),
    policyMs: fc.option(fc.integer({ min: 0, max: 20_000 }), { nil: null }),
    limits,
  }),
  fc.record({ op: fc.constant('validate' as const), pick, resolution: fc.constantFrom(0, 1000) }),
  fc.record({
    op: fc.constant('update' as const),
    pick,
    patch,
    version: fc.constantFrom('none', 'current', 'stale'),
    limits: fc.option(limits, { nil: undefined }),
  }),
  fc.record({ op: fc.constant('rekey' as const), pick, patch, version: fc.constantFrom('none', 'stale') }),
  fc.record({ op: fc.constant('close' as const), pick, reason: fc.constantFrom(...CLOSE_REASONS) }),
  fc.record({ op: fc.constant('closeExpired' as const) }),
  fc.record({
    op: fc.constant('claim' as const),
    sub: fc.constantFrom(...SUBSCRIBERS),
    consumer: fc.constantFrom('c1', 'c2'),
    leaseMs: fc.integer({ min: 0, max: 5000 }),
  }),
  fc.record({
    op: fc.constantFrom('ack' as const, 'retry' as const, 'fail' as const),
    sub: fc.constantFrom(...SUBSCRIBERS),
    pick,
    retryMs: fc.integer({ min: 0, max: 5000 }),
  }),
  fc.record({ op: fc.constant('read' as const), pick, user }),
);
type Step = typeof step extends fc.Arbitrary<infer S> ? S : never;

/** One store under test plus the seq it gave each (subscriber, session) it handed out. */
interface Side {
  store: SessionStore;
  seqOf: Map<string, string>;
}

async function outcome(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    // Drop seq everywhere: it is the one field the two stores may number differently.
    return {
      ok: JSON.parse(JSON.stringify((await fn()) ?? null, (k, v: unknown) => (k === 'seq' ? undefined : v))),
    };
  } catch (err) {
    return { error: (err as { code?: string }).code ?? String(err) };
  }
}

const bySession = (a: { sessionId: string }, b: { sessionId: string }) =>
  a.sessionId < b.sessionId ? -1 : 1;

async function apply(
  side: Side,
  s: Step,
  ctx: { now: number; ids: SessionId[]; live: SessionId[]; delivered: string[][] },
) {
  const { store } = side;
  const target = (): SessionId => {
    // Mostly a live session, sometimes any id ever used (closed, moved or never created).
    const n = (s as { pick: number }).pick;
    const from = ctx.live.length && n % 4 !== 0 ? ctx.live : ctx.ids;
    return from[Math.floor(n / 4) % Math.max(1, from.length)] ?? ('0'.repeat(32) as SessionId);
  };
  switch (s.op) {
    case 'advance':
      return null;
    case 'create': {
      const id = ctx.ids[ctx.ids.length - 1]!; // appended by the driver before both sides run
      const policyDeadline = s.policyMs === null ? null : ctx.now + s.policyMs;
      const session = sampleSession({
        id,
        user: s.user,
        clientIp: s.ip,
        state: s.state,
        idleTimeout: s.idle,
        createdAt: ctx.now,
        lastAccessAt: ctx.now,
        policyDeadline,
      });
      return outcome(() => store.create(session, s.limits, ctx.now));
    }
    case 'validate':
      return outcome(() => store.validate(target(), ctx.now, s.resolution));
    case 'update': {
      const current = await store.get(target());
      const expectedVersion =
        s.version === 'none' ? undefined : (current?.version ?? 1) + (s.version === 'stale' ? 7 : 0);
      return outcome(() =>
        store.update(target(), s.patch, { now: ctx.now, expectedVersion, limits: s.limits }),
      );
    }
    case 'rekey': {
      const fresh = ctx.ids[ctx.ids.length - 1]!;
      return outcome(() =>
        store.rekey(target(), fresh, s.patch, {
          now: ctx.now,
          expectedVersion: s.version === 'stale' ? 99 : undefined,
        }),
      );
    }
    case 'close':
      return outcome(() => store.close(target(), s.reason, ctx.now));
    case 'closeExpired':
      return outcome(async () => (await store.closeExpired(ctx.now, 1000)).sort(bySession));
    case 'claim':
      return outcome(async () => {
        const got = await store.claim(s.sub, s.consumer, { now: ctx.now, leaseMs: s.leaseMs, limit: 1000 });
        for (const r of got) side.seqOf.set(`${s.sub}/${r.sessionId}`, r.seq);
        return got.sort(bySession).map((r: ClaimedClose) => ({ ...r, snapshot: r.snapshot.version }));
      });
    case 'ack':
    case 'retry':
    case 'fail': {
      const seen = ctx.delivered[SUBSCRIBERS.indexOf(s.sub)]!;
      const seq = side.seqOf.get(`${s.sub}/${seen[s.pick % Math.max(1, seen.length)]}`);
      if (seq === undefined) return null;
      if (s.op === 'ack') return outcome(() => store.ack(s.sub, seq));
      if (s.op === 'retry') return outcome(() => store.retry(s.sub, seq, ctx.now + s.retryMs));
      return outcome(() => store.fail(s.sub, seq, 'boom', ctx.now));
    }
    case 'read':
      return outcome(async () => {
        const pages = [];
        let cursor: string | null = null;
        do {
          const page = await store.list({ limit: 2, cursor, ...(s.user === null ? {} : { user: s.user }) });
          pages.push(page.sessions);
          cursor = page.nextCursor;
        } while (cursor);
        return {
          get: await store.get(target()),
          byUser: await store.listByUser(s.user ?? 'u1'),
          pages,
          stats: await store.stats(),
        };
      });
  }
}

describe('sqlite store against the memory store (property-based)', () => {
  it('gives the same answers to the same random programs', { timeout: 120_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 60, size: 'max' }), async (steps) => {
        const sides: Side[] = [
          { store: new MemoryStore(), seqOf: new Map() },
          { store: SqliteStore.open(':memory:'), seqOf: new Map() },
        ];
        try {
          for (const side of sides) for (const sub of SUBSCRIBERS) await side.store.ensureSubscriber(sub);
          const ctx = {
            now: T0,
            ids: [] as SessionId[],
            live: [] as SessionId[],
            delivered: SUBSCRIBERS.map(() => [] as string[]),
          };
          for (const [i, s] of steps.entries()) {
            if (s.op === 'advance') ctx.now += s.ms;
            ctx.live = (await sides[0]!.store.list({ limit: 1000 })).sessions.map((r) => r.id);
            if (s.op === 'create' || s.op === 'rekey')
              ctx.ids.push(i.toString(16).padStart(32, '0') as SessionId);
            const [mem, sql] = [await apply(sides[0]!, s, ctx), await apply(sides[1]!, s, ctx)];
            assert.deepEqual(sql, mem, `step ${i}: ${JSON.stringify(s)}`);
            if (s.op === 'claim') {
              const ok = (mem as { ok?: { sessionId: string }[] }).ok ?? [];
              ctx.delivered[SUBSCRIBERS.indexOf(s.sub)]!.push(...ok.map((r) => r.sessionId));
            }
          }
          assert.deepEqual(
            await outcome(() => sides[1]!.store.stats()),
            await outcome(() => sides[0]!.store.stats()),
          );
        } finally {
          for (const side of sides) await side.store.dispose();
        }
      }),
      { numRuns: 300 },
    );
  });
});
