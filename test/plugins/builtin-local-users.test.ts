import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hashPassword, verifyPassword } from '../../src/plugins/builtin/password.js';
import { parseUsers, UsersFileEditor } from '../../src/plugins/builtin/users-file.js';
import { builtinHost, tempDir } from './builtin-helpers.js';

// Cheap scrypt for the stored hashes; unknown users still cost the default parameters.
const FAST = { N: 1024, r: 8, p: 1 };

describe('password hashes', () => {
  it('verifies scrypt$N$r$p$salt$hash and rejects anything else', async () => {
    const h = await hashPassword('s3cret', FAST);
    assert.match(h, /^scrypt\$1024\$8\$1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/);
    assert.notEqual(h, await hashPassword('s3cret', FAST), 'a fresh salt per hash');
    assert.equal(await verifyPassword('s3cret', h), true);
    assert.equal(await verifyPassword('s3cret ', h), false);
    assert.equal(await verifyPassword('s3cret', undefined), false);
    assert.equal(
      await verifyPassword('s3cret', 'scrypt$3$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA'),
      false,
    );
  });

  it('an unknown user costs the same scrypt work as a known one', async () => {
    const known = await hashPassword('pw'); // default parameters
    const time = async (stored: string | undefined) => {
      const t = performance.now();
      await verifyPassword('wrong', stored);
      return performance.now() - t;
    };
    // The fastest of five each, taken in turns so that a burst of load from the other test
    // files (they share the two cores) hits both sides alike.
    let a = Infinity;
    let b = Infinity;
    for (let i = 0; i < 5; i++) {
      a = Math.min(a, await time(known));
      b = Math.min(b, await time(undefined));
    }
    assert.ok(b > a * 0.5 && b < a * 2, `known ${a.toFixed(1)} ms vs unknown ${b.toFixed(1)} ms`);
  });
});

describe('users file', () => {
  it('names the file and the path of a mistake', () => {
    assert.throws(() => parseUsers('users:\n  alice:\n    groups: admins\n', 'u.yaml'), {
      message: 'u.yaml: users.alice.groups: expected a list of group names',
    });
    assert.throws(
      () => parseUsers('users:\n  alice:\n    password: plain\n', 'u.yaml'),
      /users\.alice\.password: expected an scrypt hash/,
    );
    assert.throws(() => parseUsers('users: [\n', 'u.yaml'), { message: /^u\.yaml: invalid YAML: / });
    assert.equal(parseUsers('', 'u.yaml').size, 0);
  });

  it('edits keep comments and other users; a broken file is never overwritten', async () => {
    const dir = tempDir();
    const path = join(dir, 'users.yaml');
    writeFileSync(path, '# ops team\nusers:\n  bob: # the night shift\n    groups: [ops]\n');
    const ed = UsersFileEditor.open(path);
    ed.set('alice', { password: await hashPassword('pw', FAST), groups: ['admins'] });
    ed.save();
    const text = readFileSync(path, 'utf8');
    assert.match(text, /# ops team/);
    assert.match(text, /# the night shift/);
    assert.deepEqual([...parseUsers(text, path).keys()], ['bob', 'alice']);
    assert.equal(statSync(path).mode & 0o777, 0o600);

    writeFileSync(path, 'users:\n  bob: [\n');
    assert.throws(() => UsersFileEditor.open(path), /invalid YAML/);
    assert.equal(readFileSync(path, 'utf8'), 'users:\n  bob: [\n');
  });
});

describe('local-users plugin', () => {
  let t: Awaited<ReturnType<typeof builtinHost>>;
  let dir: string;

  before(async () => {
    dir = tempDir();
    const ed = UsersFileEditor.open(join(dir, 'users.yaml'));
    ed.set('alice', { password: await hashPassword('alice-pw', FAST), groups: ['admins', 'ops'] });
    ed.set('bob', { password: await hashPassword('bob-pw', FAST), groups: ['ops'] });
    ed.set('carol', { password: await hashPassword('carol-pw', FAST), disabled: true });
    ed.save();
    t = await builtinHost(
      [
        { name: 'users', type: 'local-users', config: { users_file: 'users.yaml' } },
        {
          name: 'admins',
          type: 'local-users',
          config: { users_file: 'users.yaml', require_groups: ['admins'] },
        },
      ],
      { baseDir: dir },
    );
  });
  after(() => t.stop());

  const login = async (user: string, password?: string) => {
    const id = await t.session();
    const kv = password === undefined ? {} : { key_value_pairs: { password } };
    return t.host.authenticate('users', id, { gateway_user: user, ...kv });
  };

  it('ACCEPT with gateway_user and gateway_groups from the file', async () => {
    const out = await login('alice', 'alice-pw');
    assert.equal(out.verdict, 'ACCEPT');
    assert.equal(out.gateway_user, 'alice');
    assert.deepEqual(out.gateway_groups, ['admins', 'ops']);
  });

  it('asks for the password with NEEDINFO when none came, then accepts the answer', async () => {
    const id = await t.session();
    const first = await t.host.authenticate('users', id, { gateway_user: 'bob' });
    assert.equal(first.verdict, 'NEEDINFO');
    assert.deepEqual(first.question, { key: 'password', prompt: 'Password', disable_echo: true });
    const second = await t.host.authenticate('users', id, {
      gateway_user: 'bob',
      key_value_pairs: { password: 'bob-pw' },
    });
    assert.equal(second.verdict, 'ACCEPT');
  });

  it('DENY with the same generic reason for a wrong password, an unknown user and a disabled user', async () => {
    const reasons = new Set<string | undefined>();
    for (const [user, pw] of [
      ['alice', 'wrong'],
      ['mallory', 'alice-pw'],
      ['carol', 'carol-pw'],
      ['alice', ''],
      ['', 'alice-pw'],
    ] as const) {
      const out = await login(user, pw);
      assert.equal(out.verdict, 'DENY', `${user}/${pw}`);
      assert.equal(out.failure, undefined);
      reasons.add(out.reason);
    }
    assert.deepEqual([...reasons], ['Invalid user name or password']);
  });

  it('authorize: existing enabled users, and require_groups', async () => {
    const id = await t.session();
    const as = (plugin: string, user: string) => t.host.authorize(plugin, id, { gateway_user: user });
    assert.equal((await as('users', 'bob')).verdict, 'ACCEPT');
    assert.equal((await as('users', 'carol')).verdict, 'DENY');
    assert.equal((await as('users', 'mallory')).verdict, 'DENY');
    assert.equal((await as('admins', 'alice')).verdict, 'ACCEPT');
    assert.equal((await as('admins', 'bob')).verdict, 'DENY');
  });

  it('sees edits of the file without a restart, and session_ended runs without failure', async () => {
    const ed = UsersFileEditor.open(join(dir, 'users.yaml'));
    ed.set('dave', { password: await hashPassword('dave-pw', FAST) });
    ed.save();
    const id = await t.session();
    const out = await t.host.authenticate('users', id, {
      gateway_user: 'dave',
      key_value_pairs: { password: 'dave-pw' },
    });
    assert.equal(out.verdict, 'ACCEPT');
    assert.deepEqual(out.gateway_groups, []);
    await t.end(id);
    assert.equal(
      t.logger.lines.filter((l) => l.level !== 'info').length,
      0,
      JSON.stringify(t.logger.lines.filter((l) => l.level !== 'info')),
    );
  });

  it('a config mistake stops the plugin from being built, naming the key', async () => {
    await assert.rejects(builtinHost([{ name: 'u', type: 'local-users', config: {} }], { baseDir: dir }), {
      message: 'plugin u: config.users_file: required',
    });
    await assert.rejects(
      builtinHost([{ name: 'u', type: 'local-users', config: { users_file: 'x', extra: 1 } }], {
        baseDir: dir,
      }),
      /plugin u: config: Unrecognized key/,
    );
  });
});
