import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sshdSkip, startSshd, type SshdTarget } from '../support/sshd.js';
import { standardConfig, startSshFixture, type SshFixture } from './harness.js';
import { runSsh } from '../support/ssh-client.js';
import { closesSince } from './logon-support.js';

// TOTP self-enrolment needs a browser (a QR code to scan): an SSH logon of a user without a
// secret is refused with a message that says so, instead of asking for a code nobody has.

const skip = sshdSkip();
let sshd: SshdTarget;

before(async () => {
  if (skip) return;
  sshd = await startSshd();
});
after(async () => await sshd?.stop());

describe('TOTP self-enrolment over SSH', { skip }, () => {
  let fx: SshFixture;
  before(async () => {
    if (skip) return;
    const plugins = `  - { name: otp, runtime: builtin, type: totp, config: { users_file: ./users.yaml, self_enrolment: true } }`;
    const profile = '[ logon, { authenticate: users }, { authenticate: otp }, allow ]';
    const route = `    - { hosts: [ 127.0.0.1 ], ports: [ ${sshd.port} ], profile: ssh, credentials: { plugin: vault },
        allow: [ { users: [ alice ], target_users: [ ${sshd.user} ] } ] }`;
    fx = await startSshFixture(standardConfig(sshd, { plugins, profile, route }), sshd);
  });
  after(async () => await fx?.close());

  it('a user without a secret is refused after the password, told to use a browser; nothing is enrolled', async () => {
    const mark = fx.audit.length;
    const r = await runSsh(
      [
        '-v', // the refusal is an info message, below the client's LogLevel=ERROR
        '-o',
        'PreferredAuthentications=keyboard-interactive',
        '-l',
        `gu=alice@${sshd.user}@127.0.0.1+${sshd.port}`,
        '127.0.0.1',
        'echo in',
      ],
      {
        port: fx.ssh.port,
        answers: ['wonderland', '123456'],
      },
    );
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout.toString(), '');
    assert.equal(r.prompts.length, 1, `no code is asked: ${r.prompts.join('|')}`);
    assert.match(r.stderr, /sessiongate: this account has no second factor yet: log on once with a browser/);
    assert.equal((await closesSince(fx, mark))[0]!.reason, 'denied');
    assert.doesNotMatch(readFileSync(join(fx.dir, 'users.yaml'), 'utf8'), /totp:/);
  });
});
