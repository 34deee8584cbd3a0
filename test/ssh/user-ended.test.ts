import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sshdSkip, startSshd, type SshdTarget } from '../support/sshd.js';
import {
  gatewayClient,
  openShell,
  standardConfig,
  startSshFixture,
  until,
  type SshFixture,
} from './harness.js';

// A user ends their SSH session from their sessions page (/sg/sessions, signed in over HTTP):
// the SSH gateway's next check of the session ends the connection.

const skip = sshdSkip();
let sshd: SshdTarget;
let fx: SshFixture;

before(async () => {
  if (skip) return;
  sshd = await startSshd();
  fx = await startSshFixture(standardConfig(sshd), sshd);
});
after(async () => {
  await fx?.close();
  await sshd?.stop();
});

describe('ending an SSH session from the sessions page', { skip }, () => {
  it('lists the SSH session with its target, ends it (user_ended), and the connection ends', async () => {
    const client = await gatewayClient(fx.ssh.port, `gu=alice@${sshd.user}@127.0.0.1+${sshd.port}`);
    const shell = await openShell(client);
    shell.channel.write('echo ready-$((40+2))\n');
    // Generous: the machine running the tests may be busy; the output says what came instead.
    await until(() => shell.output().includes('ready-42'), 15_000, 'shell answers').catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(shell.output())}`);
    });

    // Alice's web session (the HTTP route's profile), made directly: its policy is not the point.
    const web = await fx.gw.engine.create({ state: 'allow', user: 'alice', profile: 'default' });
    const cookie = `MRHSession=${web.token}`;
    const page = await fetch(`${fx.gw.url}/sg/sessions.json`, { headers: { cookie } });
    const body = (await page.json()) as {
      csrf: string;
      sessions: { id: string; protocol: string; ssh_target: string | null; current: boolean }[];
    };
    const ssh = body.sessions.find((s) => s.protocol === 'ssh');
    assert.ok(ssh, 'the SSH session is listed');
    assert.equal(ssh.ssh_target, `${sshd.user}@127.0.0.1:${sshd.port}`);
    assert.equal(ssh.current, false);

    const ended = await fetch(`${fx.gw.url}/sg/sessions/end`, {
      method: 'POST',
      body: new URLSearchParams({ csrf: body.csrf, id: ssh.id }).toString(),
      headers: { cookie, origin: fx.gw.url, 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(ended.status, 200);
    assert.deepEqual(await ended.json(), { ended: 1 });
    await fx.ssh.check();
    assert.equal(await shell.exit, 255);
    assert.match(shell.output(), /sessiongate: the session was ended/);
    await until(() => fx.closed.some((c) => c.sessionId === ssh.id), 20_000, 'close delivered');
    assert.deepEqual(
      fx.closed.filter((c) => c.sessionId === ssh.id).map((c) => c.reason),
      ['user_ended'],
    );
    const line = fx.audit.find((e) => e.event === 'session_ended_by_user');
    assert.deepEqual({ actor: line?.actor, protocol: line?.protocol }, { actor: web.id, protocol: 'ssh' });
    client.end();
  });
});
