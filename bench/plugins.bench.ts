/**
 * Plugin hook round trip per runtime (npm run bench:plugins): the median latency of one
 * `authenticate` call through the plugin host, raw (`invoke`: runtime + checks) and with the
 * session's cookies read and stored (memory store). Median of RUNS runs, each the median of
 * CALLS sequential calls.
 */
import { fileURLToPath } from 'node:url';
import { ManualClock } from '../src/core/clock.js';
import { silentLogger } from '../src/core/logger.js';
import { PluginHost, type HostedPlugin } from '../src/plugins/host.js';
import { ModuleRuntime } from '../src/plugins/runtimes/module.js';
import { ProcessRuntime } from '../src/plugins/runtimes/process.js';
import { SpsPythonRuntime } from '../src/plugins/runtimes/sps-python.js';
import { SessionEngine } from '../src/session/engine.js';
import { Keyring } from '../src/session/keyring.js';
import { MemoryStore } from '../src/store/memory/store.js';
import { median, summary } from './stats.js';

const QUICK = process.env.BENCH_QUICK === '1';
const RUNS = QUICK ? 2 : 5;
const fixture = (p: string) => fileURLToPath(new URL(`./fixtures/${p}`, import.meta.url));

const runtimes: Record<string, { target: string; make: () => Promise<HostedPlugin> }> = {
  module: {
    target: '<= 20 µs',
    make: async () => ({
      name: 'auth',
      runtime: await ModuleRuntime.load(fixture('module-accept.ts'), 'auth', {}),
    }),
  },
  process: {
    target: '<= 1 ms',
    make: async () => ({
      name: 'auth',
      runtime: new ProcessRuntime(
        'aa',
        'auth',
        [process.execPath, fixture('process-accept.mjs')],
        {},
        silentLogger,
      ),
    }),
  },
  'sps-python': {
    target: '<= 5 ms',
    make: async () => ({
      name: 'auth',
      runtime: new SpsPythonRuntime(fixture('py-accept'), 'auth', '', silentLogger),
    }),
  },
};

async function timeCalls(calls: number, fn: () => Promise<unknown>): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t = performance.now();
    await fn();
    samples.push(performance.now() - t);
  }
  return median(samples) * 1000; // µs
}

async function main(): Promise<void> {
  console.log(
    `plugin hook round trip — median µs per call; ${RUNS} runs, median (min–max, spread)${QUICK ? ' [QUICK]' : ''}`,
  );
  console.log(`node ${process.version}\n`);
  console.log(
    `| runtime | target | invoke (hook only) | authenticate (with session cookies, memory store) |`,
  );
  console.log(`| --- | --- | --- | --- |`);
  for (const [name, { target, make }] of Object.entries(runtimes)) {
    const raw: number[] = [];
    const full: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const engine = new SessionEngine({
        store: new MemoryStore(),
        keyring: Keyring.ephemeral(),
        clock: new ManualClock(),
      });
      const host = new PluginHost(engine, [await make()]);
      const { id } = await engine.create();
      const args = {
        session_id: id,
        cookie: {},
        session_cookie: {},
        gateway_user: 'alice',
        key_value_pairs: { otp: '123456' },
      };
      const calls = QUICK ? 200 : name === 'module' ? 20_000 : 2000;
      await timeCalls(50, () => host.invoke('auth', 'authenticate', id, args)); // warm up (starts the process)
      raw.push(await timeCalls(calls, () => host.invoke('auth', 'authenticate', id, args)));
      full.push(
        await timeCalls(calls, () =>
          host.authenticate('auth', id, { gateway_user: 'alice', key_value_pairs: { otp: '123456' } }),
        ),
      );
      await host.close();
    }
    console.log(`| ${name} | ${target} | ${summary(raw, 1)} | ${summary(full, 1)} |`);
  }
}

await main();
