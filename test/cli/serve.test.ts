import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import type { Io } from '../../src/cli/context.js';
import { INIT_FILES } from '../../src/cli/init-command.js';
import { main } from '../../src/cli/main.js';
import { idOfToken, type SessionToken } from '../../src/core/ids.js';
import { configSchema, profileSchema, routeSchema } from '../../src/gateway/config/schema.js';
import { hashPassword, verifyPassword } from '../../src/plugins/builtin/password.js';
import { parseUsers } from '../../src/plugins/builtin/users-file.js';
import { basic } from '../gateway/harness.js';
import { BIN, tempDir } from './helpers.js';

// check-config, init and serve as an operator runs them: check-config and init in process
// (fast), serve as the real command in a child process (signals, workers, exit codes).

/** Run `main` in this process; unlike runCli, several stderr lines are allowed. */
async function cli(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: Io = { out: (t) => void (stdout += t), err: (t) => void (stderr += t), env: {}, cwd };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

/** The start of a config `serve` can run on any free port, without an admin listener. */
const SERVED = `listen: { host: 127.0.0.1, port: 0 }
store: memory
keys: ./keyring.json
admin: { enabled: false }
`;

const BAD = `listen: { host: 127.0.0.1, port: eighty }
store: memory
trusted_proxies: [127.0.0.1, 10.0.0.0/33]
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
profiles:
  default:
    inactivty_timeout: 60
    policy: [logon, { authenticate: nosuch }, allow]
routes:
  - { match: { path: / }, upstream: demo }
`;

describe('check-config', () => {
  it('lists every problem of a bad file on its own line as FILE: path: message (line N), exit 2', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'bad.yaml'), BAD);
    const r = await cli(['check-config', 'bad.yaml'], dir);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines[0], 'sessiongate: bad.yaml: the configuration has 4 problem(s):');
    assert.deepEqual(
      lines
        .slice(1)
        .map((l) => l.trim())
        .sort(),
      [
        'bad.yaml: listen.port: expected a port number (line 1)',
        'bad.yaml: profiles.default.inactivty_timeout: unknown setting (line 8)',
        'bad.yaml: profiles.default.policy.1: no plugin named nosuch under plugins (line 9)',
        'bad.yaml: trusted_proxies.1: expected an address or CIDR, got 10.0.0.0/33 (line 3)',
      ],
    );
  });

  it('a missing file and invalid YAML are problems too', async () => {
    const dir = tempDir();
    const missing = await cli(['check-config', 'nope.yaml'], dir);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nope\.yaml: cannot read the file \(no such file\)/);
    writeFileSync(join(dir, 'broken.yaml'), 'store: memory\nstore: sqlite:x.db\n');
    const broken = await cli(['check-config', 'broken.yaml'], dir);
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /\n {2}broken\.yaml: invalid YAML: .*unique.* \(line 2\)\n/);
  });
});

describe('init', () => {
  it('writes a starter config that check-config accepts, a 0600 key ring and a users file', async () => {
    const dir = tempDir();
    const r = await cli(['init', 'site'], dir);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const password = /password: {2}(\S+)/.exec(r.stdout)?.[1] ?? '';
    assert.match(password, /^[A-Za-z0-9_-]{24}$/);
    assert.match(r.stdout, /user name: admin/);
    const site = join(dir, 'site');
    assert.equal(statSync(join(site, INIT_FILES.keys)).mode & 0o777, 0o600);
    assert.equal(statSync(join(site, INIT_FILES.users)).mode & 0o777, 0o600);
    assert.equal(statSync(join(site, INIT_FILES.sshHostKey)).mode & 0o777, 0o600);
    assert.match(r.stdout, /SSH host key site\/var\/ssh_host_ed25519_key: SHA256:[A-Za-z0-9+/]{43}\n/);
    const users = parseUsers(readFileSync(join(site, INIT_FILES.users), 'utf8'), 'users.yaml');
    assert.equal(await verifyPassword(password, users.get('admin')?.password), true);
    assert.ok(!readFileSync(join(site, INIT_FILES.users), 'utf8').includes(password));

    const check = await cli(['check-config', 'site/sessiongate.yaml'], dir);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /site\/sessiongate\.yaml: ok/);
  });

  it('shows every setting of the schema, each with a comment nearby', async () => {
    const dir = tempDir();
    assert.equal((await cli(['init'], dir)).code, 0);
    const text = readFileSync(join(dir, INIT_FILES.config), 'utf8');
    const keys = [
      ...Object.keys(configSchema.shape),
      ...Object.keys(profileSchema.shape),
      ...Object.keys(routeSchema.shape),
      ...[
        'host',
        'port',
        'tls',
        'cert',
        'key',
        'max_header_bytes',
        'hsts',
        'max_age',
        'include_subdomains',
        'preload',
        'token_file',
        'enabled',
        'level',
      ],
      ...['name', 'secure', 'domain', 'same_site', 'limit', 'on_limit', 'min', 'max'],
      ...['connect_ms', 'headers_ms', 'body_ms', 'plugin', 'account', 'inject', 'runtime', 'type'],
    ];
    for (const key of keys) assert.match(text, new RegExp(`\\b${key}:`), `${key} is shown`);
    assert.ok(text.split('\n').filter((l) => l.includes('#')).length >= 30, 'commented');
    const parsed = parse(text) as Record<string, unknown>;
    // The SSH gateway needs targets to be named: shown, commented out.
    const optional = ['ssh'];
    assert.deepEqual(
      Object.keys(parsed).sort(),
      Object.keys(configSchema.shape)
        .filter((k) => !optional.includes(k))
        .sort(),
    );
    assert.match(text, /^# ssh:$/m);
  });

  it('refuses to overwrite: one line naming the file, exit 1, nothing changed', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'var'));
    writeFileSync(join(dir, INIT_FILES.users), 'users: {}\n# mine\n');
    const r = await cli(['init', '.'], dir);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      'sessiongate: init: var/users.yaml already exists; nothing was written (move it away or pick another DIR)\n',
    );
    assert.equal(readFileSync(join(dir, INIT_FILES.users), 'utf8'), 'users: {}\n# mine\n');
    assert.equal(existsSync(join(dir, INIT_FILES.config)), false);
    assert.equal(existsSync(join(dir, INIT_FILES.keys)), false);

    const again = tempDir();
    assert.equal((await cli(['init'], again)).code, 0);
    const before = readFileSync(join(again, INIT_FILES.keys), 'utf8');
    const second = await cli(['init'], again);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /^sessiongate: init: sessiongate\.yaml already exists/);
    assert.equal(readFileSync(join(again, INIT_FILES.keys), 'utf8'), before);
  });

  it('rejects a bad --user and extra arguments as usage errors (exit 2)', async () => {
    const dir = tempDir();
    assert.equal((await cli(['init', '--user', '-x'], dir)).code, 2);
    assert.equal((await cli(['init', 'a', 'b'], dir)).code, 2);
    assert.equal(existsSync(join(dir, INIT_FILES.config)), false);
  });
});

// ---- serve, as a child process ----

interface Child {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** The exit code, or a failure (and SIGKILL) when the process is still there after `ms`. */
async function exitOf(child: Child, ms = 10_000): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), ms)));
  const code = await Promise.race([child.exited, late]);
  clearTimeout(timer);
  if (code === 'late') {
    child.proc.kill('SIGKILL');
    assert.fail(`serve did not exit within ${ms} ms\nstderr:\n${child.stderr()}`);
  }
  return code;
}

async function within<T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

function startServe(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Child {
  const proc = spawn(process.execPath, [BIN, 'serve', ...args], {
    cwd,
    env: { ...process.env, SESSIONGATE_DEBUG: '', NODE_OPTIONS: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(proc);
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, stdout: () => out, stderr: () => err, exited };
}

async function until<T>(what: string, probe: () => T | undefined, child: Child, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end || child.proc.exitCode !== null) {
      throw new Error(`${what}: gave up\nstdout:\n${child.stdout()}\nstderr:\n${child.stderr()}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request on a connection of its own (so a cluster's workers take turns). */
function send(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false, headers: { accept: 'application/json', ...headers } });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The session token a reply set last (a logon sets the new session's, then the rotated one). */
const tokenOf = (r: Reply): string =>
  /MRHSession=([^;]+)/.exec(
    String(r.headers['set-cookie']?.findLast((c) => c.startsWith('MRHSession=')) ?? ''),
  )?.[1] ?? '';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

async function usersFile(dir: string): Promise<void> {
  const hash = await hashPassword('wonderland', { N: 1024, r: 8, p: 1 });
  writeFileSync(join(dir, 'users.yaml'), `users:\n  alice:\n    password: ${hash}\n`);
}

/** The command line of a running process (Linux /proc), as its arguments. */
const commandLine = (pid: number): string[] =>
  readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);

/** The pid in the gateway's `listening` log line (JSON on stdout). */
const listeningPid = (stdout: string): number | undefined => {
  // Whole lines only: the last one may still be arriving.
  for (const line of stdout.split('\n').slice(0, -1)) {
    if (!line.startsWith('{')) continue;
    const l = JSON.parse(line) as { msg?: string; pid?: number };
    if (l.msg === 'listening') return l.pid;
  }
  return undefined;
};

describe('serve', () => {
  it(
    'relaunches with 64 MB semi-spaces and no memory reducer; keeps a size from NODE_OPTIONS; runs in place when nothing is to add',
    { skip: !existsSync('/proc/self/cmdline') && 'needs /proc' },
    async () => {
      const dir = tempDir();
      writeFileSync(
        join(dir, 'sessiongate.yaml'),
        `${SERVED}routes:
  - { match: { path: / }, upstream: demo }
`,
      );
      const cases: {
        args: string[];
        env?: NodeJS.ProcessEnv;
        relaunched: boolean;
        mb?: number;
        noReducer?: boolean;
      }[] = [
        { args: [], relaunched: true, mb: 64, noReducer: true },
        { args: ['--semi-space-mb', '24', '--memory-reducer'], relaunched: true, mb: 24 },
        { args: [], env: { NODE_OPTIONS: '--max-semi-space-size=16' }, relaunched: true, noReducer: true },
        { args: ['--semi-space-mb', '0', '--memory-reducer'], relaunched: false },
      ];
      for (const c of cases) {
        const what = `serve ${c.args.join(' ')} ${c.env?.NODE_OPTIONS ?? ''}`;
        const child = startServe(['--config', 'sessiongate.yaml', ...c.args], dir, c.env);
        try {
          // The log line (stdout) and the banner (stderr) arrive on two pipes, in either order.
          const { pid, base } = await until(
            'listening',
            () => {
              const pid = listeningPid(child.stdout());
              const base = /listening on (http:\/\/\S+)/.exec(child.stderr())?.[1];
              return pid !== undefined && base !== undefined ? { pid, base } : undefined;
            },
            child,
          );
          assert.equal((await send(`${base}/`)).status, 401, `${what}: the gateway answers`);
          const argv = commandLine(pid);
          assert.equal(
            pid !== child.proc.pid,
            c.relaunched,
            `${what}: gateway pid ${pid}, serve pid ${child.proc.pid}`,
          );
          const flags = argv.filter((a) => /^--(m(in|ax)-semi-space-size|no-memory-reducer)/.test(a));
          const want = c.mb ? [`--min-semi-space-size=${c.mb}`, `--max-semi-space-size=${c.mb}`] : [];
          if (c.noReducer) want.push('--no-memory-reducer');
          assert.deepEqual(flags, want, `${what}: ${argv.join(' ')}`);
          // The same command again: serve, with the operator's arguments.
          assert.deepEqual(
            argv.slice(argv.indexOf('serve')),
            ['serve', '--config', 'sessiongate.yaml', ...c.args],
            what,
          );
          child.proc.kill('SIGTERM'); // to the parent when relaunched: it passes the signal on
          assert.equal(await exitOf(child), 0, `${what}: ${child.stderr()}`);
          assert.equal(existsSync(`/proc/${pid}`), false, `${what}: the gateway process is gone`);
        } finally {
          if (child.proc.exitCode === null) child.proc.kill('SIGKILL');
        }
      }
    },
  );

  it('rejects a bad --semi-space-mb as a usage error naming it (exit 2), before reading the config', async () => {
    for (const bad of ['lots', '-1', '2048', '1.5']) {
      const r = await cli(['serve', `--semi-space-mb=${bad}`, '--config', 'missing.yaml'], tempDir());
      assert.equal(r.code, 2, bad);
      assert.match(r.stderr, /--semi-space-mb: expected 0 \(Node's default\) to 1024/, bad);
      assert.doesNotMatch(r.stderr, /missing\.yaml/, bad);
    }
  });

  it('refuses a bad config: exit 2, every problem listed, nothing listening', async () => {
    const dir = tempDir();
    const port = await freePort();
    writeFileSync(join(dir, 'bad.yaml'), BAD.replace('port: eighty', `port: ${port}`));
    const child = startServe(['--config', 'bad.yaml'], dir);
    assert.equal(await exitOf(child), 2);
    const problems = child
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('  bad.yaml: '));
    assert.equal(problems.length, 3, child.stderr());
    assert.equal(await refused(port), true);
  });

  it('--workers 2 on sqlite: a session logged on through one worker is valid in every worker', async () => {
    const dir = tempDir();
    await usersFile(dir);
    const port = await freePort();
    writeFileSync(
      join(dir, 'sessiongate.yaml'),
      `listen: { host: 127.0.0.1, port: ${port} }
store: sqlite:./var/sessions.db
keys: ./var/keyring.json
log: { level: debug }
admin: { enabled: false }
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
profiles:
  default:
    failure_delay_ms: { min: 0, max: 0 }
    policy: [logon, { authenticate: users }, allow]
routes:
  - { match: { path: / }, upstream: demo }
`,
    );
    const child = startServe(['--config', 'sessiongate.yaml', '--workers', '2'], dir);
    try {
      const lines = () =>
        child
          .stdout()
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as { pid: number; msg: string; path?: string; status?: number });
      await until(
        'two workers listening',
        () =>
          new Set(
            lines()
              .filter((l) => l.msg === 'listening')
              .map((l) => l.pid),
          ).size === 2
            ? true
            : undefined,
        child,
      );
      assert.equal(statSync(join(dir, 'var/keyring.json')).mode & 0o777, 0o600);
      if (existsSync('/proc/self/cmdline')) {
        for (const l of lines().filter((x) => x.msg === 'listening')) {
          const argv = commandLine(l.pid);
          assert.ok(argv.includes('--min-semi-space-size=64'), `worker ${l.pid}: ${argv.join(' ')}`);
          assert.ok(argv.includes('--max-semi-space-size=64'), `worker ${l.pid}: ${argv.join(' ')}`);
          assert.ok(argv.includes('--no-memory-reducer'), `worker ${l.pid}: ${argv.join(' ')}`);
        }
      }
      const base = `http://127.0.0.1:${port}`;
      const first = await send(`${base}/app/logon`, { authorization: basic('alice', 'wonderland') });
      assert.equal(first.status, 200, first.body);
      const cookie = `MRHSession=${tokenOf(first)}`;
      const replies: Reply[] = [];
      for (let i = 0; i < 20; i++) replies.push(await send(`${base}/app/${i}`, { cookie }));
      assert.deepEqual(
        replies.map((r) => r.status),
        replies.map(() => 200),
      );
      assert.equal((JSON.parse(replies[7]!.body) as { url: string }).url, '/app/7');
      const served = await until(
        'access lines of the 20 requests',
        () => {
          const hits = lines().filter((l) => l.msg === 'request' && /^\/app\/\d+$/.test(l.path ?? ''));
          return hits.length === 20 ? hits : undefined;
        },
        child,
      );
      assert.ok(served.every((l) => l.status === 200));
      assert.ok(new Set(served.map((l) => l.pid)).size >= 2, 'both workers answered');
    } finally {
      child.proc.kill('SIGTERM');
    }
    assert.equal(await exitOf(child), 0, child.stderr());
  });

  it('SIGTERM: in-flight requests finish, new connections are refused, the close pipeline is flushed, exit 0', async () => {
    const dir = tempDir();
    const ended = join(dir, 'ended.txt');
    writeFileSync(
      join(dir, 'ender.mjs'),
      `import { appendFileSync } from 'node:fs';
export default {
  kind: 'aa',
  authenticate({ gatewayUser, keyValuePairs }) {
    return keyValuePairs?.password === 'pw' ? { verdict: 'ACCEPT', gatewayUser } : { verdict: 'DENY' };
  },
  sessionEnded({ sessionId }, ctx) {
    appendFileSync(ctx.config.file, 'ended ' + sessionId + '\\n');
  },
};
`,
    );
    let arrived!: () => void;
    const slowArrived = new Promise<void>((r) => (arrived = r));
    const upstream = createServer((req, res) => {
      if (req.url === '/slow') {
        arrived();
        setTimeout(() => res.end('slow done'), 800);
      } else res.end('fast');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    writeFileSync(
      join(dir, 'sessiongate.yaml'),
      `${SERVED}plugins:
  - { name: ender, runtime: module, path: ./ender.mjs, config: { file: "${ended}" } }
profiles:
  default:
    policy: [logon, { authenticate: ender }, allow]
routes:
  - { match: { path: / }, upstream: "${upstreamUrl}" }
`,
    );
    const child = startServe(['--config', 'sessiongate.yaml'], dir);
    try {
      const base = await until(
        'listening',
        () => /listening on (http:\/\/\S+)/.exec(child.stderr())?.[1],
        child,
      );
      const port = Number(new URL(base).port);
      const a = await send(`${base}/fast`, { authorization: basic('a', 'pw') });
      assert.equal(a.status, 200);
      const b = await send(`${base}/fast`, { authorization: basic('b', 'pw') });
      assert.equal(b.status, 200);
      const tokenB = tokenOf(b);

      const slow = send(`${base}/slow`, { cookie: `MRHSession=${tokenOf(a)}` });
      await within(slowArrived, 'the slow request reaching the upstream');
      const out = await send(`${base}/sg/logout`, { cookie: `MRHSession=${tokenB}`, origin: base }, 'POST');
      assert.equal(out.status, 204);
      child.proc.kill('SIGTERM');
      await until('stopping', () => (/stopping/.test(child.stderr()) ? true : undefined), child);
      assert.equal(await refused(port), true, 'no new connections while stopping');
      const done = await slow;
      assert.equal(done.status, 200);
      assert.equal(done.body, 'slow done');
      assert.equal(await exitOf(child), 0, child.stderr());
      assert.equal(readFileSync(ended, 'utf8'), `ended ${idOfToken(tokenB as SessionToken)}\n`);
    } finally {
      if (child.proc.exitCode === null) child.proc.kill('SIGKILL');
      upstream.close();
    }
  });
});
