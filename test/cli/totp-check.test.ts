import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Io } from '../../src/cli/context.js';
import { INIT_FILES } from '../../src/cli/init-command.js';
import { main } from '../../src/cli/main.js';
import { tempDir } from './helpers.js';

// An otp step that a user cannot answer locks them out: check-config names those users, and
// the starter config's (commented) otp step enrols them instead.

async function cli(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: Io = { out: (t) => void (stdout += t), err: (t) => void (stderr += t), env: {}, cwd };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

const config = (otp: string): string => `store: memory
keys: ./keyring.json
admin: { enabled: false }
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
  - { name: otp, runtime: builtin, type: totp, config: { users_file: ./users.yaml${otp} } }
profiles:
  default:
    policy: [logon, { authenticate: users }, { authenticate: otp }, allow]
routes:
  - { match: { path: / }, upstream: demo }
`;

const USERS = `users:
  alice: {}
  bob: { totp: sg1.a.b.c.d }
  carol: { disabled: true }
  dave: {}
`;

describe('check-config: accounts an otp step locks out', () => {
  it('names the users without a TOTP secret when the totp plugin does not self-enrol', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'users.yaml'), USERS);
    writeFileSync(join(dir, 'sg.yaml'), config(''));
    const r = await cli(['check-config', 'sg.yaml'], dir);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /\n {2}warning: profile default, step \{ authenticate: otp \}: alice, dave cannot log on \(no TOTP secret, and otp has no self_enrolment\): enrol with `sessiongate users totp NAME`, or set self_enrolment: true\n/,
    );

    writeFileSync(join(dir, 'sg.yaml'), config(', self_enrolment: true'));
    const enrolling = await cli(['check-config', 'sg.yaml'], dir);
    assert.equal(enrolling.code, 0, enrolling.stderr);
    assert.doesNotMatch(enrolling.stdout, /warning/);
  });

  it("init's config with its otp step uncommented is valid and locks nobody out", async () => {
    const dir = tempDir();
    assert.equal((await cli(['init'], dir)).code, 0);
    const file = join(dir, INIT_FILES.config);
    const text = readFileSync(file, 'utf8')
      .replace(/# (- \{ name: otp, .*\})/, '$1')
      .replace('      - authenticate: users\n', '      - authenticate: users\n      - authenticate: otp\n');
    assert.match(text, /^ {2}- \{ name: otp, .*self_enrolment: true/m);
    assert.match(text, /- authenticate: otp/);
    writeFileSync(file, text);
    const r = await cli(['check-config', INIT_FILES.config], dir);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /: ok/);
    assert.doesNotMatch(r.stdout, /warning/, 'the admin account self-enrols');
  });
});
