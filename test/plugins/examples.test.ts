import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { PluginHost } from '../../src/plugins/host.js';
import { ModuleRuntime } from '../../src/plugins/runtimes/module.js';
import { ProcessRuntime } from '../../src/plugins/runtimes/process.js';
import { SpsPythonRuntime } from '../../src/plugins/runtimes/sps-python.js';
import { testEngine } from '../session/helpers.js';
import { recordingLogger, until } from './helpers.js';

const example = (p: string) => fileURLToPath(new URL(`../../examples/plugins/${p}`, import.meta.url));
const hosts: PluginHost[] = [];
after(async () => {
  for (const h of hosts) await h.close();
});

describe('examples/plugins', () => {
  it("the reference's session_ended example runs unmodified and logs its line exactly once", async () => {
    const source = readFileSync(example('sps-python-session-ended/main.py'), 'utf8');
    assert.ok(source.includes(`print("Session ended; session_id='{0}', session_details='{1}'".`), 'verbatim');
    const logger = recordingLogger();
    const { engine } = testEngine({ logger });
    const ini = readFileSync(example('sps-python-session-ended/config.ini'), 'utf8');
    const runtime = new SpsPythonRuntime(example('sps-python-session-ended'), 'audit', ini, logger);
    const host = new PluginHost(engine, [{ name: 'audit', runtime }], logger);
    hosts.push(host);
    await host.start();
    const { id } = await engine.create({ state: 'allow' });
    assert.deepEqual(
      await host.getPasswordList('audit', id, { server_username: 'root', server_hostname: 'db1' }),
      [],
    );
    await engine.remove(id);
    await engine.dispatch();
    await engine.dispatch();
    const expected = `Session ended; session_id='${id}', session_details='account=root,asset=db1'`;
    await until(() => logger.lines.some((l) => l.message === expected));
    const lines = logger.lines.filter((l) => l.message.startsWith('Session ended;'));
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.fields.sessionId, id);
    assert.equal(lines[0]?.fields.plugin, 'audit');
  });

  it('module/vault.ts checks out and in', async () => {
    const logger = recordingLogger();
    const { engine } = testEngine({ logger });
    const runtime = await ModuleRuntime.load(example('module/vault.ts'), 'vault', {
      accounts: { 'svc-app': 's3cret' },
    });
    const host = new PluginHost(engine, [{ name: 'vault', runtime }], logger);
    hosts.push(host);
    await host.start();
    const { id } = await engine.create({ state: 'allow' });
    assert.deepEqual(
      await host.getPasswordList('vault', id, { server_username: 'svc-app', server_hostname: 'app' }),
      ['s3cret'],
    );
    assert.deepEqual(await host.getPasswordList('vault', id, { server_username: 'other' }), []);
    await engine.remove(id);
    await engine.dispatch();
    assert.ok(logger.lines.some((l) => l.message === `checked in svc-app at the end of ${id}`));
    assert.ok(logger.lines.every((l) => !l.message.includes('s3cret')));
  });

  it('process/allowlist.py accepts listed users only', async () => {
    const logger = recordingLogger();
    const { engine } = testEngine({ logger });
    const runtime = new ProcessRuntime(
      'aa',
      'allowlist',
      ['python3', example('process/allowlist.py')],
      { users: ['alice'] },
      logger,
    );
    const host = new PluginHost(engine, [{ name: 'allowlist', runtime }], logger);
    hosts.push(host);
    const { id } = await engine.create();
    assert.equal((await host.authenticate('allowlist', id, { gateway_user: 'alice' })).verdict, 'ACCEPT');
    const denied = await host.authenticate('allowlist', id, { gateway_user: 'mallory' });
    assert.deepEqual([denied.verdict, denied.reason], ['DENY', 'not on the list']);
  });
});
