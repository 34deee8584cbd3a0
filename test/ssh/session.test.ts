import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { listRecordings } from '../../src/ssh/recording.js';
import { sshdSkip, startSshd, type SshdTarget } from '../support/sshd.js';
import {
  gatewayClient,
  openShell,
  standardConfig,
  startSshFixture,
  until,
  type SshFixture,
} from './harness.js';

const skip = sshdSkip();
const here = new URL('.', import.meta.url).pathname;
let sshd: SshdTarget;
let fx: SshFixture;

before(async () => {
  if (skip) return;
  sshd = await startSshd();
  const route = `    - hosts: [ 127.0.0.1 ]
      ports: [ ${sshd.port} ]
      profile: ssh
      credentials: { plugin: keys }
      recording: { dir: ./casts }
      allow:
        - { users: [alice], target_users: [${sshd.user}] }`;
  const plugins = `  - { name: keys, runtime: module, path: ${here}fixtures/key-store.ts, config: { key_file: ${sshd.userPrivateKeyFile}, log_file: \${DIR}/hooks.log } }`;
  fx = await startSshFixture(standardConfig(sshd, { route, plugins }), sshd);
});
after(async () => {
  await fx?.close();
  await sshd?.stop();
});

const login = () => `gu=alice@${sshd.user}@127.0.0.1+${sshd.port}`;
const hooks = (id: string) =>
  existsSync(join(fx.dir, 'hooks.log'))
    ? readFileSync(join(fx.dir, 'hooks.log'), 'utf8')
        .split('\n')
        .filter((l) => l.endsWith(id))
        .map((l) => l.split(' ')[0])
    : [];

/** The one live SSH session's id (the test opens one at a time). */
async function liveSession(): Promise<string> {
  const page = await fx.gw.engine.list();
  const live = page.sessions.filter((s) => s.state === 'allow');
  assert.equal(live.length, 1);
  return live[0]!.id;
}

describe('the SSH session in the engine', { skip }, () => {
  it('an admin kill ends the connection at the next check, with a message; session_ended once', async () => {
    const client = await gatewayClient(fx.ssh.port, login());
    const shell = await openShell(client);
    shell.channel.write('echo ready-$((40+2))\n');
    await until(() => shell.output().includes('ready-42'), 20_000, 'shell answers');
    const id = await liveSession();
    assert.equal((await fx.gw.engine.get(id))?.user, 'alice');
    await fx.gw.engine.close(id, 'admin_kill');
    await fx.ssh.check();
    assert.equal(await shell.exit, 255);
    assert.match(
      shell.output(),
      /sessiongate: the session was ended elsewhere \(by an administrator, or by its user\)/,
    );
    await until(() => hooks(id).includes('session_ended'), 20_000, 'session_ended delivered');
    assert.deepEqual(hooks(id), ['get_private_key_list', 'authentication_completed', 'session_ended']);
    assert.equal(fx.closed.filter((c) => c.sessionId === id).length, 1);
    client.end();
  });

  it('channel data keeps the session alive; the profile idle timeout ends it with a message', async () => {
    const client = await gatewayClient(fx.ssh.port, login());
    const shell = await openShell(client);
    shell.channel.write('echo one\n');
    await until(() => shell.output().includes('one\r\n'), 20_000, 'first answer');
    const id = await liveSession();
    await fx.ssh.check(); // counts the data as activity
    fx.clock.advance(40_000);
    shell.channel.write('echo two\n');
    await until(() => shell.output().includes('two\r\n'), 20_000, 'second answer');
    await fx.ssh.check();
    fx.clock.advance(40_000); // 80 s since the first data, 40 s since the last: alive
    await fx.ssh.check();
    assert.equal((await fx.gw.engine.get(id))?.state, 'allow');
    fx.clock.advance(21_000); // 61 s idle
    await fx.ssh.check();
    assert.equal(await shell.exit, 255);
    assert.match(shell.output(), /idle for too long/);
    await until(() => fx.closed.some((c) => c.sessionId === id), 20_000, 'closed');
    assert.equal(fx.closed.find((c) => c.sessionId === id)?.reason, 'idle_timeout');
    client.end();
  });

  it('records shell output as asciicast v2, one file per channel, named by the session', async () => {
    const client = await gatewayClient(fx.ssh.port, login());
    const shell = await openShell(client);
    shell.channel.write('echo recorded-$((6*7))\n');
    await until(() => shell.output().includes('recorded-42'), 20_000, 'answer');
    const id = await liveSession();
    shell.channel.end('exit\n');
    await shell.exit;
    client.end();
    await until(() => fx.closed.some((c) => c.sessionId === id), 20_000, 'closed');
    const files = listRecordings(join(fx.dir, 'casts'), id);
    assert.equal(files.length, 1);
    const [header, ...events] = readFileSync(files[0]!, 'utf8').trim().split('\n');
    const h = JSON.parse(header!) as { version: number; width: number; height: number };
    assert.deepEqual([h.version, h.width, h.height], [2, 80, 24]);
    const output = events.map((l) => JSON.parse(l) as [number, string, string]).filter((e) => e[1] === 'o');
    assert.ok(
      output
        .map((e) => e[2])
        .join('')
        .includes('recorded-42'),
    );
    assert.ok(!events.some((l) => l.includes('"i"')), 'input is not recorded unless asked');
  });
});

describe('the lease and the lifetime', { skip }, () => {
  it('an admin change of the remaining time is kept by the lease; at its end the client is told', async () => {
    const client = await gatewayClient(fx.ssh.port, login());
    const shell = await openShell(client);
    shell.channel.write('echo alive\n');
    await until(() => shell.output().includes('alive\r\n'), 20_000, 'answer');
    const id = await liveSession();
    await fx.gw.engine.modify(id, { remaining: 100 }); // what PATCH /api/v1/sessions/{id} does
    for (let t = 0; t < 3; t++) {
      fx.clock.advance(30_000); // renewals every 20 s; activity keeps the idle timer back
      shell.channel.write(`echo tick${t}\n`);
      await until(() => shell.output().includes(`tick${t}\r\n`), 20_000, 'tick');
      await fx.ssh.check();
    }
    const s = await fx.gw.engine.get(id);
    assert.ok(s && s.lifetimeDeadline! <= fx.clock.now() + 10_000 + 1000, 'the lease stays within the 100 s');
    fx.clock.advance(11_000);
    await fx.ssh.check();
    assert.equal(await shell.exit, 255);
    assert.match(shell.output(), /reached its maximum lifetime/);
    client.end();
  });
});
