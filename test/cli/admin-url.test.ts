import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Io } from '../../src/cli/context.js';
import { Progress } from '../../src/cli/view-commands.js';
import { startTestAdmin, TOKEN, type AdminFixture } from '../admin/helpers.js';
import { runCli, spawnCli, tempDir } from './helpers.js';

let fx: AdminFixture;
let dir: string;
let env: NodeJS.ProcessEnv;
const url = () => ['--url', fx.url];

before(async () => {
  fx = await startTestAdmin({ revealSecure: true }); // data get --secure reads in clear
  dir = tempDir();
  writeFileSync(join(dir, 'admin.token'), `${TOKEN}\n`, { mode: 0o600 });
  env = { SESSIONGATE_ADMIN_TOKEN: TOKEN };
});
after(() => fx.close());

async function created(user = 'alice'): Promise<{ id: string; token: string }> {
  const r = await runCli(['session', 'create', '--user', user, '--json', ...url()], dir, env);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

describe('session ... --url (through the admin API)', () => {
  it('create, exists, modify, show and list act on the running gateway', async () => {
    const { id, token } = await created('alice');
    assert.equal((await fx.engine.get(id))?.user, 'alice');
    assert.equal((await runCli(['session', 'exists', id, ...url()], dir, env)).stdout, 'true\n');
    assert.equal(
      (await runCli(['session', 'exists', id, '--state', 'deny', ...url()], dir, env)).stdout,
      'false\n',
    );
    assert.equal(
      // --token=VALUE: a random token may start with '-', which --token VALUE refuses (1 in 64).
      (await runCli(['session', 'exists', `--token=${token}`, ...url()], dir, env)).stdout,
      'true\n',
    );
    const gone = '0123456789abcdef0123456789abcdef';
    assert.equal((await runCli(['session', 'exists', gone, ...url()], dir, env)).stdout, 'false\n');

    const mod = await runCli(['session', 'modify', id, '--timeout', '30', '--json', ...url()], dir, env);
    assert.equal(mod.code, 0, mod.stderr);
    assert.equal(JSON.parse(mod.stdout).idle_timeout, 30);
    assert.equal((await fx.engine.get(id))?.idleTimeout, 30);

    const show = await runCli(['session', 'show', id, ...url()], dir, env);
    assert.match(show.stdout, new RegExp(`^id: ${id}$`, 'm'));
    assert.match(show.stdout, /^user: alice$/m);
    const shown = JSON.parse((await runCli(['session', 'show', id, '--json', ...url()], dir, env)).stdout);
    assert.equal(shown.variables['session.user.sessionid'], id);

    const table = await runCli(['session', 'list', '--user', 'alice', ...url()], dir, env);
    assert.match(table.stdout, /^ID +STATE +USER +CLIENT_IP/);
    assert.ok(table.stdout.includes(id));
    const listed = JSON.parse(
      (await runCli(['session', 'list', '--json', '--user', 'alice', ...url()], dir, env)).stdout,
    );
    assert.deepEqual(
      listed.map((s: { id: string }) => s.id),
      [id],
    );
  });

  it('data set and data get, plain, secure and config', async () => {
    const { id } = await created('bob');
    assert.equal(
      (await runCli(['session', 'data', 'set', id, 'session.custom.x', 'v1', ...url()], dir, env)).code,
      0,
    );
    assert.equal(
      (await runCli(['session', 'data', 'get', id, 'session.custom.x', ...url()], dir, env)).stdout,
      'v1\n',
    );
    assert.equal(
      (await runCli(['session', 'data', 'get', id, 'session.custom.unset', ...url()], dir, env)).stdout,
      '\n',
    );
    const set = await runCli(
      ['session', 'data', 'set', id, '--secure', 'session.custom.pin', '1234', ...url()],
      dir,
      env,
    );
    assert.equal(set.code, 0, set.stderr);
    const plain = await runCli(['session', 'data', 'get', id, 'session.custom.pin', ...url()], dir, env);
    assert.equal(plain.code, 1);
    assert.match(plain.stderr, /SG_ERR_SECURE_FLAG_REQUIRED: .*read it with --secure/);
    assert.equal(
      (await runCli(['session', 'data', 'get', id, '--secure', 'session.custom.pin', ...url()], dir, env))
        .stdout,
      '1234\n',
    );
    assert.equal(
      (await runCli(['session', 'data', 'get', id, '--config', 'inactivity_timeout', ...url()], dir, env))
        .stdout,
      '900\n',
    );
  });

  it('remove closes with removed, kill with admin_kill, kill --user counts', async () => {
    const a = await created('carol');
    const b = await created('dora');
    await created('dora');
    assert.equal((await runCli(['session', 'remove', a.id, ...url()], dir, env)).code, 0);
    assert.equal((await runCli(['session', 'kill', b.id, ...url()], dir, env)).code, 0);
    const all = await runCli(['session', 'kill', '--user', 'dora', ...url()], dir, env);
    assert.equal(all.stdout, '1\n');
    await fx.engine.dispatch();
    const reasons = Object.fromEntries(
      fx.audit.filter((l) => l.event === 'session_close').map((l) => [l.session_id, l.reason]),
    );
    assert.equal(reasons[a.id], 'removed');
    assert.equal(reasons[b.id], 'admin_kill');
    const again = await runCli(['session', 'kill', b.id, ...url()], dir, env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /SG_ERR_SESSION_NOT_FOUND/);
  });

  it('errors: no token, wrong token, unreachable, bad flags', async () => {
    const noToken = await runCli(['session', 'list', ...url()], dir, {});
    assert.equal(noToken.code, 1);
    assert.match(
      noToken.stderr,
      /SG_ERR_ADMIN_TOKEN: no admin token: give --token-file FILE or set SESSIONGATE_ADMIN_TOKEN/,
    );
    const wrong = await runCli(['session', 'list', ...url()], dir, {
      SESSIONGATE_ADMIN_TOKEN: 'wrong-token',
    });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /SG_ERR_UNAUTHORIZED/);
    const down = await runCli(['session', 'list', '--url', 'http://127.0.0.1:1'], dir, env);
    assert.equal(down.code, 1);
    assert.match(
      down.stderr,
      /SG_ERR_ADMIN_UNAVAILABLE: cannot reach the admin API at http:\/\/127\.0\.0\.1:1/,
    );
    const both = await runCli(['session', 'list', '--store', 'memory', ...url()], dir, env);
    assert.equal(both.code, 2);
    const tokenFileAlone = await runCli(
      ['session', 'list', '--store', 'memory', '--token-file', 'x'],
      dir,
      env,
    );
    assert.equal(tokenFileAlone.code, 2);
    const badUrl = await runCli(['session', 'list', '--url', 'ftp://x'], dir, env);
    assert.equal(badUrl.code, 2);
    const missingFile = await runCli(['session', 'list', ...url(), '--token-file', 'nope.token'], dir, {});
    assert.equal(missingFile.code, 1);
    assert.match(missingFile.stderr, /cannot read the admin token file .*nope\.token \(ENOENT\)/);
    const killUsage = await runCli(['session', 'kill', ...url()], dir, env);
    assert.equal(killUsage.code, 2);
  });

  it('the real CLI, with --token-file and with ./var/admin.token by default', async () => {
    const c = await spawnCli(
      ['session', 'create', '--user', 'erin', '--json', ...url(), '--token-file', 'admin.token'],
      dir,
    );
    assert.equal(c.code, 0, c.stderr);
    const { id } = JSON.parse(c.stdout);
    const home = tempDir();
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(home, 'var'));
    writeFileSync(join(home, 'var', 'admin.token'), TOKEN);
    const l = await spawnCli(['session', 'list', ...url()], home, { SESSIONGATE_ADMIN_TOKEN: '' });
    assert.equal(l.code, 0, l.stderr);
    assert.ok(l.stdout.includes(id));
    const k = await spawnCli(['session', 'kill', '--user', 'erin', ...url()], home, {
      SESSIONGATE_ADMIN_TOKEN: '',
    });
    assert.equal(k.stdout, '1\n');
  });
});

describe('session kill on the store', () => {
  it('closes one session or all of a user with admin_kill', async () => {
    const store = ['--store', `sqlite:${join(dir, 'kill.db')}`, '--key-file', join(dir, 'keys.json')];
    const one = JSON.parse(
      (await runCli(['session', 'create', '--user', 'gus', '--json', ...store], dir)).stdout,
    );
    await runCli(['session', 'create', '--user', 'gus', ...store], dir);
    await runCli(['session', 'create', '--user', 'gus', ...store], dir);
    assert.equal((await runCli(['session', 'kill', one.id, ...store], dir)).code, 0);
    assert.equal((await runCli(['session', 'exists', one.id, ...store], dir)).stdout, 'false\n');
    assert.deepEqual(
      JSON.parse((await runCli(['session', 'kill', '--user', 'gus', '--json', ...store], dir)).stdout),
      {
        closed: 2,
      },
    );
    const missing = await runCli(['session', 'kill', one.id, ...store], dir);
    assert.equal(missing.code, 1);
    const both = await runCli(['session', 'kill', one.id, '--user', 'gus', ...store], dir);
    assert.equal(both.code, 2);
  });
});

describe('list progress', () => {
  it('prints a progress line at most once a second while walking pages, and a closing count', () => {
    let err = '';
    const io: Io = { out: () => {}, err: (t) => void (err += t), env: {}, cwd: '.' };
    let t = 0;
    const p = new Progress(io, () => t);
    p.update(500);
    t = 900;
    p.update(1000);
    assert.equal(err, '', 'nothing within the first second');
    t = 1500;
    p.update(1500);
    t = 1800;
    p.update(2000);
    t = 2600;
    p.update(2500);
    p.done(2700);
    assert.equal(
      err,
      'sessiongate: listing sessions... 1500 so far\nsessiongate: listing sessions... 2500 so far\nsessiongate: listed 2700 sessions\n',
    );
    let quiet = '';
    const fast = new Progress({ ...io, err: (t2) => void (quiet += t2) }, () => 0);
    fast.update(10);
    fast.done(10);
    assert.equal(quiet, '');
  });
});
