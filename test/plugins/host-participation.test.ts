import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SessionGateError } from '../../src/core/errors.js';
import type { JsonObject } from '../../src/core/session-types.js';
import { definePlugin } from '../../src/plugins/define.js';
import { PluginHost } from '../../src/plugins/host.js';
import { ModuleRuntime } from '../../src/plugins/runtimes/module.js';
import { testEngine } from '../session/helpers.js';

// A plugin takes part in a session from the moment its first hook is called, not from the moment
// that hook returns: a session closed while the first hook runs (idle timeout, admin kill, logout
// during a slow get_password_list) must still give the plugin its one session_ended, with the
// cookie the hook returned (a credential checked out there is checked in).

interface Gate {
  entered: Promise<void>;
  release: () => void;
}

function gate(): Gate & { enter: () => Promise<void> } {
  let entered!: () => void;
  let release!: () => void;
  const enteredP = new Promise<void>((r) => (entered = r));
  const released = new Promise<void>((r) => (release = r));
  return {
    entered: enteredP,
    release,
    enter: async () => {
      entered();
      await released;
    },
  };
}

function slowVault(g: ReturnType<typeof gate>, ended: JsonObject[]) {
  return definePlugin({
    kind: 'credentialstore',
    async getPasswordList({ serverUsername }) {
      await g.enter();
      return { passwords: ['pw'], cookie: { checked_out: [`${serverUsername}@db1`] } };
    },
    sessionEnded({ cookie }) {
      ended.push(cookie);
    },
  });
}

async function setUp() {
  const { engine } = testEngine();
  const g = gate();
  const ended: JsonObject[] = [];
  const host = new PluginHost(engine, [
    { name: 'vault', runtime: new ModuleRuntime(slowVault(g, ended), 'vault', {}) },
  ]);
  await host.start();
  const { id } = await engine.create({ profile: 'default', clientIp: '192.0.2.7' });
  return { engine, host, g, ended, id };
}

describe('plugin participation', () => {
  it('a session closed during the first hook still gets one session_ended, with the cookie the hook returned', async () => {
    const { engine, host, g, ended, id } = await setUp();
    const call = host.getPasswordList('vault', id, { server_username: 'root' });
    await g.entered;
    assert.equal(await engine.close(id, 'admin_kill'), true);
    const delivering = engine.dispatch(); // the close is delivered while the hook still runs
    g.release();
    await delivering;
    const outcome = await call.then(
      (v) => ({ passwords: v }),
      (e: unknown) => ({ error: e }),
    );
    await engine.dispatch();
    await engine.dispatch();
    assert.deepEqual(ended, [{ checked_out: ['root@db1'] }]);
    if ('error' in outcome) {
      assert.ok(outcome.error instanceof SessionGateError);
      assert.equal(outcome.error.code, 'SG_ERR_SESSION_NOT_FOUND');
    }
    await host.close();
  });

  it('a hook is not called for a session that is already gone', async () => {
    const { engine, host, g, ended, id } = await setUp();
    await engine.close(id, 'logout');
    let called = false;
    void g.entered.then(() => (called = true));
    const out = await host.forSession('vault', 'get_password_list', id, { server_username: 'root' });
    assert.equal(out.ok, false);
    await engine.dispatch();
    await Promise.resolve();
    assert.equal(called, false);
    assert.deepEqual(ended, []);
    await host.close();
  });
});
