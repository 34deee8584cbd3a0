import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { PluginHost, type HostedPlugin } from '../../src/plugins/host.js';
import { ModuleRuntime } from '../../src/plugins/runtimes/module.js';
import { ProcessRuntime } from '../../src/plugins/runtimes/process.js';
import { SpsPythonRuntime } from '../../src/plugins/runtimes/sps-python.js';
import type { Logger } from '../../src/core/logger.js';
import { testEngine } from '../session/helpers.js';
import { recordingLogger, until } from './helpers.js';

const fixture = (p: string) => fileURLToPath(new URL(`./fixtures/${p}`, import.meta.url));

const RUNTIMES: Record<string, (logger: Logger) => Promise<HostedPlugin[]>> = {
  module: async () => [
    { name: 'auth', runtime: await ModuleRuntime.load(fixture('module-auth.ts'), 'auth', {}) },
    { name: 'vault', runtime: await ModuleRuntime.load(fixture('module-vault.ts'), 'vault', {}) },
  ],
  process: async (logger) => [
    {
      name: 'auth',
      runtime: new ProcessRuntime(
        'aa',
        'auth',
        [process.execPath, fixture('process-plugin.mjs'), 'auth'],
        {},
        logger,
      ),
    },
    {
      name: 'vault',
      runtime: new ProcessRuntime(
        'credentialstore',
        'vault',
        [process.execPath, fixture('process-plugin.mjs'), 'vault'],
        {},
        logger,
      ),
    },
  ],
  'sps-python': async (logger) => [
    {
      name: 'auth',
      runtime: new SpsPythonRuntime(fixture('py-auth'), 'auth', '[auth]\nprompt=Code\n', logger),
    },
    { name: 'vault', runtime: new SpsPythonRuntime(fixture('py-vault'), 'vault', '', logger) },
  ],
};

const hosts: PluginHost[] = [];
after(async () => {
  for (const h of hosts) await h.close();
});

for (const [runtime, make] of Object.entries(RUNTIMES)) {
  describe(`scripted session through the ${runtime} runtime`, () => {
    it('NEEDINFO → ACCEPT → authorize → passwords → completed → remove; cookies and session_ended exactly once', async () => {
      const logger = recordingLogger();
      const { engine } = testEngine({ logger });
      const host = new PluginHost(engine, await make(logger), logger);
      hosts.push(host);
      await host.start();
      const { id } = await engine.create({ clientIp: '192.0.2.10' });
      const facts = { protocol: 'http', client_ip: '192.0.2.10', gateway_user: 'alice' };

      const first = await host.authenticate('auth', id, facts);
      assert.equal(first.verdict, 'NEEDINFO');
      assert.deepEqual(first.question, { key: 'otp', prompt: 'One-time code', disable_echo: true });
      let s = await engine.get(id);
      assert.deepEqual(s?.cookies.auth, { calls: 1, hooks: ['authenticate'] });
      assert.deepEqual(s?.sessionCookie, { auth_calls: 1 });

      const second = await host.authenticate('auth', id, { ...facts, key_value_pairs: { otp: '123456' } });
      assert.equal(second.verdict, 'ACCEPT');
      assert.equal(second.gateway_user, 'alice');
      assert.deepEqual(second.gateway_groups, ['staff']);
      s = await engine.get(id);
      assert.deepEqual(
        s?.cookies.auth,
        { calls: 2, hooks: ['authenticate', 'authenticate'] },
        'cookie carried over',
      );

      const authz = await host.authorize('auth', id, { ...facts, gateway_groups: ['staff'] });
      assert.equal(authz.verdict, 'ACCEPT');

      const passwords = await host.getPasswordList('vault', id, {
        gateway_username: 'alice',
        server_username: 'svc',
        server_hostname: 'app.internal',
      });
      assert.deepEqual(passwords, ['pw-svc-1', 'pw-svc-2']);
      s = await engine.get(id);
      assert.deepEqual(s?.cookies.vault, { hooks: ['get_password_list'], checked_out: true, for: 'alice' });
      assert.deepEqual(
        s?.sessionCookie,
        { auth_calls: 2, authorized: true, vault: 'out' },
        'shared by both plugins',
      );

      assert.equal(await host.authenticationCompleted('vault', id), true);
      s = await engine.get(id);
      assert.equal(s?.cookies.vault?.checked_out, false);

      await engine.remove(id);
      await engine.dispatch();
      await engine.dispatch();
      const ended = (who: string) => logger.lines.filter((l) => l.message.startsWith(`${who} ended ${id}`));
      await until(() => ended('auth').length + ended('vault').length >= 2);
      assert.deepEqual(
        ended('auth').map((l) => l.message),
        [`auth ended ${id} hooks=authenticate,authenticate,authorize shared=auth_calls,authorized,vault`],
      );
      assert.deepEqual(
        ended('vault').map((l) => l.message),
        [
          `vault ended ${id} hooks=get_password_list,authentication_completed shared=auth_calls,authorized,vault`,
        ],
      );
      for (const l of [...ended('auth'), ...ended('vault')]) assert.equal(l.fields.sessionId, id);
      assert.equal(host.stats.get('auth', 'authenticate').calls, 2);
      assert.deepEqual(host.stats.get('auth', 'authenticate').failures, {});
    });

    it('a wrong answer is DENY with the reason; session_ended skips plugins never called', async () => {
      const logger = recordingLogger();
      const { engine } = testEngine({ logger });
      const host = new PluginHost(engine, await make(logger), logger);
      hosts.push(host);
      await host.start();
      const { id } = await engine.create();
      const out = await host.authenticate('auth', id, {
        gateway_user: 'bob',
        key_value_pairs: { otp: '000000' },
      });
      assert.equal(out.verdict, 'DENY');
      assert.equal(out.reason, 'wrong code');
      await engine.remove(id);
      await engine.dispatch();
      await until(() => logger.lines.some((l) => l.message.startsWith(`auth ended ${id}`)));
      assert.equal(logger.lines.filter((l) => l.message.startsWith('vault ended')).length, 0);
    });
  });
}
