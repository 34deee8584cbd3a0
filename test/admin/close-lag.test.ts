// One close subscriber that hangs while the others keep delivering must show on its own: in
// /readyz (behind, then stuck), the stats API and the metrics. Before, only the backlog of all
// subscribers together was watched, and the others' progress hid the hanging one.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/core/clock.js';
import { startTestAdmin, type AdminFixture } from './helpers.js';

/** Close one session; dispatch() then delivers its audit record, never the failing one's. */
async function closeOne(fx: AdminFixture): Promise<void> {
  const { id } = await fx.engine.create({ state: 'allow' });
  await fx.engine.close(id, 'admin_kill');
}

function metric(text: string, line: string): number {
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  assert.ok(found, `no ${line} in the metrics`);
  return Number(found.slice(line.length + 1));
}

describe('a close subscriber that lags', () => {
  it('is named behind, then stuck, while the other subscribers keep delivering', async () => {
    const clock = new ManualClock(Date.now());
    const fx = await startTestAdmin({ clock, stuckAfterSeconds: 120, behindAfterSeconds: 60 });
    try {
      // Fails every time: its records wait for their retries (backoff from 1 s up to 5 min).
      await fx.engine.onClose('plugin:broken', () => Promise.reject(new Error('plugin down')), {
        maxAttempts: 100,
      });
      await closeOne(fx);
      await fx.engine.dispatch();
      const fresh = await fx.call('GET', '/readyz', undefined, { token: null });
      assert.equal(fresh.status, 200);
      assert.deepEqual(fresh.body.close_subscribers_behind, []);

      // Two and a half minutes in which sessions keep closing and the audit trail keeps
      // delivering them: probes see its backlog go up and down, so the backlog of all the
      // subscribers together keeps shrinking now and then although one of them never delivers.
      for (let s = 0; s < 150; s += 10) {
        clock.advance(10_000);
        if (s % 20 === 0) await closeOne(fx);
        else await fx.engine.dispatch();
        await fx.call('GET', '/readyz', undefined, { token: null });
        if (s === 70) {
          const behind = await fx.call('GET', '/readyz', undefined, { token: null });
          assert.equal(behind.status, 200, 'behind is a warning, not unready');
          assert.deepEqual(behind.body.close_subscribers_behind, ['plugin:broken']);
          const stats = await fx.call('GET', '/api/v1/stats');
          const lag = stats.body.close_pipeline.subscribers;
          assert.equal(lag.audit.behind, false);
          assert.equal(lag.audit.pending, 0);
          assert.equal(lag['plugin:broken'].behind, true);
          assert.ok(lag['plugin:broken'].oldest_age_seconds >= 60, JSON.stringify(lag));
        }
      }
      const stuck = await fx.call('GET', '/readyz', undefined, { token: null });
      assert.equal(stuck.status, 503, JSON.stringify(stuck.body));
      assert.deepEqual(stuck.body.close_subscribers_stuck, ['plugin:broken']);

      const text = await (await fetch(`${fx.url}/metrics`)).text();
      assert.equal(metric(text, 'sessiongate_close_subscriber_behind{subscriber="plugin:broken"}'), 1);
      assert.equal(metric(text, 'sessiongate_close_subscriber_behind{subscriber="audit"}'), 0);
      assert.ok(metric(text, 'sessiongate_close_oldest_age_seconds{subscriber="plugin:broken"}') >= 150);
      assert.equal(metric(text, 'sessiongate_close_oldest_age_seconds{subscriber="audit"}'), 0);
      assert.equal(metric(text, 'sessiongate_close_pipeline_stuck'), 1);
    } finally {
      await fx.close();
    }
  });
});
