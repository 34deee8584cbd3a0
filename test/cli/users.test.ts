import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Io } from '../../src/cli/context.js';
import { main } from '../../src/cli/main.js';
import { verifyPassword } from '../../src/plugins/builtin/password.js';
import { totpContext } from '../../src/plugins/builtin/totp.js';
import { totpCode } from '../../src/plugins/builtin/totp-code.js';
import { parseUsers } from '../../src/plugins/builtin/users-file.js';
import { Keyring } from '../../src/session/keyring.js';
import { assertCleanStderr, BIN, tempDir, type Run } from './helpers.js';

/** `main` in this process, with standard input when given. */
async function cli(args: string[], cwd: string, stdin?: string): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io: Io = {
    out: (t) => void (stdout += t),
    err: (t) => void (stderr += t),
    env: {},
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

    const uri = new URL(enrol.stdout.trim());
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
