import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { totpCode } from '../../src/plugins/builtin/totp-code.js';
import { runSsh } from '../support/ssh-client.js';
import { sshdSkip, startSshd, type SshdTarget } from '../support/sshd.js';
import { standardConfig, startSshFixture, type SshFixture } from './harness.js';
import {
  closesSince,
  connect,
  enrolUsers,
  exec,
  startedSince,
  wrongCode,
  writeKeyPair,
  type KeyFile,
} from './logon-support.js';

// The gateway logon of SSH connections against a real sshd target: passwords and their
// attempts, the gateway user prompt, TOTP prompts, public keys, the allow-list, the password
// method and malformed destinations (rules events: logon-rules.test.ts).

const skip = sshdSkip();
let sshd: SshdTarget;
let keys: string;
/** A key listed in `ssh.authorized_keys` (for alice, and for bob in the TOTP tests), one listed nowhere. */
let listed: KeyFile;
let unlisted: KeyFile;

before(async () => {
  if (skip) return;
  sshd = await startSshd();
  keys = mkdtempSync(join(tmpdir(), 'sg-logon-keys-'));
  listed = writeKeyPair(keys, 'listed');
  unlisted = writeKeyPair(keys, 'unlisted');
});
after(async () => {
  await sshd?.stop();
  if (keys) rmSync(keys, { recursive: true, force: true });
});

/** `gu=GW@TARGET@127.0.0.1+PORT`, or without `gu=` when `gw` is empty. */
const login = (gw: string, target = () => sshd.user) =>
  `${gw ? `gu=${gw}@` : ''}${target()}@127.0.0.1+${sshd.port}`;

describe('the gateway logon with the real OpenSSH client', { skip }, () => {
  let fx: SshFixture;
  before(async () => {
    if (skip) return;
    const ssh = `  authorized_keys: { alice: [ "${listed.publicLine}" ] }`;
    fx = await startSshFixture(standardConfig(sshd, { ssh }), sshd);
  });
  after(async () => await fx?.close());
  const ssh = (user: string, o: Parameters<typeof runSsh>[1] = {}, command = 'echo logged-on') =>
    runSsh(['-l', user, '127.0.0.1', command], { port: fx.ssh.port, ...o });

  it('wrong passwords: denied after max_logon_attempts (3); the right one is refused after that', async () => {
    const mark = fx.audit.length;
    // Once denied, the right password (offered by ssh's own password method) must not get in.
    const r = await ssh(login('bob'), { answers: ['bad', 'bad', 'bad', 'builder', 'builder', 'builder'] });
    assert.equal(r.code, 255);
    assert.equal(r.stdout.toString(), '');
    assert.equal(r.prompts.filter((p) => p.includes('Gateway password:')).length, 3, r.prompts.join('|'));
    assert.equal((await closesSince(fx, mark))[0]!.reason, 'denied');
    // The policy ended once: one result, however often the client tried again.
    const results = fx.audit.slice(mark).filter((e) => e.event === 'policy_result');
    assert.deepEqual(
      results.map((e) => e.result),
      ['access_denied'],
    );
  });

  it('the connection ends at the denial: no more prompts', async () => {
    const r = await ssh(login('bob'), { answers: ['bad', 'bad', 'bad', 'builder', 'builder', 'builder'] });
    assert.equal(r.code, 255);
    assert.equal(r.prompts.length, 3, r.prompts.join('|'));
  });

  it('the logon throttle: after 5 failures of bob from this address even his right password is refused', async () => {
    // Bob failed six times in the two tests above.
    const mark = fx.audit.length;
    const r = await ssh(login('bob'), { answers: ['builder'] });
    assert.equal(r.code, 255);
    assert.equal(r.stdout.toString(), '');
    const throttled = fx.audit.slice(mark).find((e) => e.event === 'logon_throttled');
    assert.equal(throttled?.user, 'bob');
    assert.equal((await closesSince(fx, mark))[0]!.reason, 'denied');
    fx.clock.advance(901_000); // past the per user and address window (900 s)
  });

  it('a right password on the second try logs on', async () => {
    const r = await ssh(login('alice'), { answers: ['bad', 'wonderland'] });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'logged-on\n');
    assert.equal(r.prompts.length, 2);
  });

  it('asks for the gateway user when the login names none', async () => {
    const mark = fx.audit.length;
    const r = await ssh(login(''), { answers: ['alice', 'wonderland'] });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'logged-on\n');
    assert.match(r.prompts[0] ?? '', /Gateway user:/);
    assert.match(r.prompts[1] ?? '', /Gateway password:/);
    assert.equal((await closesSince(fx, mark))[0]!.snapshot.user, 'alice');
  });

  it('a public key listed for the user logs on without a password; an unlisted key is refused', async () => {
    const mark = fx.audit.length;
    const r = await ssh(login(''), { identityFile: listed.file });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'logged-on\n');
    const [closed] = await closesSince(fx, mark);
    assert.equal(closed!.snapshot.user, 'alice');
    assert.equal(closed!.reason, 'logout');

    // Public keys only: other methods would count failed logons of the user.
    const keyOnly = (user: string, identityFile: string) =>
      runSsh(['-o', 'PreferredAuthentications=publickey', '-l', user, '127.0.0.1', 'echo no'], {
        port: fx.ssh.port,
        identityFile,
      });
    const other = await keyOnly(login(''), unlisted.file);
    assert.equal(other.code, 255);
    assert.equal(other.stdout.toString(), '');
    // Alice's key does not stand for bob.
    const bob = await keyOnly(
      login('bob', () => 'nobody'),
      listed.file,
    );
    assert.equal(bob.code, 255);
    assert.equal(bob.stdout.toString(), '');
  });

  it('the allow-list: alice may not be nobody, bob (ops) may not be root; the session is denied', async () => {
    let mark = fx.audit.length;
    const r = await ssh(
      login('alice', () => 'nobody'),
      { password: 'wonderland' },
    );
    assert.equal(r.code, 255);
    assert.match(r.stderr, /alice may not log on as nobody/);
    assert.equal(r.stdout.toString(), '');
    assert.equal((await closesSince(fx, mark))[0]!.reason, 'denied');
    mark = fx.audit.length;
    const bob = await ssh(login('bob'), { password: 'builder' });
    assert.equal(bob.code, 255);
    assert.match(bob.stderr, new RegExp(`bob may not log on as ${sshd.user}`));
    assert.equal((await closesSince(fx, mark))[0]!.reason, 'denied');
  });

  it('the password method logs on with gu=; without a gateway user or with a wrong password it fails', async () => {
    const ok = await connect(fx.ssh.port, { username: login('alice'), password: 'wonderland' });
    assert.ok(ok.client, ok.error?.message);
    assert.deepEqual(await exec(ok.client, 'echo by-password'), { out: 'by-password\n', code: 0 });
    ok.client.end();
    const wrong = await connect(fx.ssh.port, { username: login('alice'), password: 'nope' });
    assert.match(wrong.error?.message ?? '', /authentication methods failed/);
    const anonymous = await connect(fx.ssh.port, { username: login(''), password: 'wonderland' });
    assert.match(anonymous.error?.message ?? '', /authentication methods failed/);
  });

  it('a malformed destination is refused and leaves no session', async () => {
    const mark = fx.audit.length;
    for (const user of ['root@', 'a b@127.0.0.1', 'gu=@root@127.0.0.1']) {
      const r = await ssh(user, { password: 'wonderland' });
      assert.equal(r.code, 255, user);
      assert.equal(r.stdout.toString(), '');
    }
    // OpenSSH shows the refusal (keyboard-interactive instructions) at LogLevel INFO and up.
    const verbose = await runSsh(['-v', '-l', 'root@', '127.0.0.1', 'true'], { port: fx.ssh.port });
    assert.equal(verbose.code, 255);
    assert.match(verbose.stderr, /sessiongate: empty target server/);
    assert.deepEqual(startedSince(fx, mark), []);
    const page = await fx.gw.engine.list();
    assert.ok(!page.sessions.some((s) => /^(root@|a b|gu=@)/.test(s.variables['session.ssh.target'] ?? '')));
  });
});

describe('TOTP after the password, as keyboard-interactive prompts', { skip }, () => {
  let fx: SshFixture;
  const secrets = new Map<string, string>();
  before(async () => {
    if (skip) return;
    const plugins = `  - { name: otp, runtime: builtin, type: totp, config: { users_file: ./users.yaml, max_attempts: 3 } }`;
    const profile = '[ logon, { authenticate: users }, { authenticate: otp }, allow ]';
    const route = `    - { hosts: [ 127.0.0.1 ], ports: [ ${sshd.port} ], profile: ssh, credentials: { plugin: vault },
        allow: [ { users: [ alice, bob ], target_users: [ ${sshd.user} ] } ] }`;
    const ssh = `  authorized_keys: { bob: [ "${listed.publicLine}" ] }`;
    const yaml = standardConfig(sshd, { plugins, profile, route, ssh });
    fx = await startSshFixture(yaml, sshd, (dir, keyring) => {
      for (const [user, secret] of enrolUsers(join(dir, 'users.yaml'), keyring, ['alice', 'bob']))
        secrets.set(user, secret);
    });
  });
  after(async () => await fx?.close());

  /** The code of a time step from now (each step can be used once per user). */
  const code = (steps: number, user = 'alice') => totpCode(secrets.get(user)!, Date.now() + steps * 30_000);
  const wrong = () => wrongCode(secrets.get('alice')!);
  const answers = (codes: string[]) => (prompt: string) =>
    prompt.startsWith('Gateway password') ? 'wonderland' : (codes.shift() ?? '');

  it('password, then the code: the command runs', async () => {
    const a = await connect(fx.ssh.port, { username: login('alice'), tryKeyboard: true }, answers([code(0)]));
    assert.ok(a.client, a.error?.message);
    assert.deepEqual(a.prompts, ['Gateway password: ', 'One-time code']);
    assert.deepEqual(await exec(a.client, 'echo two-factors'), { out: 'two-factors\n', code: 0 });
    a.client.end();
  });

  it('a wrong code is asked again with the error; the next step code then lets in', async () => {
    const a = await connect(
      fx.ssh.port,
      { username: login('alice'), tryKeyboard: true },
      answers([wrong(), code(1)]),
    );
    assert.ok(a.client, a.error?.message);
    assert.deepEqual(a.prompts, ['Gateway password: ', 'One-time code', 'One-time code']);
    assert.ok(
      a.instructions.some((i) => i.includes('Invalid code')),
      a.instructions.join('|'),
    );
    a.client.end();
  });

  it('the password method, then the code by keyboard-interactive (partial success)', async () => {
    const r = await runSsh(
      [
        '-o',
        'PreferredAuthentications=password,keyboard-interactive',
        '-l',
        login('bob'),
        '127.0.0.1',
        'echo bob-in',
      ],
      { port: fx.ssh.port, answers: ['builder', code(0, 'bob')] },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'bob-in\n');
    assert.equal(r.prompts.length, 2);
    assert.match(r.prompts[0]!, /'s password: $/);
    assert.match(r.prompts[1]!, /One-time code$/);
  });

  // docs/ssh.md: a listed key stands for the logon step and the password check, not the second factor.
  it('a listed public key stands for the password; the TOTP code is still asked', async () => {
    const mark = fx.audit.length;
    const r = await runSsh(['-l', login(''), '127.0.0.1', 'echo key-only'], {
      port: fx.ssh.port,
      identityFile: listed.file,
      answers: [code(1, 'bob')],
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'key-only\n');
    assert.equal(r.prompts.length, 1, r.prompts.join('|'));
    assert.equal((await closesSince(fx, mark))[0]!.snapshot.user, 'bob');
  });

  it('wrong codes only: refused in the end, the session denied', async () => {
    const mark = fx.audit.length;
    const codes = Array.from({ length: 20 }, wrong);
    const a = await connect(fx.ssh.port, { username: login('alice'), tryKeyboard: true }, answers(codes));
    assert.equal(a.client, undefined);
    assert.match(a.error?.message ?? '', /authentication methods failed/);
    assert.ok(a.prompts.filter((p) => p === 'One-time code').length >= 3, a.prompts.join('|'));
    assert.equal((await closesSince(fx, mark))[0]!.reason, 'denied');
  });
});
