import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client, ClientChannel } from 'ssh2';
import { writeCredentials } from '../../src/plugins/builtin/credentials-file.js';
import { runSftp, runSsh } from '../support/ssh-client.js';
import { startPasswordTarget, type PasswordTarget } from '../support/ssh-password-target.js';
import { sshdSkip, startSshd, type SshdTarget } from '../support/sshd.js';
import { tcpServer } from './fixtures/tcp-server.js';
import { gatewayClient, standardConfig, startSshFixture, until, type SshFixture } from './harness.js';

const skip = sshdSkip();
const here = new URL('.', import.meta.url).pathname;
let sshd: SshdTarget;

before(async () => {
  if (!skip) sshd = await startSshd();
});
after(async () => await sshd?.stop());

/** The SPS user name for alice to reach `user` on 127.0.0.1:port (the sshd by default). */
const login = (user = sshd.user, port = sshd.port) => `gu=alice@${user}@127.0.0.1+${port}`;
const ssh = (fx: SshFixture, user: string | undefined, port: number | undefined, ...args: string[]) =>
  runSsh(['-l', login(user, port), '127.0.0.1', ...args], { port: fx.ssh.port, password: 'wonderland' });
/** `SHA256:...` of a `type base64` public key line, computed here (not by the gateway's code). */
const sha256 = (line: string) =>
  `SHA256:${createHash('sha256')
    .update(Buffer.from(line.split(' ')[1]!, 'base64'))
    .digest('base64')
    .replace(/=+$/, '')}`;
const route = (port: number, users: string, extra = '') =>
  `    - { hosts: [127.0.0.1], ports: [${port}], profile: ssh, ${extra}allow: [ { users: [alice], target_users: [${users}] } ] }`;

describe('the target host key', { skip }, () => {
  let fx: SshFixture;
  let pinning: SshFixture;
  let other: PasswordTarget;
  const proxy = { to: 0 };
  let proxied: Awaited<ReturnType<typeof tcpServer>>;
  const empty = (dir: string) => writeFileSync(join(dir, 'known_hosts'), '');
  before(async () => {
    if (skip) return;
    fx = await startSshFixture(standardConfig(sshd), sshd, empty);
    other = await startPasswordTarget({ user: 'svc', password: 'right' });
    proxy.to = sshd.port;
    proxied = await tcpServer(proxy);
    const r = route(proxied.port, sshd.user, 'credentials: { plugin: vault }, ');
    pinning = await startSshFixture(
      standardConfig(sshd, { route: r, ssh: '  unknown_hosts: pin' }),
      sshd,
      empty,
    );
  });
  after(async () => {
    await fx?.close();
    await pinning?.close();
    await proxied?.close();
    await other?.stop();
  });

  it('refuses an unknown key: the host and the offered fingerprint on stderr, exit 255, audited', async () => {
    const r = await ssh(fx, undefined, undefined, 'true');
    assert.equal(r.code, 255, r.stderr);
    assert.ok(
      r.stderr.includes(`sessiongate: the host key of [127.0.0.1]:${sshd.port} is unknown`),
      r.stderr,
    );
    assert.ok(r.stderr.includes(sshd.hostKeySha256), r.stderr);
    await until(() => fx.audit.some((e) => e.event === 'ssh_target'), 20_000, 'ssh_target audited');
    const record = fx.audit.find((e) => e.event === 'ssh_target');
    assert.equal(record?.result, 'failed');
    assert.ok(String(record?.message).includes(sshd.hostKeySha256));
  });

  it('refuses a key that is not the one listed, naming both fingerprints; nothing runs', async () => {
    writeFileSync(join(fx.dir, 'known_hosts'), `[127.0.0.1]:${sshd.port} ${other.hostKeyLine}\n`);
    const marker = join(sshd.dir, 'ran-on-mismatch');
    const r = await ssh(fx, undefined, undefined, `touch ${marker}`);
    assert.equal(r.code, 255, r.stderr);
    assert.match(r.stderr, /sessiongate: the host key of \S+ does not match/);
    assert.ok(r.stderr.includes(sshd.hostKeySha256), 'the offered key');
    assert.ok(r.stderr.includes(sha256(other.hostKeyLine)), 'the listed key');
    assert.equal(existsSync(marker), false);
  });

  it('pins an unknown key on first use, then refuses another key for that host', async () => {
    const file = join(pinning.dir, 'known_hosts');
    const first = await ssh(pinning, undefined, proxied.port, 'echo pinned');
    assert.equal(first.stdout.toString(), 'pinned\n', first.stderr);
    const pinned = `[127.0.0.1]:${proxied.port} ${sshd.hostKeyLine}\n`;
    assert.equal(readFileSync(file, 'utf8'), pinned);
    proxy.to = other.port; // the same host name and port now answer with another key
    const second = await ssh(pinning, undefined, proxied.port, 'echo again');
    assert.equal(second.code, 255, second.stderr);
    assert.match(second.stderr, /does not match/);
    assert.ok(second.stderr.includes(sha256(other.hostKeyLine)), second.stderr);
    assert.ok(second.stderr.includes(sshd.hostKeySha256), second.stderr);
    assert.equal(readFileSync(file, 'utf8'), pinned, 'a known host is never pinned again');
    assert.deepEqual(other.logons, [], 'no credential went to the other key');
  });
});

describe('the target logon', { skip }, () => {
  let fx: SshFixture;
  let store: PasswordTarget;
  let relay: PasswordTarget;
  const hangLog = () =>
    existsSync(join(fx.dir, 'hang.log')) ? readFileSync(join(fx.dir, 'hang.log'), 'utf8').split('\n') : [];
  before(async () => {
    if (skip) return;
    store = await startPasswordTarget({ user: 'svc', password: 'right' });
    relay = await startPasswordTarget({ user: 'alice', password: 'wonderland' });
    const routes = [
      route(store.port, 'svc, nobody', 'credentials: { plugin: vault }, '),
      route(relay.port, 'alice'),
      route(sshd.port, sshd.user, 'credentials: { plugin: hang }, '),
    ].join('\n');
    const plugins = `  - { name: hang, runtime: module, path: ${here}fixtures/hanging-vault.ts, timeout_ms: 1000, config: { log_file: \${DIR}/hang.log } }`;
    fx = await startSshFixture(standardConfig(sshd, { route: routes, plugins }), sshd, (dir, keyring) => {
      const lines = [sshd.knownHostsLine, store.knownHostsLine, relay.knownHostsLine];
      writeFileSync(join(dir, 'known_hosts'), lines.join('\n') + '\n');
      writeCredentials(
        join(dir, 'creds.json'),
        keyring,
        new Map([
          ['svc@127.0.0.1', { passwords: ['wrong1', 'right'], private_keys: [] }],
          ['nobody@127.0.0.1', { passwords: ['wrong1', 'wrong2'], private_keys: [] }],
        ]),
      );
    });
  });
  after(async () => {
    await fx?.close();
    await store?.stop();
    await relay?.stop();
  });

  it("tries the store's passwords in order on one connection until one works", async () => {
    const r = await ssh(fx, 'svc', store.port, 'exit 4');
    assert.equal(r.code, 4, r.stderr);
    assert.deepEqual(store.logons, ['wrong1', 'right']);
    assert.deepEqual(store.commands, ['exit 4']);
  });

  it('says the target refused all the credentials when none works (exit 255)', async () => {
    store.logons.length = 0;
    const r = await ssh(fx, 'nobody', store.port, 'echo hi');
    assert.equal(r.code, 255);
    const message = `sessiongate: could not log on to nobody@127.0.0.1:${store.port}: the target refused all 2 credentials`;
    assert.ok(r.stderr.includes(message), r.stderr);
    assert.deepEqual(store.logons, ['wrong1', 'wrong2']);
    assert.deepEqual(store.commands, ['exit 4'], 'nothing more ran');
  });

  it('a store that does not answer: "no credentials" after its timeout; closed once, session_ended with its cookie', async () => {
    const started = Date.now();
    const r = await ssh(fx, undefined, undefined, 'echo hi');
    const took = Date.now() - started;
    assert.equal(r.code, 255);
    assert.ok(
      r.stderr.includes(`sessiongate: no credentials to log on to ${sshd.user}@127.0.0.1:${sshd.port}`),
      r.stderr,
    );
    assert.ok(took >= 1000 && took < 5000, `answered after ${took} ms (plugin timeout 1000 ms)`);
    const id = hangLog()
      .find((l) => l.startsWith('get_password_list '))
      ?.split(' ')[1];
    assert.ok(id, 'the store was asked for passwords');
    await until(() => hangLog().some((l) => l.startsWith(`session_ended ${id}`)), 20_000, 'session_ended');
    assert.deepEqual(
      hangLog().filter((l) => l.startsWith('session_ended')),
      [`session_ended ${id} {"asked":"keys"}`],
    );
    const closes = fx.closed.filter((c) => c.sessionId === id);
    assert.equal(closes.length, 1);
    assert.deepEqual(closes[0]!.snapshot.cookies.hang, { asked: 'keys' });
  });

  it("relays the user's own gateway password when the route has no credential store", async () => {
    const r = await ssh(fx, 'alice', relay.port, 'echo hi');
    assert.equal(r.stdout.toString(), 'ran: echo hi\n', r.stderr);
    assert.equal(r.code, 0);
    assert.deepEqual(relay.logons, ['wonderland']);
  });
});

describe('channels through the gateway', { skip }, () => {
  let fx: SshFixture;
  let forwarding: SshFixture;
  let echo: Awaited<ReturnType<typeof tcpServer>>;
  const clients: Client[] = [];
  const client = async (f: SshFixture) => {
    const c = await gatewayClient(f.ssh.port, login());
    clients.push(c);
    return c;
  };
  before(async () => {
    if (skip) return;
    fx = await startSshFixture(standardConfig(sshd), sshd);
    const r = route(sshd.port, sshd.user, 'credentials: { plugin: vault }, forwarding: { local: true }, ');
    forwarding = await startSshFixture(standardConfig(sshd, { route: r }), sshd);
    echo = await tcpServer();
  });
  after(async () => {
    for (const c of clients) c.end();
    await fx?.close();
    await forwarding?.close();
    await echo?.close();
  });

  it("passes the route's environment variables only", async () => {
    const r = await runSsh(
      [
        '-o',
        'SendEnv=LANG',
        '-o',
        'SendEnv=SG_TEST_SECRET',
        '-l',
        login(),
        '127.0.0.1',
        'echo "$LANG|$SG_TEST_SECRET"',
      ],
      { port: fx.ssh.port, password: 'wonderland', env: { LANG: 'C.sgtest', SG_TEST_SECRET: 'leaked' } },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'C.sgtest|\n');
    // sshd itself accepts SG_TEST_*: it is the gateway that kept it back.
    const direct = await runSsh(
      [
        '-p',
        String(sshd.port),
        '-o',
        'SendEnv=SG_TEST_SECRET',
        `${sshd.user}@127.0.0.1`,
        'echo "$SG_TEST_SECRET"',
      ],
      { identityFile: sshd.userPrivateKeyFile, env: { SG_TEST_SECRET: 'leaked' } },
    );
    assert.equal(direct.stdout.toString(), 'leaked\n', direct.stderr);
  });

  it('refuses port forwarding by default and carries it when the route allows it', async () => {
    const forward = (c: Client) =>
      new Promise<ClientChannel | Error>((done) =>
        c.forwardOut('127.0.0.1', 40_000, '127.0.0.1', echo.port, (err, ch) => done(err ?? ch)),
      );
    assert.ok((await forward(await client(fx))) instanceof Error, 'refused by default');
    const ch = await forward(await client(forwarding));
    assert.ok(!(ch instanceof Error), String(ch));
    let got = '';
    ch.on('data', (d: Buffer) => (got += d.toString()));
    ch.write('ping through the target');
    await until(() => got === 'ping through the target', 5000, 'echo came back');
    ch.close();
  });

  it('keeps a file byte for byte through the sftp subsystem', async () => {
    const data = randomBytes(300_000);
    const local = join(fx.dir, 'sftp-up.bin');
    const remote = join(sshd.dir, 'sftp-copied.bin');
    const back = join(fx.dir, 'sftp-down.bin');
    writeFileSync(local, data);
    const r = await runSftp(['-o', `User=${login()}`, '127.0.0.1'], {
      port: fx.ssh.port,
      password: 'wonderland',
      input: `put ${local} ${remote}\nget ${remote} ${back}\n`,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(readFileSync(remote).equals(data), 'uploaded');
    assert.ok(readFileSync(back).equals(data), 'downloaded');
    assert.ok(fx.audit.some((e) => e.event === 'ssh_channel' && e.subsystem === 'sftp'));
  });

  it('a shell with a pty: its size, window changes and exit status reach the client', async () => {
    const c = await client(fx);
    const ch = await new Promise<ClientChannel>((done, fail) =>
      c.shell({ term: 'xterm', rows: 30, cols: 100 }, (err, s) => (err ? fail(err) : done(s))),
    );
    let text = '';
    ch.on('data', (d: Buffer) => (text += d.toString()));
    const exit = new Promise<number | null>((done) => ch.on('exit', (code: number | null) => done(code)));
    ch.write('stty size\n');
    // The typed command is echoed too: only the answer is a line of two numbers.
    await until(() => /^30 100\r?$/m.test(text), 20_000, 'the size asked for');
    ch.setWindow(40, 120, 0, 0);
    ch.write('stty size; exit 7\n');
    assert.equal(await exit, 7);
    assert.match(text, /^40 120\r?$/m);
  });
});
