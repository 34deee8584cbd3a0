import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runSsh } from '../support/ssh-client.js';
import { sshdSkip, startSshd, type SshdTarget } from '../support/sshd.js';
import { standardConfig, startSshFixture, until, type SshFixture } from './harness.js';

// The rules events of SSH sessions (fixtures/session-rules.ts): ACCESS_SESSION_STARTED (which
// may remove the session), ACCESS_POLICY_COMPLETED and ACCESS_SESSION_CLOSED.

const skip = sshdSkip();
let sshd: SshdTarget;
let fx: SshFixture;
const g = globalThis as unknown as { __sshRules?: string[] };

before(async () => {
  if (skip) return;
  sshd = await startSshd();
  const file = join(import.meta.dirname, 'fixtures', 'session-rules.ts');
  fx = await startSshFixture(`rules: [ ${file} ]\n${standardConfig(sshd)}`, sshd);
});
after(async () => {
  await fx?.close();
  await sshd?.stop();
});

const login = (gw: string) => `gu=${gw}@${sshd.user}@127.0.0.1+${sshd.port}`;

describe('rules events of SSH sessions', { skip }, () => {
  it('ACCESS_SESSION_STARTED sets a variable, POLICY_COMPLETED and SESSION_CLOSED see the session', async () => {
    g.__sshRules = [];
    const r = await runSsh(['-l', login('alice'), '127.0.0.1', 'echo ruled'], {
      port: fx.ssh.port,
      password: 'wonderland',
    });
    assert.equal(r.code, 0, r.stderr);
    await until(() => fx.closed.length === 1, 5000, 'session closed');
    const { sessionId: id, snapshot } = fx.closed[0]!;
    const stamp = `started for ${sshd.user}@127.0.0.1:${sshd.port}`;
    assert.equal(snapshot.variables['session.custom.stamp'], stamp);
    await until(() => g.__sshRules!.some((l) => l.startsWith('closed')), 20_000, 'closed rule');
    assert.deepEqual(g.__sshRules, [`started ${id}`, `completed ${id} allow`, `closed ${id} alice ${stamp}`]);
  });

  it('a denied logon: ACCESS_POLICY_COMPLETED once with deny, then ACCESS_SESSION_CLOSED', async () => {
    g.__sshRules = [];
    const before = fx.closed.length;
    const r = await runSsh(['-l', login('alice'), '127.0.0.1', 'echo never'], {
      port: fx.ssh.port,
      answers: ['bad', 'bad', 'bad', 'wonderland', 'wonderland', 'wonderland'],
    });
    assert.equal(r.code, 255);
    await until(() => g.__sshRules!.some((l) => l.startsWith('closed')), 20_000, 'closed rule');
    const id = fx.closed[before]!.sessionId;
    assert.deepEqual(g.__sshRules, [
      `started ${id}`,
      `completed ${id} deny`,
      `closed ${id} alice started for ${sshd.user}@127.0.0.1:${sshd.port}`,
    ]);
  });

  it('a session a start rule removes is refused: no policy, no session left', async () => {
    g.__sshRules = [];
    const r = await runSsh(['-l', login('mallory'), '127.0.0.1', 'echo never'], {
      port: fx.ssh.port,
      password: 'wonderland',
    });
    assert.equal(r.code, 255);
    assert.equal(r.stdout.toString(), '');
    assert.equal(g.__sshRules.filter((l) => l.startsWith('started')).length, 1);
    assert.equal(g.__sshRules.filter((l) => l.startsWith('completed')).length, 0);
    const page = await fx.gw.engine.list();
    assert.ok(!page.sessions.some((s) => s.variables['session.ssh.gateway_user'] === 'mallory'));
  });

  it('the refusal by a start rule reaches the client', async () => {
    const errors = fx.logs.lines.filter((l) => l.level === 'error').length;
    const r = await runSsh(['-v', '-l', login('mallory'), '127.0.0.1', 'true'], { port: fx.ssh.port });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /sessiongate: the session was refused/);
    assert.equal(fx.logs.lines.filter((l) => l.level === 'error').length, errors, 'no internal error');
  });
});
