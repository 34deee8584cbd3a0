// The SSH gateway as `sessiongate serve` runs it: a process SIGKILLed mid-session leaves a
// session that another process sweeps once its lease runs out (session_ended delivered once),
// and with --workers 2 an admin kill reaches the connection on whichever worker holds it.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { track, untrack } from '../support/processes.js';
import { sshdSkip, startSshd, type SshdTarget } from '../support/sshd.js';
import { freePort } from '../e2e/gateways.js';
import { gatewayClient, openShell, until } from './harness.js';

const skip = sshdSkip();
const BIN = new URL('../../bin/sessiongate.js', import.meta.url).pathname;
const here = new URL('.', import.meta.url).pathname;
let sshd: SshdTarget;
let dir: string;
const procs = new Set<ChildProcess>();

before(async () => {
  if (skip) return;
  sshd = await startSshd();
  dir = mkdtempSync(join(tmpdir(), 'sg-sshproc-'));
  writeFileSync(join(dir, 'known_hosts'), sshd.knownHostsLine + '\n');
});
after(async () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  await sshd?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function writeConfig(
  name: string,
  ports: { http: number; admin: number; ssh: number },
): Promise<string> {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `
store: sqlite:./${name}.db
keys: ./keyring.json
admin: { port: ${ports.admin}, token_file: ./${name}.token }
listen: { port: ${ports.http} }
plugins:
  - { name: keys, runtime: module, path: ${here}fixtures/key-store.ts, config: { key_file: ${sshd.userPrivateKeyFile}, log_file: ./${name}-hooks.log } }
profiles:
  ssh: { policy: [ allow ] }
routes:
  - { upstream: "http://127.0.0.1:9" }
ssh:
  listen: { port: ${ports.ssh} }
  host_keys: [ ./ssh_host_key ]
  known_hosts: ./known_hosts
  check_interval_ms: 200
  orphan_after_seconds: 3
  routes:
    - hosts: [ 127.0.0.1 ]
      ports: [ ${sshd.port} ]
      profile: ssh
      credentials: { plugin: keys }
      allow: [ { target_users: [ ${sshd.user} ] } ]
`,
  );
  return file;
}

/** `serve` on the config; resolves once `workers` processes serve SSH. */
async function serve(
  file: string,
  workers = 1,
): Promise<{ proc: ChildProcess; out: () => string; sshPids: () => number[] }> {
  const args = [BIN, 'serve', '--config', file, ...(workers > 1 ? ['--workers', String(workers)] : [])];
  const proc = spawn(process.execPath, args, {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  procs.add(proc);
  track(proc);
  proc.once('exit', () => untrack(proc));
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const sshPids = () =>
    out
      .split('\n')
      .filter((l) => l.includes('"ssh listening"'))
      .map((l) => (JSON.parse(l) as { pid: number }).pid);
  await until(
    () => {
      if (proc.exitCode !== null) throw new Error(`serve exited: ${out}`);
      return sshPids().length >= workers;
    },
    30_000,
    'serve listening',
  );
  return { proc, out: () => out, sshPids };
}

const hookLines = (name: string) => {
  const f = join(dir, `${name}-hooks.log`);
  return existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n') : [];
};
const login = () => `${sshd.user}@127.0.0.1+${sshd.port}`;

describe('the SSH gateway in serve processes', { skip }, () => {
  it(
    'a gateway SIGKILLed mid-session: the next process sweeps the session, session_ended once',
    { timeout: 60_000 },
    async () => {
      const ports = { http: await freePort(), admin: await freePort(), ssh: await freePort() };
      const file = await writeConfig('crash', ports);
      const first = await serve(file);
      const client = await gatewayClient(ports.ssh, login(), []);
      const shell = await openShell(client);
      shell.channel.write('echo up-$((1+1))\n');
      await until(() => shell.output().includes('up-2'), 20_000, 'shell answers');
      const id = /get_private_key_list (\w+)/.exec(hookLines('crash').join('\n'))?.[1];
      assert.ok(id, 'the store was asked for a key');
      // The lease was set at logon: kill the process without warning.
      first.proc.kill('SIGKILL');
      await shell.exit;
      client.end();
      const second = await serve(file);
      await until(
        () => hookLines('crash').includes(`session_ended ${id}`),
        20_000,
        'session_ended after the sweep',
      );
      // The second process's own connection-less sweep and close pipeline ran: once only.
      assert.equal(hookLines('crash').filter((l) => l === `session_ended ${id}`).length, 1);
      second.proc.kill('SIGTERM');
    },
  );

  it(
    'the admin port taken: serve says so and exits, the SSH listener closed with it',
    { timeout: 60_000 },
    async () => {
      const ports = { http: await freePort(), admin: await freePort(), ssh: await freePort() };
      const file = await writeConfig('taken', ports);
      const blocker = createServer();
      await new Promise<void>((r) => blocker.listen(ports.admin, '127.0.0.1', r));
      try {
        const proc = spawn(process.execPath, [BIN, 'serve', '--config', file], {
          cwd: dir,
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, NODE_OPTIONS: '' },
        });
        procs.add(proc);
        let err = '';
        proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
        const code = await new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
        assert.notEqual(code, 0);
        assert.match(err, /EADDRINUSE|in use/);
        // The SSH port is free again.
        const probe = createServer();
        await new Promise<void>((r, f) => probe.once('error', f).listen(ports.ssh, '127.0.0.1', () => r()));
        await new Promise<void>((r) => probe.close(() => r()));
      } finally {
        await new Promise<void>((r) => blocker.close(() => r()));
      }
    },
  );

  it(
    '--workers 2: an admin kill ends each connection on whichever worker holds it',
    { timeout: 60_000 },
    async () => {
      const ports = { http: await freePort(), admin: await freePort(), ssh: await freePort() };
      const file = await writeConfig('workers', ports);
      const gw = await serve(file, 2);
      assert.equal(new Set(gw.sshPids()).size, 2);
      const clients = await Promise.all([0, 1, 2, 3].map(() => gatewayClient(ports.ssh, login(), [])));
      const shells = await Promise.all(clients.map((c) => openShell(c)));
      for (const [i, s] of shells.entries()) s.channel.write(`echo w${i}-$((2*3))\n`);
      await until(() => shells.every((s, i) => s.output().includes(`w${i}-6`)), 10_000, 'all shells answer');
      const token = readFileSync(join(dir, 'workers.token'), 'utf8').trim();
      const headers = { authorization: `Bearer ${token}` };
      const list = (await (
        await fetch(`http://127.0.0.1:${ports.admin}/api/v1/sessions`, { headers })
      ).json()) as {
        sessions: { id: string }[];
      };
      assert.equal(list.sessions.length, 4);
      for (const s of list.sessions) {
        const res = await fetch(`http://127.0.0.1:${ports.admin}/api/v1/sessions/${s.id}`, {
          method: 'DELETE',
          headers,
        });
        assert.equal(res.status, 204);
      }
      const codes = await Promise.all(shells.map((s) => s.exit));
      assert.deepEqual(codes, [255, 255, 255, 255]);
      for (const s of shells) assert.match(s.output(), /ended elsewhere/);
      for (const c of clients) c.end();
      gw.proc.kill('SIGTERM');
    },
  );
});
