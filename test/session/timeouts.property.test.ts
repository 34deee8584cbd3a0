import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { computeExpiresAt, expiryReason } from '../../src/core/deadline.js';
import { testEngine } from './helpers.js';

const seconds = fc.integer({ min: 0, max: 5000 });
const maybeMs = fc.option(fc.integer({ min: 0, max: 10_000_000 }), { nil: null });

describe('deadline arithmetic (property-based)', () => {
  it('expiresAt is the earliest enabled deadline, and the reason names it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e9 }), seconds, maybeMs, maybeMs, (last, idle, life, policy) => {
        const s = { lastAccessAt: last, idleTimeout: idle, lifetimeDeadline: life, policyDeadline: policy };
        const parts = [idle > 0 ? last + idle * 1000 : null, life, policy].filter(
          (x): x is number => x !== null,
        );
        const at = computeExpiresAt(s);
        assert.equal(at, parts.length ? Math.min(...parts) : null);
        if (at !== null) {
          const reason = expiryReason(s);
          const of = { idle_timeout: last + idle * 1000, lifetime_expired: life, policy_timeout: policy };
          assert.equal(of[reason as keyof typeof of], at);
        }
      }),
    );
  });

  it('the engine agrees with a model under random activity, modify and time', async () => {
    const step = fc.oneof(
      fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 40_000 }) }),
      fc.record({ op: fc.constant('touch' as const) }),
      fc.record({ op: fc.constant('timeout' as const), s: fc.integer({ min: 0, max: 60 }) }),
      fc.record({ op: fc.constant('lifetime' as const), s: fc.integer({ min: 0, max: 200 }) }),
      fc.record({ op: fc.constant('remaining' as const), s: fc.integer({ min: 0, max: 100 }) }),
    );
    await fc.assert(
      fc.asyncProperty(
        seconds.map((s) => s % 60),
        fc.integer({ min: 0, max: 200 }),
        fc.array(step, { maxLength: 25 }),
        async (idle, life, steps) => {
          const { engine, clock } = testEngine({ touchResolutionMs: 0 });
          const t0 = clock.now();
          const { id, token } = await engine.create({ state: 'allow', timeout: idle, lifetime: life });
          const model = { last: t0, idle, deadline: life > 0 ? t0 + life * 1000 : (null as number | null) };
          const alive = () => {
            const now = clock.now();
            return (
              !(model.idle > 0 && model.last + model.idle * 1000 <= now) &&
              !(model.deadline !== null && model.deadline <= now)
            );
          };
          for (const st of steps) {
            if (st.op === 'advance') clock.advance(st.ms);
            const expected = alive();
            if (st.op === 'advance') {
              assert.equal(await engine.exists(token), expected);
              continue;
            }
            if (!expected) {
              assert.equal((await engine.validate(token)).valid, false);
              return;
            }
            if (st.op === 'touch') {
              assert.equal((await engine.validate(token)).valid, true);
              model.last = clock.now();
            } else if (st.op === 'timeout') {
              await engine.modify(id, { timeout: st.s });
              model.idle = st.s;
            } else if (st.op === 'lifetime') {
              await engine.modify(id, { lifetime: st.s });
              model.deadline = st.s > 0 ? t0 + st.s * 1000 : null;
            } else {
              await engine.modify(id, { remaining: st.s });
              model.deadline = clock.now() + st.s * 1000;
            }
            assert.equal(await engine.exists(token), alive());
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
