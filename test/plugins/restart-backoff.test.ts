import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AdminMetrics } from '../../src/admin/metrics.js';
import { ManualClock } from '../../src/core/clock.js';
import { MemoryStore } from '../../src/store/memory/store.js';
import { PluginHost } from '../../src/plugins/host.js';
import { RestartBackoff } from '../../src/plugins/runtimes/backoff.js';
import { ProcessRuntime } from '../../src/plugins/runtimes/process.js';
import { SpsPythonRuntime } from '../../src/plugins/runtimes/sps-python.js';
import type { PluginRuntime } from '../../src/plugins/runtime.js';
import { testEngine } from '../session/helpers.js';
import { recordingLogger } from './helpers.js';

const fixture = (p: string) => fileURLToPath(new URL(`./fixtures/${p}`, import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sg-backoff-'));
const hosts: PluginHost[] = [];
after(async () => {
  for (const h of hosts) await h.close();
  rmSync(dir, { recursive: true, force: true });
});

type Logger = ReturnType<typeof recordingLogger>;
const backoff = { baseMs: 250, maxMs: 30_000, stableMs: 10_000 };

async function setup(make: (logger: Logger, clock: ManualClock) => PluginRuntime) {
  const logger = recordingLogger();
  const clock = new ManualClock();
  const { engine } = testEngine({ logger });
  const runtime = make(logger, clock);
  const host = new PluginHost(engine, [{ name: 'p', runtime, timeoutMs: 30_000 }], logger);
  hosts.push(host);
  const { id } = await engine.create();
  const call = (act: Record<string, unknown> = {}) =>
    host.authenticate('p', id, { key_value_pairs: { act: JSON.stringify(act) } });
  const cannotStayUp = () =>
    logger.lines.filter((l) => l.message === 'plugin process cannot stay up; next start delayed');
  return { call, clock, runtime, cannotStayUp, host };
}

describe('a plugin process that exits at once is restarted with backoff', () => {
  it('20 calls in a row start it once; each backoff step allows one more start; warned with name and count', async () => {
    const startsFile = join(dir, 'starts');
    writeFileSync(startsFile, '');
    const starts = () => readFileSync(startsFile, 'utf8').split('\n').filter(Boolean).length;
    const { call, clock, runtime, cannotStayUp } = await setup(
      (logger, clock) =>
        new ProcessRuntime(
          'aa',
          'p',
          [process.execPath, fixture('process-exits.mjs')],
          { starts_file: startsFile },
          logger,
          undefined,
          { clock, backoff },
        ),
    );
    for (let i = 0; i < 20; i++) assert.deepEqual(await call(), { verdict: 'DENY', failure: 'crash' });
    assert.equal(starts(), 1, 'calls while it is down fail at once, without a start');
    assert.equal(runtime.status?.().state, 'down');
    assert.equal(runtime.status?.().quick_exits, 1);

    // Each quick exit doubles the pause: 250, 500, 1000 ms.
    for (const [pause, startsAfter] of [
      [250, 2],
      [500, 3],
      [1000, 4],
    ] as const) {
      clock.advance(pause - 1);
      await call();
      assert.equal(starts(), startsAfter - 1, `not before ${pause} ms`);
      clock.advance(1);
      await call();
      assert.equal(starts(), startsAfter, `a start after ${pause} ms`);
    }
    const warned = cannotStayUp();
    assert.equal(warned.length, 4);
    assert.equal(warned.at(-1)?.fields.plugin, 'p');
    assert.equal(warned.at(-1)?.fields.restarts, 3);
    assert.equal(warned.at(-1)?.fields.quickExits, 4);
    assert.deepEqual(
      { ...runtime.status?.(), last_exit: undefined },
      {
        state: 'down',
        starts: 4,
        quick_exits: 4,
        last_exit: undefined,
        next_start_at: new Date(clock.now() + 2000).toISOString(),
      },
    );
  });

  it('the pause is bounded (max_ms)', async () => {
    const { call, clock, runtime } = await setup(
      (logger, clock) =>
        new ProcessRuntime(
          'aa',
          'p',
          [process.execPath, fixture('process-fuzz.mjs')],
          {},
          logger,
          undefined,
          {
            clock,
            backoff: { baseMs: 250, maxMs: 600, stableMs: 10_000 },
          },
        ),
    );
    for (let i = 0; i < 4; i++) {
      clock.advance(600);
      await call({ do: 'exit' });
    }
    assert.equal(runtime.status?.().quick_exits, 4);
    assert.equal(Date.parse(runtime.status!().next_start_at!) - clock.now(), 600);
  });

  it('a process that answered, or stayed up a while, is restarted at once and the count starts over', async () => {
    const { call, clock, runtime } = await setup(
      (logger, clock) =>
        new ProcessRuntime(
          'aa',
          'p',
          [process.execPath, fixture('process-fuzz.mjs')],
          {},
          logger,
          undefined,
          { clock, backoff },
        ),
    );
    assert.equal((await call({ do: 'exit' })).failure, 'crash', 'a first call that exits: quick exit 1');
    clock.advance(250);
    assert.equal((await call({ do: 'ok' })).verdict, 'ACCEPT');
    assert.equal((await call({ do: 'exit' })).failure, 'crash');
    assert.equal(runtime.status?.().quick_exits, 0, 'it had answered: it was up');
    assert.equal((await call({ do: 'ok' })).verdict, 'ACCEPT', 'restarted at once');
    assert.equal((await call({ do: 'exit' })).failure, 'crash');
    assert.equal((await call({ do: 'exit' })).failure, 'crash', 'the new process exits on its first call');
    assert.equal(runtime.status?.().state, 'down');
    clock.advance(250);
    assert.equal((await call({ do: 'ok' })).verdict, 'ACCEPT');
    assert.equal(runtime.status?.().state, 'running');
    assert.equal(runtime.status?.().starts, 5);
  });

  it('a process that stayed up stable_ms counts as up even without an answer', () => {
    const clock = new ManualClock();
    const b = new RestartBackoff(backoff, clock);
    b.started();
    assert.equal(b.exited('exited (1)'), true, 'at once: a quick exit');
    clock.advance(250);
    b.started();
    clock.advance(9_999);
    assert.equal(b.exited('exited (1)'), true);
    assert.equal(b.status().quick_exits, 2);
    clock.advance(500);
    b.started();
    clock.advance(10_000);
    assert.equal(b.exited('exited (1)'), false);
    assert.deepEqual(b.status(), {
      state: 'stopped',
      starts: 3,
      quick_exits: 0,
      last_exit: 'exited (1)',
      next_start_at: null,
    });
  });
});

describe('an sps-python runner that cannot start is held back too', () => {
  it('an entry point that fails on import: one start for 10 calls', async () => {
    const folder = join(dir, 'broken');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(folder);
    writeFileSync(join(folder, 'MANIFEST'), 'name: broken\ntype: aa\nentry_point: main.py\n');
    writeFileSync(join(folder, 'main.py'), 'raise SystemExit(4)\n');
    const { call, runtime } = await setup(
      (logger, clock) => new SpsPythonRuntime(folder, 'p', '', logger, undefined, { clock, backoff }),
    );
    for (let i = 0; i < 10; i++) assert.equal((await call()).failure, 'crash');
    assert.equal(runtime.status?.().starts, 1);
    assert.equal(runtime.status?.().state, 'down');
  });
});

describe('a plugin that cannot stay up is visible', () => {
  it('in host.stats.plugins() and in the metrics: process starts and down', async () => {
    const startsFile = join(dir, 'starts-metrics');
    writeFileSync(startsFile, '');
    const { call, host } = await setup(
      (logger, clock) =>
        new ProcessRuntime(
          'aa',
          'p',
          [process.execPath, fixture('process-exits.mjs')],
          { starts_file: startsFile },
          logger,
          undefined,
          { clock, backoff },
        ),
    );
    await call();
    await call();
    assert.deepEqual(
      host.stats.plugins().map((p) => [p.plugin, p.status.state, p.status.starts]),
      [['p', 'down', 1]],
    );
    const metrics = new AdminMetrics({
      store: new MemoryStore(),
      hookStats: () => host.stats.all(),
      pluginStatus: () => host.stats.plugins(),
    });
    const text = await metrics.registry.metrics();
    assert.match(text, /^sessiongate_plugin_process_starts_total\{plugin="p"\} 1$/m);
    assert.match(text, /^sessiongate_plugin_down\{plugin="p"\} 1$/m);
  });
});
