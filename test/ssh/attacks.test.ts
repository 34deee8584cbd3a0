// What an attacker tries against the SSH listener: sockets that never log on, floods of them,
// junk instead of SSH, user names with control characters or targets no route covers, and
// password guessing over many connections.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { runSsh } from '../support/ssh-client.js';
import { sshdSkip, startSshd, type SshdTarget } from '../support/sshd.js';
import { gatewayClient, standardConfig, startSshFixture, until, type SshFixture } from './harness.js';

const skip = sshdSkip();
let sshd: SshdTarget;
let fx: SshFixture;

before(async () => {
  if (skip) return;
  sshd = await startSshd();
  const ssh = `  login_grace_seconds: 1
  max_unauthenticated: 3`;
  fx = await startSshFixture(
    standardConfig(sshd, { ssh }).replace(
      '    inactivity_timeout: 60',
      '    inactivity_timeout: 60\n    logon_throttle: { per_user_address: { limit: 4, window: 900 } }',
    ),
    sshd,
  );
});
after(async () => {
  await fx?.close();
  await sshd?.stop();
});

/** A raw TCP connection to the SSH listener; `closed` resolves when the gateway hangs up. */
function raw(): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  return new Promise((done, fail) => {
    let text = '';
    const socket = connect(fx.ssh.port, '127.0.0.1', () => done({ socket, received: () => text, closed }));
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.once('error', fail);
  });
}

const login = (who = 'alice') => `gu=${who}@${sshd.user}@127.0.0.1+${sshd.port}`;

describe('attacks on the SSH listener', { skip }, () => {
  it('a socket that never logs on is closed after the login grace time', async () => {
    const c = await raw();
    c.socket.write('SSH-2.0-idle\r\n');
    await until(() => c.received().startsWith('SSH-2.0-sessiongate'), 20_000, 'server ident');
    const started = Date.now();
    await c.closed;
    assert.ok(Date.now() - started < 5000);
  });

  it('connections not logged on are capped: the one over the cap is closed at once, others go on', async () => {
    const held = await Promise.all([raw(), raw(), raw()]);
    await until(() => held.every((h) => h.received().startsWith('SSH-2.0-')), 20_000, 'three idents');
    const extra = await raw();
    await extra.closed;
    assert.equal(held.filter((h) => h.socket.destroyed).length, 0, 'the first three are still open');
    for (const h of held) h.socket.destroy();
    await until(
      async () => {
        const client = await gatewayClient(fx.ssh.port, login()).catch(() => undefined);
        client?.end();
        return client !== undefined;
      },
      5000,
      'a real logon once the held sockets are gone',
    );
  });

  it('junk instead of SSH: the connection is dropped, nothing is logged as an error, the gateway serves on', async () => {
    const errorsBefore = fx.logs.lines.filter((l) => l.level === 'error').length;
    const c = await raw();
    c.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n' + '\0\xff'.repeat(5000));
    await c.closed;
    assert.equal(fx.logs.lines.filter((l) => l.level === 'error').length, errorsBefore);
    const r = await runSsh(['-l', login(), '127.0.0.1', 'echo still-here'], {
      port: fx.ssh.port,
      password: 'wonderland',
    });
    assert.equal(r.stdout.toString(), 'still-here\n', r.stderr);
  });

  it('a user name with control characters, or a target no route covers, starts no session and reaches no target', async () => {
    // Counted by their start records: a session of the test before may still be closing.
    const starts = () => fx.audit.filter((e) => e.event === 'session_start').length;
    const before = starts();
    for (const name of [
      `root\r\n@127.0.0.1+${sshd.port}`,
      'root@169.254.169.254',
      `root@127.0.0.1+1`,
      'root@',
    ]) {
      await assert.rejects(gatewayClient(fx.ssh.port, name));
    }
    assert.equal(starts(), before);
    assert.ok(
      fx.logs.lines.every((l) => !/[\r\n]/.test(JSON.stringify(l.fields).replace(/\\[rn]/g, ''))),
      'no raw line breaks reach the log',
    );
    assert.ok(!fx.audit.some((e) => e.event === 'ssh_target' && String(e.target).startsWith('169.254')));
  });

  it('password guessing over many connections is throttled in the store: then even the right password is refused', async () => {
    for (let i = 0; i < 4; i++) {
      await assert.rejects(gatewayClient(fx.ssh.port, login('bob'), ['wrong', 'wrong', 'wrong']));
    }
    const refused = await runSsh(['-l', login('bob'), '127.0.0.1', 'true'], {
      port: fx.ssh.port,
      password: 'builder',
    });
    assert.equal(refused.code, 255);
    assert.ok(fx.audit.some((e) => e.event === 'logon_throttled' && e.user === 'bob'));
    // Another user from the same address is not held back by bob's counter.
    const alice = await runSsh(['-l', login(), '127.0.0.1', 'echo ok'], {
      port: fx.ssh.port,
      password: 'wonderland',
    });
    assert.equal(alice.stdout.toString(), 'ok\n', alice.stderr);
  });
});
