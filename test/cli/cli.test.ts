import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT, spawnCli, tempDir } from './helpers.js';

// The real `sessiongate` process (bin/sessiongate.js with tsx), each command in its own
// process against one sqlite file, as an operator would use it.

const SECRET = 'Pl41n-s3cret-value-x9';

describe('cli: a session across processes on sqlite', () => {
  const dir = tempDir();
  const S = ['--store', `sqlite:${join(dir, 's.db')}`, '--key-file', join(dir, 'k.json')];
  const run = (...args: string[]) => spawnCli(['session', ...args, ...S], dir);
  let id = '';
  let token = '';

  it('create --json prints id and token; the key ring is created 0600', async () => {
    const r = await run('create', '--json', '--user', 'alice', '--client-ip', '10.1.2.3');
    assert.equal(r.code, 0);
    const created = JSON.parse(r.stdout) as { id: string; token: string };
    assert.deepEqual(Object.keys(created), ['id', 'token']);
    assert.match(created.id, /^[0-9a-f]{32}$/);
    assert.match(created.token, /^[A-Za-z0-9_-]{43}$/);
    ({ id, token } = created);
    assert.equal(statSync(join(dir, 'k.json')).mode & 0o777, 0o600);
  });

  it('exists by id, by --token, with --state', async () => {
    // Independent reads: several processes on the same file at once.
    const [byId, byToken, denied] = await Promise.all([
      run('exists', id),
      // --token=VALUE: a random token may start with '-', which --token VALUE refuses (1 in 64).
      run('exists', `--token=${token}`, '--state', 'allow'),
      run('exists', id, '--state', 'deny'),
    ]);
    assert.deepEqual(byId, { code: 0, stdout: 'true\n', stderr: '' });
    assert.equal(byToken.stdout, 'true\n');
    assert.equal(denied.stdout, 'false\n');
  });

  it('exists refuses a token given positionally and an id given to --token (exit 2)', async () => {
    const [positional, swapped] = await Promise.all([run('exists', token), run('exists', '--token', id)]);
    assert.equal(positional.code, 2);
    assert.match(positional.stderr, /SG_ERR_INVALID_SESSION_ID: .*pass a token with --token TOKEN/);
    assert.ok(!positional.stderr.includes(token), 'the token is never echoed');
    assert.equal(swapped.code, 2);
    assert.match(swapped.stderr, /SG_ERR_INVALID_TOKEN/);
  });

  it('data set/get: plain, unset, secure', async () => {
    const [plain, secure] = await Promise.all([
      run('data', 'set', id, 'session.custom.team', 'blue'),
      run('data', 'set', id, '--secure', 'session.logon.last.password', SECRET),
    ]);
    assert.deepEqual(plain, { code: 0, stdout: '', stderr: '' });
    assert.deepEqual(secure, { code: 0, stdout: '', stderr: '' });
    const [team, unset, password] = await Promise.all([
      run('data', 'get', id, 'session.custom.team'),
      run('data', 'get', id, 'session.custom.unset'),
      run('data', 'get', id, '--secure', 'session.logon.last.password'),
    ]);
    assert.equal(team.stdout, 'blue\n');
    assert.deepEqual(unset, { code: 0, stdout: '\n', stderr: '' });
    assert.equal(password.stdout, `${SECRET}\n`);
  });

  it('a secure variable read without --secure fails clearly; the plaintext is not on disk', async () => {
    const r = await run('data', 'get', id, 'session.logon.last.password');
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      'sessiongate: SG_ERR_SECURE_FLAG_REQUIRED: session.logon.last.password is a secure variable: read it with --secure\n',
    );
    const files = readdirSync(dir).filter((f) => f.startsWith('s.db'));
    assert.ok(files.includes('s.db'));
    for (const f of files) {
      const bytes = readFileSync(join(dir, f));
      assert.equal(bytes.indexOf(SECRET), -1, `${f} holds the secure plaintext`);
      assert.equal(bytes.indexOf(token), -1, `${f} holds the token`);
    }
  });

  it('data get --config follows modify --timeout', async () => {
    assert.equal((await run('data', 'get', id, '--config', 'inactivity_timeout')).stdout, '900\n');
    assert.deepEqual(await run('modify', id, '--timeout', '60'), { code: 0, stdout: '', stderr: '' });
    assert.equal((await run('data', 'get', id, '--config', 'inactivity_timeout')).stdout, '60\n');
  });

  it('modify: lifetime with remaining is an error; --json prints the deadlines', async () => {
    const both = await run('modify', id, '--lifetime', '10', '--remaining', '5');
    assert.equal(both.code, 2);
    assert.match(both.stderr, /^sessiongate: SG_ERR_LIFETIME_WITH_REMAINING: /);
    const before = Date.now();
    const r = await run('modify', id, '--remaining', '3600', '--json');
    assert.equal(r.code, 0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(out), [
      'id',
      'idle_timeout',
      'lifetime',
      'expires_at',
      'lifetime_expires_at',
    ]);
    assert.equal(out.idle_timeout, 60);
    const end = Date.parse(String(out.lifetime_expires_at));
    assert.ok(end >= before + 3_600_000 && end <= Date.now() + 3_600_000, String(out.lifetime_expires_at));
  });

  it('list walks the store: --json shape, table, filters', async () => {
    const second = await run('create', '--state', 'inprogress', '--user', 'bob');
    assert.match(second.stdout, /^[A-Za-z0-9_-]{43}\n$/);
    const [listed, table, listedInprogress] = await Promise.all([
      run('list', '--json'),
      run('list', '--user', 'alice'),
      run('list', '--state', 'inprogress', '--json'),
    ]);
    const all = JSON.parse(listed.stdout) as Record<string, unknown>[];
    assert.equal(all.length, 2);
    const alice = all.find((s) => s.id === id);
    assert.deepEqual(alice && Object.keys(alice).sort(), [
      'client_ip',
      'created_at',
      'expires_at',
      'expiry_reason',
      'id',
      'idle_timeout',
      'last_access_at',
      'lifetime',
      'lifetime_expires_at',
      'policy_expires_at',
      'profile',
      'state',
      'user',
    ]);
    assert.equal(alice?.client_ip, '10.1.2.3');
    const lines = table.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /^ID\s+STATE\s+USER\s+CLIENT_IP\s+CREATED\s+EXPIRES_IN\s+BY$/);
    assert.match(
      lines[1]!,
      new RegExp(`^${id}\\s+allow\\s+alice\\s+10\\.1\\.2\\.3\\s+\\S+Z\\s+\\d+s\\s+idle_timeout$`),
    );
    const inprogress = JSON.parse(listedInprogress.stdout) as unknown[];
    assert.equal(inprogress.length, 1);
  });

  it('show: JSON fields with secure values masked; text as key: value lines', async () => {
    const [r, text] = await Promise.all([run('show', id, '--json'), run('show', id)]);
    assert.equal(r.code, 0);
    assert.ok(!r.stdout.includes(SECRET) && !r.stdout.includes(token));
    const s = JSON.parse(r.stdout) as Record<string, unknown> & { variables: Record<string, string> };
    assert.equal(s.id, id);
    assert.equal(s.state, 'allow');
    assert.equal(s.user, 'alice');
    assert.equal(s.idle_timeout, 60);
    assert.equal(s.policy_expires_at, null);
    for (const key of ['created_at', 'last_access_at', 'expires_at', 'lifetime_expires_at']) {
      assert.match(String(s[key]), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, key);
    }
    assert.deepEqual(s.plugin_cookies, []);
    assert.equal(s.variables['session.logon.last.password'], '********');
    assert.equal(s.variables['session.custom.team'], 'blue');
    assert.equal(s.variables['session.user.sessionid'], id);
    assert.equal(s.variables['session.inactivity_timeout'], '60');
    assert.match(s.variables['session.max_session_timeout'] ?? '', /^\d+$/);
    assert.match(text.stdout, new RegExp(`^id: ${id}\nstate: allow\nuser: alice\n`));
    assert.match(text.stdout, /\n {2}session\.logon\.last\.password: \*{8}\n/);
    assert.ok(!text.stdout.includes(SECRET));
  });

  it('remove closes the session; a second remove is not found (exit 1)', async () => {
    assert.deepEqual(await run('remove', id), { code: 0, stdout: '', stderr: '' });
    assert.equal((await run('exists', id)).stdout, 'false\n');
    const again = await run('remove', id);
    assert.equal(again.code, 1);
    assert.equal(again.stderr, `sessiongate: SG_ERR_SESSION_NOT_FOUND: no live session with id ${id}\n`);
  });
});

describe('cli: process-level errors and config', { concurrency: 4 }, () => {
  it('--version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.deepEqual(await spawnCli(['--version'], tempDir()), {
      code: 0,
      stdout: `${pkg.version}\n`,
      stderr: '',
    });
  });

  it('an unknown flag is one line, exit 2', async () => {
    const r = await spawnCli(['session', 'list', '--store', 'memory', '--verbose'], tempDir());
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^sessiongate: SG_ERR_USAGE: unknown option --verbose/);
  });

  it('a negative timeout is exit 2 naming the flag and the value', async () => {
    const r = await spawnCli(['session', 'create', '--store', 'memory', '--timeout', '-5'], tempDir());
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      'sessiongate: SG_ERR_INVALID_TIMEOUT: --timeout: expected a whole number of seconds >= 0, got -5\n',
    );
  });

  it('a store that cannot be opened is one line, no stack (exit 1)', async () => {
    const dir = tempDir();
    const r = await spawnCli(['session', 'list', '--store', `sqlite:${dir}`, '--key-file', 'k.json'], dir);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^sessiongate: SG_ERR_STORE_UNAVAILABLE: /);
  });

  it('--config: store, keys and profile timeouts from the file, paths relative to it', async () => {
    const dir = tempDir();
    const conf = join(dir, 'etc');
    mkdirSync(conf);
    writeFileSync(
      join(conf, 'gw.yaml'),
      [
        'listen: { host: 127.0.0.1, port: 8080 }',
        'store: sqlite:../var/gw.db',
        'keys: ../var/ring.json',
        'profiles:',
        '  default: { inactivity_timeout: 1200, max_session_timeout: 7200, policy: [logon, allow] }',
      ].join('\n'),
    );
    const created = await spawnCli(['session', 'create', '--json', '--config', 'etc/gw.yaml'], dir);
    assert.equal(created.code, 0, created.stderr);
    const { id } = JSON.parse(created.stdout) as { id: string };
    assert.deepEqual(
      readdirSync(join(dir, 'var'))
        .filter((f) => !f.startsWith('gw.db-'))
        .sort(),
      ['gw.db', 'ring.json'],
    );
    assert.equal(statSync(join(dir, 'var/ring.json')).mode & 0o777, 0o600);
    const read = await spawnCli(
      ['session', 'data', 'get', id, '--config', 'max_session_timeout', '--config-file', 'etc/gw.yaml'],
      dir,
    );
    assert.equal(read.stdout, '7200\n');
  });

  it('--config with a wrong type names the file and path (exit 1)', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'config.yaml'), 'profiles:\n  default:\n    inactivity_timeout: -1\n');
    const r = await spawnCli(['session', 'list', '--config', 'config.yaml'], dir);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      'sessiongate: SG_ERR_CONFIG: config.yaml: profiles.default.inactivity_timeout: expected a whole number >= 0\n',
    );
  });

  it('defaults: sqlite:./var/sessiongate.db and ./var/keyring.json in the working directory', async () => {
    const dir = tempDir();
    const r = await spawnCli(['session', 'create'], dir);
    assert.equal(r.code, 0, r.stderr);
    const files = readdirSync(join(dir, 'var'));
    assert.ok(files.includes('sessiongate.db') && files.includes('keyring.json'), files.join(' '));
    assert.equal(statSync(join(dir, 'var/keyring.json')).mode & 0o777, 0o600);
  });
});
