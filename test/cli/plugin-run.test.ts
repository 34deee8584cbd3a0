import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import type { Io } from '../../src/cli/context.js';
import { main } from '../../src/cli/main.js';
import { writeCredentials } from '../../src/plugins/builtin/credentials-file.js';
import { hashPassword } from '../../src/plugins/builtin/password.js';
import { UsersFileEditor } from '../../src/plugins/builtin/users-file.js';
import { Keyring } from '../../src/session/keyring.js';
import { BIN, tempDir, type Run } from './helpers.js';

async function cli(args: string[], cwd: string): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io: Io = { out: (t) => void (stdout += t), err: (t) => void (stderr += t), env: {}, cwd };
  return { code: await main(args, io), stdout, stderr };
}

function spawnCli(args: string[], cwd: string): Promise<Run> {
  return new Promise((done) => {
    execFile(process.execPath, [BIN, ...args], { cwd, timeout: 30_000 }, (err, stdout, stderr) =>
      done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

const PY = `import sys


class Plugin:
    def __init__(self, configuration):
        self.configuration = configuration

    def authenticate(self, cookie, session_cookie, gateway_user=None, session_id=None, **kwargs):
        print("hello {0} in {1}".format(gateway_user, session_id))
        print("a warning", file=sys.stderr)
        return {"verdict": "ACCEPT", "gateway_user": gateway_user,
                "cookie": dict(cookie, calls=cookie.get("calls", 0) + 1),
                "session_cookie": dict(session_cookie, seen=True)}

    def authorize(self, **kwargs):
        print("about to fail")
        raise RuntimeError("directory unreachable")
`;

describe('sessiongate plugin run', () => {
  let dir: string;

  before(async () => {
    dir = tempDir();
    mkdirSync(join(dir, 'py'));
    writeFileSync(
      join(dir, 'py/MANIFEST'),
      'name: py\ntype: aa\nversion: 1.0.0\napi: 1.0\ndescription: test\nentry_point: main.py\n',
    );
    writeFileSync(join(dir, 'py/main.py'), PY);
    const keyring = Keyring.loadOrCreate(join(dir, 'keys.json'));
    const ed = UsersFileEditor.open(join(dir, 'users.yaml'));
    ed.set('alice', { password: await hashPassword('alice-pw', { N: 1024, r: 8, p: 1 }), groups: ['ops'] });
    ed.save();
    writeCredentials(
      join(dir, 'creds.json'),
      keyring,
      new Map([['root@db1', { passwords: ['root-pw'], private_keys: [] }]]),
    );
    writeFileSync(
      join(dir, 'gw.yaml'),
      [
        'keys: ./keys.json',
        'plugins:',
        '  - { name: users, runtime: builtin, type: local-users, config: { users_file: users.yaml } }',
        '  - { name: vault, runtime: builtin, type: file-credentials, config: { credentials_file: creds.json } }',
        '  - { name: py, runtime: sps-python, path: ./py, configuration: "[auth]\\nprompt = x\\n" }',
        '  - { name: broken, runtime: builtin, type: local-users, config: { users_file: nope.yaml, oops: 1 } }',
        '',
      ].join('\n'),
    );
  });

  it('sps-python (real CLI): the verdict and cookies as JSON, the prints on stderr as plain lines', async () => {
    const r = await spawnCli(
      [
        'plugin',
        'run',
        'py',
        'authenticate',
        '--config',
        'gw.yaml',
        '--args',
        JSON.stringify({ session_id: 'sess-1', gateway_user: 'alice' }),
        '--cookie',
        '{"calls": 2}',
        '--session-cookie',
        '{"a": 1}',
      ],
      dir,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      ok: true,
      plugin: 'py',
      hook: 'authenticate',
      session_id: 'sess-1',
      verdict: 'ACCEPT',
      gateway_user: 'alice',
      cookie: { calls: 3 },
      session_cookie: { a: 1, seen: true },
    });
    assert.deepEqual(r.stderr.split('\n').filter(Boolean).sort(), ['a warning', 'hello alice in sess-1']);
  });

  it('a failing hook (real CLI): exit 1, ok false with the failure, cookies unchanged', async () => {
    const r = await spawnCli(
      ['plugin', 'run', 'py', 'authorize', '--config', 'gw.yaml', '--cookie', '{"k": 1}'],
      dir,
    );
    assert.equal(r.code, 1);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(out.ok, false);
    assert.equal(out.verdict, 'DENY');
    assert.equal(out.failure, 'exception');
    assert.match(String(out.message), /directory unreachable/);
    assert.deepEqual(out.cookie, { k: 1 });
    assert.match(out.session_id as string, /^[0-9a-f]{32}$/);
    assert.ok(r.stderr.split('\n').includes('about to fail'), r.stderr);
    assert.ok(!/^\s+at /m.test(r.stderr));
  });

  it('built-ins: local-users and file-credentials with the config key ring; audit lines on stderr', async () => {
    const ok = await cli(
      [
        'plugin',
        'run',
        'users',
        'authenticate',
        '--config',
        'gw.yaml',
        '--args',
        '{"gateway_user":"alice","key_value_pairs":{"password":"alice-pw"}}',
      ],
      dir,
    );
    assert.equal(ok.code, 0, ok.stderr);
    const out = JSON.parse(ok.stdout) as Record<string, unknown>;
    assert.equal(out.verdict, 'ACCEPT');
    assert.deepEqual(out.gateway_groups, ['ops']);

    const needinfo = JSON.parse(
      (await cli(['plugin', 'run', 'users', 'authenticate', '--config', 'gw.yaml'], dir)).stdout,
    ) as Record<string, unknown>;
    assert.deepEqual(needinfo.question, { key: 'password', prompt: 'Password', disable_echo: true });

    const creds = await cli(
      [
        'plugin',
        'run',
        'vault',
        'get_password_list',
        '--config',
        'gw.yaml',
        '--args',
        '{"server_username":"root","server_hostname":"DB1"}',
      ],
      dir,
    );
    assert.equal(creds.code, 0, creds.stderr);
    const c = JSON.parse(creds.stdout) as Record<string, unknown>;
    assert.deepEqual(c.passwords, ['root-pw']);
    assert.deepEqual(c.cookie, { checked_out: [{ account: 'root', asset: 'db1', type: 'password' }] });
    assert.match(
      creds.stderr,
      /^credential checkout \{"audit":true,"action":"checkout","account":"root","asset":"db1","credential":"password"\}\n$/,
    );
    assert.ok(!creds.stderr.includes('root-pw'));

    const keys = JSON.parse(
      (await cli(['plugin', 'run', 'vault', 'get_private_key_list', '--config', 'gw.yaml'], dir)).stdout,
    ) as Record<string, unknown>;
    assert.deepEqual(keys.private_keys, []);
    assert.equal(keys.ok, true);
  });

  it('usage errors exit 2 without running anything; config errors list every problem', async () => {
    for (const [args, message] of [
      [['plugin', 'run', 'users', 'authenticate'], /missing --config FILE/],
      [['plugin', 'run', 'users'], /missing HOOK/],
      [
        ['plugin', 'run', 'users', 'authenticate', '--config', 'gw.yaml', '--args', '{"password": "s3cr'],
        /--args: not valid JSON/,
      ],
      [
        ['plugin', 'run', 'users', 'authenticate', '--config', 'gw.yaml', '--cookie', '[1]'],
        /--cookie: expected a JSON object/,
      ],
      [
        ['plugin', 'run', 'nope', 'authenticate', '--config', 'gw.yaml'],
        /no plugin named "nope" in gw\.yaml \(configured: users, vault, py, broken\)/,
      ],
      [
        ['plugin', 'run', 'vault', 'authenticate', '--config', 'gw.yaml'],
        /"authenticate" is not a hook of credentialstore plugins/,
      ],
      [['plugin', 'run', 'users', 'get_password_list', '--config', 'gw.yaml'], /is not a hook of aa plugins/],
    ] as const) {
      const r = await cli([...args], dir);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, '');
      assert.ok(!r.stderr.includes('s3cr'));
    }
    const broken = await cli(['plugin', 'run', 'broken', 'authorize', '--config', 'gw.yaml'], dir);
    assert.equal(broken.code, 1);
    assert.match(
      broken.stderr,
      /^sessiongate: SG_ERR_CONFIG: plugin broken: config: Unrecognized key: "oops"\n$/,
    );

    writeFileSync(
      join(dir, 'bad.yaml'),
      'plugins:\n  - { name: a, runtime: builtin, type: local-users }\n  - { name: "b c", runtime: module }\n  - { name: a, runtime: builtin, type: totp }\n',
    );
    const bad = await cli(['plugin', 'run', 'a', 'authenticate', '--config', 'bad.yaml'], dir);
    assert.equal(bad.code, 1);
    assert.equal(
      bad.stderr,
      'sessiongate: SG_ERR_CONFIG: bad.yaml: plugins[1].name: letters, digits, ".", "_" and "-" only; ' +
        'plugins[1].path: required: the module plugin\'s location; plugins[2].name: "a" is used twice\n',
    );
  });
});
