import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { PluginHost } from '../../src/plugins/host.js';
import { ModuleRuntime } from '../../src/plugins/runtimes/module.js';
import { ProcessRuntime } from '../../src/plugins/runtimes/process.js';
import { SpsPythonRuntime } from '../../src/plugins/runtimes/sps-python.js';
import type { PluginRuntime } from '../../src/plugins/runtime.js';
import { testEngine } from '../session/helpers.js';
import { recordingLogger, until } from './helpers.js';

const fixture = (p: string) => fileURLToPath(new URL(`./fixtures/${p}`, import.meta.url));
const hosts: PluginHost[] = [];
after(async () => {
  for (const h of hosts) await h.close();
});

async function setup(
  runtime: (logger: ReturnType<typeof recordingLogger>) => Promise<PluginRuntime> | PluginRuntime,
  timeoutMs = 300,
) {
  const logger = recordingLogger();
  const { engine } = testEngine({ logger });
  const host = new PluginHost(engine, [{ name: 'bad', runtime: await runtime(logger), timeoutMs }], logger);
  hosts.push(host);
  const { id } = await engine.create();
  const call = (user: string) => host.authenticate('bad', id, { gateway_user: user });
  const failuresLogged = () => logger.lines.filter((l) => l.message === 'plugin hook failed');
  return { engine, host, id, call, logger, failuresLogged };
}

describe('misbehaving module plugin', () => {
  const make = () => ModuleRuntime.load(fixture('module-bad.ts'), 'bad', {});
  for (const [user, failure] of [
    ['throw', 'exception'],
    ['hang', 'timeout'],
    ['garbage', 'malformed'],
    ['badcookie', 'malformed'],
    ['cyclic', 'malformed'],
    ['badverdict', 'malformed'],
  ] as const) {
    it(`${user}: DENY, logged with plugin, hook and session, counted; the host keeps working`, async () => {
      const { engine, host, id, call, logger } = await setup(make);
      const out = await call(user);
      assert.equal(out.verdict, 'DENY');
      assert.equal(out.failure, failure);
      const line = logger.lines.find((l) => l.level === 'warn');
      assert.equal(line?.fields.plugin, 'bad');
      assert.equal(line?.fields.hook, 'authenticate');
      assert.equal(line?.fields.sessionId, id);
      assert.equal(host.stats.get('bad', 'authenticate').failures[failure], 1);
      assert.deepEqual((await engine.get(id))?.cookies.bad, {}, 'cookie unchanged (first call: {})');
      assert.equal((await call('fine')).verdict, 'ACCEPT');
      assert.deepEqual((await engine.get(id))?.cookies.bad, { ok: true });
    });
  }
});

describe('misbehaving process plugin', () => {
  const make = (logger: ReturnType<typeof recordingLogger>) =>
    new ProcessRuntime('aa', 'bad', [process.execPath, fixture('process-bad.mjs')], {}, logger);

  it('exits: DENY as crash, then restarted for the next call', async () => {
    const { call, engine, id } = await setup(make, 2000);
    const first = await call('fine');
    const pid1 = (await engine.get(id))?.cookies.bad?.pid;
    assert.equal(first.verdict, 'ACCEPT');
    assert.deepEqual(await call('exit'), { verdict: 'DENY', failure: 'crash' });
    assert.equal((await call('fine')).verdict, 'ACCEPT');
    const pid2 = (await engine.get(id))?.cookies.bad?.pid;
    assert.notEqual(pid1, pid2, 'a new process answered');
  });

  it('hangs: DENY as timeout; prints garbage: logged and ignored; errors and scalars are failures', async () => {
    // The deadline also covers starting the replacement of the hung process (node starts in
    // 0.1-1 s on a loaded machine), so it is no tighter than the exit case's.
    const { call, logger } = await setup(make, 2000);
    assert.deepEqual(await call('hang'), { verdict: 'DENY', failure: 'timeout' });
    assert.equal((await call('garbage')).verdict, 'ACCEPT');
    assert.ok(logger.lines.some((l) => l.message === 'plugin printed a line that is not JSON'));
    assert.deepEqual(await call('throw'), { verdict: 'DENY', failure: 'exception' });
    assert.deepEqual(await call('scalar'), { verdict: 'DENY', failure: 'malformed' });
    assert.equal((await call('fine')).verdict, 'ACCEPT');
    // stderr is another pipe: its line may come after the answer.
    await until(() => logger.lines.some((l) => l.fields.stream === 'stderr' && /^pid \d+$/.test(l.message)));
  });
});

describe('misbehaving sps-python plugin', () => {
  const make = (logger: ReturnType<typeof recordingLogger>) =>
    new SpsPythonRuntime(fixture('py-bad'), 'bad', '', logger);

  it('raises, returns a non-JSON cookie, exits, hangs: each a DENY; the runner comes back', async () => {
    // Generous: the deadline also covers starting the runner that replaces the hung one, and
    // python3 takes seconds to start on a loaded machine; the hang case waits this long.
    const { call, logger, id, engine } = await setup(make, 5000);
    assert.equal((await call('throw')).failure, 'exception');
    assert.ok(logger.lines.some((l) => String(l.fields.error).includes('ValueError: plugin bug')));
    assert.equal((await call('badcookie')).failure, 'exception');
    assert.equal((await call('exit')).failure, 'crash');
    assert.equal((await call('fine')).verdict, 'ACCEPT');
    assert.equal((await call('hang')).failure, 'timeout');
    assert.equal((await call('garbage')).verdict, 'ACCEPT', 'a new runner replaced the hung one');
    const chatter = logger.lines.find((l) => l.message === 'some chatter from the plugin');
    assert.equal(chatter?.fields.sessionId, id);
    assert.equal(chatter?.fields.stream, 'stdout');
    assert.ok((await engine.get(id))?.cookies.bad?.pid);
  });
});
