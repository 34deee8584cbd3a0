import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { Watchdog } from '../../src/core/watchdog.js';

describe('Watchdog', () => {
  it('passes on what settles in time and fails what does not, within one tick of its deadline', async () => {
    mock.timers.enable({ apis: ['setInterval'] });
    try {
      let now = 0;
      const dog = new Watchdog(10, () => now);
      const quick = dog.within(Promise.resolve('done'), 100, () => new Error('late'));
      assert.equal(await quick, 'done');
      const failing = dog.within(Promise.reject(new Error('own error')), 100, () => new Error('late'));
      await assert.rejects(failing, /own error/);

      const settled: string[] = [];
      const never = dog.within(new Promise(() => undefined), 100, () => new Error('ran past 100 ms'));
      never.catch((err: Error) => settled.push(err.message));
      now = 99;
      mock.timers.tick(10);
      await Promise.resolve();
      assert.deepEqual(settled, [], 'not yet due');
      now = 100;
      mock.timers.tick(10);
      await Promise.resolve();
      assert.deepEqual(settled, ['ran past 100 ms']);
    } finally {
      mock.timers.reset();
    }
  });
});
