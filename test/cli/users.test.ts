import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Io } from '../../src/cli/context.js';
import { main } from '../../src/cli/main.js';
import { verifyPassword } from '../../src/plugins/builtin/password.js';
import { totpContext } from '../../src/plugins/builtin/totp.js';
import { totpCode } from '../../src/plugins/builtin/totp-code.js';
import { parseUsers } from '../../src/plugins/builtin/users-file.js';
import { Keyring } from '../../src/session/keyring.js';
import { AdminMetrics } from '../../src/admin/metrics.js';
import { startAdmin } from '../../src/admin/server.js';
import { SessionEngine } from '../../src/session/engine.js';
import { openStore } from '../../src/store/open.js';
import { TOKEN } from '../admin/helpers.js';
import { redisSkip, startRedis, type RedisServer } from '../support/redis-servers.js';
import { Browser, startTestGateway, testUpstream } from '../gateway/harness.js';
import { assertCleanStderr, BIN, tempDir, type Run } from './helpers.js';

/** `main` in this process, with standard input when given. */
async function cli(args: string[], cwd: string, stdin?: string, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io: Io = {
    out: (t) => void (stdout += t),
    err: (t) => void (stderr += t),
    env,
    cwd,
    ...(stdin === undefined ? {} : { readStdin: () => Promise.resolve(stdin) }),
  };
  const run = { code: await main(args, io), stdout, stderr };
  assertCleanStderr(run);
  return run;
}

/** The real CLI in a child process, with standard input. */
function spawnCli(args: string[], cwd: string, stdin = ''): Promise<Run> {
  return new Promise((done) => {
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      { cwd, timeout: 30_000 },
      (err, stdout, stderr) => {
        const run = { code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr };
        assertCleanStderr(run);
        done(run);
      },
    );
    child.stdin!.end(stdin);
  });
}

const users = (dir: string) => parseUsers(readFileSync(join(dir, 'var/users.yaml'), 'utf8'), 'users.yaml');

describe('sessiongate users (real CLI)', () => {
  it('add with a generated password, add from stdin, totp enrolment: files 0600, secrets sealed', async () => {
    const dir = tempDir();
    const gen = await spawnCli(['users', 'add', 'alice', '--groups', 'admins, ops,admins'], dir);
    assert.equal(gen.code, 0, gen.stderr);
    const password = gen.stdout.trim();
    assert.match(password, /^[A-Za-z0-9_-]{24}$/);
    const piped = await spawnCli(['users', 'add', 'bob', '--password-stdin'], dir, 'bob pass phrase\n');
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stdout, '', 'nothing printed when the password came from stdin');
    const enrol = await spawnCli(['users', 'totp', 'alice', '--issuer', 'Example Corp'], dir);
    assert.equal(enrol.code, 0, enrol.stderr);

    const file = readFileSync(join(dir, 'var/users.yaml'), 'utf8');
    assert.equal(statSync(join(dir, 'var/users.yaml')).mode & 0o777, 0o600);
    assert.ok(!file.includes(password) && !file.includes('bob pass phrase'));
    const u = users(dir);
    assert.deepEqual(u.get('alice')!.groups, ['admins', 'ops']);
    assert.equal(await verifyPassword(password, u.get('alice')!.password), true);
    assert.equal(await verifyPassword('bob pass phrase', u.get('bob')!.password), true);

    const lines = enrol.stdout.trimEnd().split('\n');
    assert.ok(lines.slice(0, -1).filter((l) => /[▀▄█]/.test(l)).length > 10, 'a QR code first');
    const uri = new URL(lines.at(-1)!);
    assert.equal(uri.protocol, 'otpauth:');
    assert.equal(decodeURIComponent(uri.pathname), '/Example Corp:alice');
    assert.equal(uri.searchParams.get('issuer'), 'Example Corp');
    const secret = uri.searchParams.get('secret')!;
    assert.ok(!file.includes(secret), 'the secret is sealed in the file');
    const ring = Keyring.loadOrCreate(join(dir, 'var/keyring.json'));
    assert.equal(ring.open(u.get('alice')!.totp!, totpContext('alice')), secret);
    assert.equal(totpCode(secret, 0).length, 6);
  });
});

describe('sessiongate users (in process)', () => {
  it('passwd, list, remove; errors are one line with the right exit code', async () => {
    const dir = tempDir();
    const path = join(dir, 'u.yaml');
    assert.equal(
      (await cli(['users', 'add', 'carol', '--file', path, '--password-stdin'], dir, 'c1\n')).code,
      0,
    );
    assert.equal(
      (await cli(['users', 'add', 'dave', '--file', path, '--password-stdin'], dir, 'd1')).code,
      0,
    );

    const dup = await cli(['users', 'add', 'carol', '--file', path, '--password-stdin'], dir, 'x');
    assert.equal(dup.code, 1);
    assert.match(
      dup.stderr,
      /^sessiongate: user carol exists in .*u\.yaml \(to change the password: users passwd\)\n$/,
    );

    const pw = await cli(['users', 'passwd', 'carol', '--file', path], dir);
    assert.equal(pw.code, 0);
    const fresh = pw.stdout.trim();
    const u = parseUsers(readFileSync(path, 'utf8'), path);
    assert.equal(await verifyPassword(fresh, u.get('carol')!.password), true);

    const table = await cli(['users', 'list', '--file', path], dir);
    assert.equal(table.stdout.split('\n')[0], 'NAME   GROUPS  DISABLED  PASSWORD  TOTP');
    assert.match(table.stdout, /^carol +- +no +set +-$/m);
    const list = JSON.parse(
      (await cli(['users', 'list', '--json', '--file', path], dir)).stdout,
    ) as unknown[];
    assert.deepEqual(list, [
      { name: 'carol', groups: [], disabled: false, password: true, totp: false },
      { name: 'dave', groups: [], disabled: false, password: true, totp: false },
    ]);
    assert.ok(!JSON.stringify(list).includes('scrypt'));

    assert.equal((await cli(['users', 'remove', 'dave', '--file', path], dir)).code, 0);
    assert.deepEqual([...parseUsers(readFileSync(path, 'utf8'), path).keys()], ['carol']);
    const gone = await cli(['users', 'remove', 'dave', '--file', path], dir);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /no user dave in/);

    for (const [args, stdin, message] of [
      [['users', 'add', '-x', '--file', path], undefined, /unknown option -x/],
      [['users', 'add', '../etc', '--file', path], undefined, /NAME: letters, digits/],
      [['users', 'add'], undefined, /missing NAME/],
      [['users', 'add', 'eve', '--file', path, '--password-stdin'], '\n', /the password is empty/],
      [['users', 'add', 'eve', '--file', path, '--password-stdin'], undefined, /no standard input/],
      [['users', 'frobnicate'], undefined, /unknown users command "frobnicate"/],
    ] as const) {
      const r = await cli([...args], dir, stdin);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });

  it('a file that does not parse is reported and never overwritten', async () => {
    const dir = tempDir();
    const path = join(dir, 'users.yaml');
    const broken = 'users:\n  carol:\n    password: not-a-hash\n  dave: {}\n';
    writeFileSync(path, broken);
    const r = await cli(['users', 'add', 'eve', '--file', path, '--password-stdin'], dir, 'pw');
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^sessiongate: SG_ERR_CONFIG: .*users\.yaml: users\.carol\.password: expected an scrypt hash/,
    );
    assert.equal(readFileSync(path, 'utf8'), broken);
  });

  it('--config: the users file of the first local-users plugin, relative to the config', async () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, 'gw.yaml'),
      'plugins:\n  - { name: u, runtime: builtin, type: local-users, config: { users_file: ./data/people.yaml } }\n',
    );
    assert.equal(
      (await cli(['users', 'add', 'frank', '--config', 'gw.yaml', '--password-stdin'], dir, 'f')).code,
      0,
    );
    assert.ok(parseUsers(readFileSync(join(dir, 'data/people.yaml'), 'utf8'), 'p').has('frank'));
    writeFileSync(join(dir, 'none.yaml'), 'plugins: []\n');
    const none = await cli(['users', 'list', '--config', 'none.yaml'], dir);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /none\.yaml: no plugin of type local-users \(give the file with --file PATH\)/);
  });
});

describe('users passwd ends the other sessions (ASVS 3.3.3)', () => {
  /** A gateway config over a sqlite file, its users file with alice and bob. */
  async function siteWithStore(): Promise<{ dir: string; db: string; usersFile: string }> {
    const dir = tempDir();
    writeFileSync(
      join(dir, 'gw.yaml'),
      'store: sqlite:./var/s.db\n' +
        'plugins:\n  - { name: u, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }\n',
    );
    for (const user of ['alice', 'bob']) {
      const r = await cli(
        ['users', 'add', user, '--config', 'gw.yaml', '--password-stdin'],
        dir,
        `${user}-1`,
      );
      assert.equal(r.code, 0, r.stderr);
    }
    return { dir, db: join(dir, 'var/s.db'), usersFile: join(dir, 'users.yaml') };
  }

  /** Sessions in the store file, as a gateway would have made them; a subscriber watches closes. */
  async function sessionsIn(db: string, users: string[]): Promise<string[]> {
    const store = await openStore(`sqlite:${db}`);
    const engine = new SessionEngine({ store, keyring: Keyring.ephemeral() });
    await store.ensureSubscriber('watch');
    const ids = [];
    for (const user of users) ids.push((await engine.create({ user })).id);
    await engine.stop();
    await store.dispose();
    return ids;
  }

  async function storeState(db: string): Promise<{ live: string[]; closed: Record<string, string> }> {
    const store = await openStore(`sqlite:${db}`);
    try {
      const live = (await store.list({ limit: 100, cursor: null })).sessions.map((s) => s.user ?? '-');
      const claimed = await store.claim('watch', 't', { now: Date.now(), leaseMs: 60_000, limit: 100 });
      return { live: live.sort(), closed: Object.fromEntries(claimed.map((c) => [c.sessionId, c.reason])) };
    } finally {
      await store.dispose();
    }
  }

  const passwordOf = async (file: string, user: string, password: string) =>
    verifyPassword(password, parseUsers(readFileSync(file, 'utf8'), file).get(user)!.password);

  it("closes the user's sessions in the config's sqlite store with reason password_changed", async () => {
    const { dir, db, usersFile } = await siteWithStore();
    const [a1, a2] = await sessionsIn(db, ['alice', 'alice', 'bob']);
    const r = await cli(
      ['users', 'passwd', 'alice', '--config', 'gw.yaml', '--password-stdin'],
      dir,
      'alice-2',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, 'sessiongate: ended 2 sessions of alice\n');
    assert.equal(await passwordOf(usersFile, 'alice', 'alice-2'), true);
    assert.deepEqual(await storeState(db), {
      live: ['bob'],
      closed: { [a1!]: 'password_changed', [a2!]: 'password_changed' },
    });
  });

  it('--keep-sessions leaves them; a memory store without --url is refused before any change', async () => {
    const { dir, db, usersFile } = await siteWithStore();
    await sessionsIn(db, ['alice']);
    const kept = await cli(
      ['users', 'passwd', 'alice', '--config', 'gw.yaml', '--password-stdin', '--keep-sessions'],
      dir,
      'alice-2',
    );
    assert.equal(kept.code, 0, kept.stderr);
    assert.equal(kept.stderr, '');
    assert.deepEqual((await storeState(db)).live, ['alice']);

    writeFileSync(
      join(dir, 'mem.yaml'),
      readFileSync(join(dir, 'gw.yaml'), 'utf8').replace(/^store: .*$/m, 'store: memory'),
    );
    const memory = await cli(
      ['users', 'passwd', 'alice', '--config', 'mem.yaml', '--password-stdin'],
      dir,
      'alice-3',
    );
    assert.equal(memory.code, 2);
    assert.match(
      memory.stderr,
      /mem\.yaml: store is memory: its sessions live in the running gateway; end them there with --url ADMIN_URL, or give --keep-sessions/,
    );
    assert.equal(await passwordOf(usersFile, 'alice', 'alice-2'), true, 'the password is unchanged');
    const both = await cli(
      ['users', 'passwd', 'alice', '--file', usersFile, '--keep-sessions', '--url', 'http://127.0.0.1:1'],
      dir,
    );
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--keep-sessions ends nothing/);
  });

  it('a store that is not there ends nothing and is not created', async () => {
    const dir = tempDir();
    const file = join(dir, 'u.yaml');
    assert.equal(
      (await cli(['users', 'add', 'erin', '--file', file, '--password-stdin'], dir, 'e1')).code,
      0,
    );
    const r = await cli(
      ['users', 'passwd', 'erin', '--file', file, '--password-stdin', '--store', 'sqlite:./none.db'],
      dir,
      'e2',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, `sessiongate: ended 0 sessions of erin (no store file ${join(dir, 'none.db')})\n`);
    assert.equal(existsSync(join(dir, 'none.db')), false);
  });

  it('--url: a running gateway ends them; the browser that was logged on gets the logon form', async () => {
    const upstream = await testUpstream();
    const fx = await startTestGateway(
      `store: memory\nkeys: \${DIR}/keyring.json\n` +
        'plugins:\n  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }\n' +
        'profiles:\n  default: { policy: [logon, { authenticate: users }, allow] }\n' +
        'routes:\n  - { match: { path: / }, upstream: ${UPSTREAM} }\n',
      { UPSTREAM: upstream.url },
    );
    const admin = await startAdmin({
      engine: fx.gw.engine,
      metrics: new AdminMetrics(),
      token: TOKEN,
      port: 0,
    });
    try {
      const logons: Browser[] = [];
      for (const [user, password] of [
        ['alice', 'wonderland'],
        ['alice', 'wonderland'],
        ['bob', 'builder'],
      ] as const) {
        const b = new Browser(fx.gw.url);
        await b.fetch('/app');
        assert.equal((await b.form('/sg/logon', { username: user, password })).status, 302);
        assert.equal((await b.fetch('/app')).status, 200);
        logons.push(b);
      }
      const env = { SESSIONGATE_ADMIN_TOKEN: TOKEN };
      const usersFile = join(fx.dir, 'users.yaml');
      const r = await cli(
        ['users', 'passwd', 'alice', '--file', usersFile, '--password-stdin', '--url', admin.url],
        fx.dir,
        'new-alice',
        env,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, 'sessiongate: ended 2 sessions of alice\n');
      assert.equal(await passwordOf(usersFile, 'alice', 'new-alice'), true);
      for (const b of logons.slice(0, 2)) {
        const again = await b.fetch('/app');
        assert.equal(again.status, 200);
        assert.match(
          await again.text(),
          /<form method="post" action="\/sg\/logon">/,
          "alice's sessions are gone",
        );
      }
      const bob = await logons[2]!.fetch('/app');
      assert.deepEqual(await bob.json(), { ok: true, path: '/app' }, "bob's session is untouched");
    } finally {
      await admin.close();
      await fx.close();
      await upstream.close();
    }
  });

  it('the password is changed (and printed) even when ending the sessions fails, which is an error', async () => {
    const dir = tempDir();
    const file = join(dir, 'u.yaml');
    assert.equal(
      (await cli(['users', 'add', 'gail', '--file', file, '--password-stdin'], dir, 'g1')).code,
      0,
    );
    const r = await cli(
      ['users', 'passwd', 'gail', '--file', file, '--url', 'http://127.0.0.1:1'],
      dir,
      undefined,
      {
        SESSIONGATE_ADMIN_TOKEN: TOKEN,
      },
    );
    assert.equal(r.code, 1);
    const fresh = r.stdout.trim();
    assert.match(fresh, /^[A-Za-z0-9_-]{24}$/);
    assert.equal(await passwordOf(file, 'gail', fresh), true);
    assert.match(
      r.stderr,
      /^sessiongate: the password of gail was changed, but their sessions were not ended \(SG_ERR_ADMIN_UNAVAILABLE: cannot reach the admin API at http:\/\/127\.0\.0\.1:1 .*\); end them with: sessiongate session kill --user gail\n$/,
    );
  });
});

describe('users passwd with a redis store', { skip: redisSkip() || undefined }, () => {
  let redis: RedisServer | undefined;
  before(async () => void (redis = await startRedis()));
  after(async () => redis?.stop());

  it('closes the sessions of the user in the redis store named by --store', async () => {
    const dir = tempDir();
    const file = join(dir, 'u.yaml');
    assert.equal((await cli(['users', 'add', 'hal', '--file', file, '--password-stdin'], dir, 'h1')).code, 0);
    const store = await openStore(redis!.url);
    const engine = new SessionEngine({ store, keyring: Keyring.ephemeral() });
    try {
      const [h1, h2] = [await engine.create({ user: 'hal' }), await engine.create({ user: 'hal' })];
      const other = await engine.create({ user: 'ida' });
      const r = await cli(
        ['users', 'passwd', 'hal', '--file', file, '--password-stdin', '--store', redis!.url],
        dir,
        'h2',
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, 'sessiongate: ended 2 sessions of hal\n');
      assert.equal(await engine.get(h1.id), null);
      assert.equal(await engine.get(h2.id), null);
      assert.equal((await engine.get(other.id))?.user, 'ida');
    } finally {
      await engine.stop();
      await store.dispose();
    }
  });
});
