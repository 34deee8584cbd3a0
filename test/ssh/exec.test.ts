import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runScp, runSsh } from '../support/ssh-client.js';
import { sshdSkip, startSshd, type SshdTarget } from '../support/sshd.js';
import { standardConfig, startSshFixture, until, type SshFixture } from './harness.js';

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

/** The SPS user name that names the gateway user, the target user and the target. */
const login = (gatewayUser = 'alice', targetUser = () => sshd.user) =>
  `gu=${gatewayUser}@${targetUser()}@127.0.0.1+${sshd.port}`;

describe('ssh through the gateway with the real OpenSSH client', { skip }, () => {
  it('runs a command on the target: output and exit status pass through; one session, closed once', async () => {
    const r = await runSsh(['-l', login(), '127.0.0.1', 'echo hello; echo oops >&2; exit 3'], {
      port: fx.ssh.port,
      password: 'wonderland',
    });
    assert.equal(r.stdout.toString(), 'hello\n', r.stderr);
    assert.match(r.stderr, /oops/);
    assert.equal(r.code, 3);
    await until(() => fx.closed.length === 1, 5000, 'session closed');
    const [c] = fx.closed;
    assert.equal(c!.reason, 'logout');
    assert.equal(c!.snapshot.user, 'alice');
    assert.equal(c!.snapshot.variables['session.ssh.target'], `${sshd.user}@127.0.0.1:${sshd.port}`);
    assert.ok(Object.hasOwn(c!.snapshot.cookies, 'vault'), 'the credential store took part');
    const channel = fx.audit.find((e) => e.event === 'ssh_channel');
    assert.equal(channel?.command, 'echo hello; echo oops >&2; exit 3');
    const end = fx.audit.find((e) => e.event === 'ssh_end');
    assert.ok(Number(end?.bytes_to_client) >= 'hello\noops\n'.length);
  });

  it('copies a file both ways with scp, byte for byte', async () => {
    const data = randomBytes(1 << 20);
    const local = join(fx.dir, 'up.bin');
    writeFileSync(local, data);
    const remote = join(sshd.dir, 'copied.bin');
    const up = await runScp([local, `${login()}@127.0.0.1:${remote}`], {
      port: fx.ssh.port,
      password: 'wonderland',
    });
    assert.equal(up.code, 0, up.stderr);
    assert.ok(readFileSync(remote).equals(data));
    const back = join(fx.dir, 'down.bin');
    const down = await runScp([`${login()}@127.0.0.1:${remote}`, back], {
      port: fx.ssh.port,
      password: 'wonderland',
    });
    assert.equal(down.code, 0, down.stderr);
    assert.ok(readFileSync(back).equals(data));
  });

  // OpenSSH's client drops what it has not yet printed when the disconnect arrives: the message
  // must reach it before the connection ends (ssh2's client shows it either way).
  for (const pty of [false, true]) {
    it(`an admin kill mid-command: the client prints why and exits 255${pty ? ' (with a pty)' : ''}`, async () => {
      const command = `echo started; sleep 30; : ${pty ? 'pty' : 'no pty'}`;
      const running = runSsh([...(pty ? ['-tt'] : []), '-l', login(), '127.0.0.1', command], {
        port: fx.ssh.port,
        password: 'wonderland',
        timeoutMs: 40_000,
      });
      let id: string | undefined;
      await until(
        () => {
          const started = fx.audit.find((e) => e.event === 'ssh_channel' && e.command === command);
          id = started?.sessionId;
          return id !== undefined;
        },
        20_000,
        'the command runs',
      );
      await fx.gw.engine.close(id!, 'admin_kill');
      await fx.ssh.check();
      const r = await running;
      assert.equal(r.code, 255, r.stderr);
      assert.match(
        r.stderr,
        /sessiongate: the session was ended elsewhere \(by an administrator, or by its user\)/,
      );
      await until(() => fx.closed.some((c) => c.sessionId === id), 5000, 'session closed');
      assert.equal(fx.closed.filter((c) => c.sessionId === id).length, 1);
    });
  }
});
