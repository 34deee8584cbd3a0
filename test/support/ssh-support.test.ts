// The SSH test support against real parts: OpenSSH's sshd with the OpenSSH client binaries and
// the ssh2 client, and the ssh2 password target with the OpenSSH client.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import ssh2 from 'ssh2';
import { startPasswordTarget } from './ssh-password-target.js';
import { runScp, runSftp, runSsh } from './ssh-client.js';
import { sshdRequired, sshdSkip, startSshd } from './sshd.js';

const { Client } = ssh2; // CommonJS: no named exports under ESM
const skip = sshdRequired() ? false : sshdSkip();

describe('a real sshd (startSshd) with the OpenSSH client', { skip }, () => {
  it('runs a command with the test key and returns its output and exit code', async (t) => {
    const sshd = await startSshd();
    t.after(() => sshd.stop());
    const dest = `${sshd.user}@127.0.0.1`;
    const r = await runSsh(['-p', String(sshd.port), dest, 'echo hello; exit 3'], {
      identityFile: sshd.userPrivateKeyFile,
    });
    assert.equal(r.stdout.toString(), 'hello\n', r.stderr);
    assert.equal(r.code, 3);
    assert.match(sshd.hostKeyLine, /^ssh-ed25519 AAAA\S+$/);
    assert.equal(sshd.knownHostsLine, `[127.0.0.1]:${sshd.port} ${sshd.hostKeyLine}`);
    assert.match(sshd.hostKeySha256, /^SHA256:[A-Za-z0-9+/]{43}$/);
    assert.match(sshd.userPrivateKey, /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);

    const refused = await runSsh([dest, 'true'], { port: sshd.port });
    assert.equal(refused.code, 255, 'no key and no password: refused');
  });

  it('copies a 1 MB file there and back with scp, byte for byte', async (t) => {
    const sshd = await startSshd();
    t.after(() => sshd.stop());
    const data = randomBytes(1 << 20);
    const local = join(sshd.dir, 'local.bin');
    writeFileSync(local, data);
    const remote = `${sshd.user}@127.0.0.1:${join(sshd.dir, 'remote.bin')}`;
    const o = { port: sshd.port, identityFile: sshd.userPrivateKeyFile };
    const up = await runScp(['-q', local, remote], o);
    assert.equal(up.code, 0, up.stderr);
    const back = join(sshd.dir, 'back.bin');
    const down = await runScp(['-q', remote, back], o);
    assert.equal(down.code, 0, down.stderr);
    assert.ok(readFileSync(back).equals(data));
  });

  it('puts and gets a file with an sftp batch', async (t) => {
    const sshd = await startSshd();
    t.after(() => sshd.stop());
    writeFileSync(join(sshd.dir, 'a.txt'), 'sftp content\n');
    const input = `put ${join(sshd.dir, 'a.txt')} ${join(sshd.dir, 'b.txt')}\nget ${join(sshd.dir, 'b.txt')} ${join(sshd.dir, 'c.txt')}\n`;
    const r = await runSftp(['-b', '-', `${sshd.user}@127.0.0.1`], {
      port: sshd.port,
      identityFile: sshd.userPrivateKeyFile,
      input,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(sshd.dir, 'c.txt'), 'utf8'), 'sftp content\n');
  });

  it('takes the ssh2 Client with the test key, checking the host key', async (t) => {
    const sshd = await startSshd();
    t.after(() => sshd.stop());
    const client = new Client();
    t.after(() => client.end());
    const hostKey = sshd.hostKeyLine.split(' ')[1];
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve()).once('error', reject);
      client.connect({
        host: sshd.host,
        port: sshd.port,
        username: sshd.user,
        privateKey: sshd.userPrivateKey,
        hostVerifier: (key: Buffer) => key.toString('base64') === hostKey,
        readyTimeout: 5000,
      });
    });
    const { out, code } = await new Promise<{ out: string; code: number }>((resolve, reject) => {
      client.exec('echo from-ssh2; exit 5', (err, stream) => {
        if (err) return reject(err);
        let out = '';
        let code = -1;
        stream.on('data', (d: Buffer) => (out += d.toString()));
        stream.on('exit', (c: number) => (code = c));
        stream.on('close', () => resolve({ out, code }));
      });
    });
    assert.equal(out, 'from-ssh2\n');
    assert.equal(code, 5);
  });
});

describe('the password target (ssh2 server) with the OpenSSH client', { skip }, () => {
  it('logs in with the right password, runs exec and echoes a shell', async (t) => {
    const target = await startPasswordTarget({ user: 'alice', password: 'open sesame' });
    t.after(() => target.stop());
    const o = { port: target.port, password: 'open sesame' };
    const exit = await runSsh(['alice@127.0.0.1', 'exit 4'], o);
    assert.equal(exit.code, 4, exit.stderr);
    const ran = await runSsh(['alice@127.0.0.1', 'uname -a'], o);
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout.toString(), 'ran: uname -a\n');
    const shell = await runSsh(['-tt', 'alice@127.0.0.1'], { ...o, input: 'echo me\n' });
    assert.match(shell.stdout.toString(), /echo me/);
    assert.deepEqual(target.logons, ['open sesame', 'open sesame', 'open sesame']);
    assert.deepEqual(target.commands, ['exit 4', 'uname -a']);
    assert.match(ran.prompts[0] ?? '', /password/i);
  });

  it('refuses a wrong password and records it; answers are given in order', async (t) => {
    const target = await startPasswordTarget({ user: 'alice', password: 'right' });
    t.after(() => target.stop());
    const wrong = await runSsh(['-o', 'NumberOfPasswordPrompts=1', 'alice@127.0.0.1', 'true'], {
      port: target.port,
      password: 'wrong',
    });
    assert.equal(wrong.code, 255);
    assert.match(wrong.stderr, /Permission denied/);
    assert.deepEqual(target.logons, ['wrong']);

    const second = await runSsh(['alice@127.0.0.1', 'true'], {
      port: target.port,
      answers: ['bad', 'right'],
    });
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(target.logons, ['wrong', 'bad', 'right']);
    assert.equal(second.prompts.length, 2);
  });
});
