import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { hashPassword } from '../../src/plugins/builtin/password.js';
import { Browser } from './harness.js';
import {
  drain,
  logOn,
  post,
  sessionOf,
  sessionsJson,
  startUserPages,
  type UserPagesFixture,
} from './user-pages-support.js';

let t: UserPagesFixture;
let users: string;
before(async () => {
  t = await startUserPages();
  users = join(t.fx.dir, 'users.yaml');
});
after(() => t.close());

/** Alice's password back to `wonderland` and the throttle's counters gone between tests. */
beforeEach(async () => {
  const hash = (p: string) => hashPassword(p, { N: 1024, r: 8, p: 1 });
  writeFileSync(
    users,
    `users:\n  alice:\n    password: ${await hash('wonderland')}\n` +
      `  bob:\n    password: ${await hash('builder')}\n    groups: [ops]\n`,
  );
  t.fx.clock.advance(3_600_000);
});

async function change(b: Browser, fields: Record<string, string>, csrf?: string) {
  const token = csrf ?? (await sessionsJson(b)).body.csrf;
  return post(b, t.base, '/sg/password', { csrf: token, ...fields });
}

const codeOf = (body: Record<string, unknown>) => (body.error as { code?: string } | undefined)?.code;

describe('password change: attacks', () => {
  it('refuses a wrong current password (403, after the failure delay) and leaves the file as it was', async () => {
    const alice = await logOn(t.base, 'alice', 'wonderland', 'a');
    const before = readFileSync(users, 'utf8');
    const r = await change(alice, {
      current_password: 'guess',
      new_password: 'n3w-pass-2026',
      new_password_again: 'n3w-pass-2026',
    });
    assert.equal(r.status, 403);
    assert.equal(codeOf(r.body), 'SG_ERR_WRONG_PASSWORD');
    assert.equal(readFileSync(users, 'utf8'), before);
  });

  it('counts wrong current passwords as failed logons: the throttle refuses the next tries (429), even the right one', async () => {
    const alice = await logOn(t.base, 'alice', 'wonderland', 'a');
    const { csrf } = (await sessionsJson(alice)).body;
    const wrong = {
      current_password: 'guess',
      new_password: 'n3w-pass-2026',
      new_password_again: 'n3w-pass-2026',
    };
    for (let i = 0; i < 3; i++) assert.equal((await change(alice, wrong, csrf)).status, 403);
    const right = await change(alice, { ...wrong, current_password: 'wonderland' }, csrf);
    assert.equal(right.status, 429);
    assert.equal(codeOf(right.body), 'SG_ERR_LOGON_THROTTLED');
    assert.ok(Number(right.res.headers.get('retry-after')) > 0);
    assert.ok(t.audit.some((e) => e.event === 'logon_throttled' && e.user === 'alice'));
  });

  it('refuses new passwords that differ (400 SG_ERR_PASSWORD_MISMATCH)', async () => {
    const alice = await logOn(t.base, 'alice', 'wonderland', 'a');
    const r = await change(alice, {
      current_password: 'wonderland',
      new_password: 'one-pass-2026',
      new_password_again: 'two-pass-2026',
    });
    assert.equal(r.status, 400);
    assert.equal(codeOf(r.body), 'SG_ERR_PASSWORD_MISMATCH');
  });

  it('refuses a password that breaks the rules (400 SG_ERR_PASSWORD_RULES): empty, two lines, too long, shorter than min_password_length (12), the current one', async () => {
    const alice = await logOn(t.base, 'alice', 'wonderland', 'a');
    const { csrf, password_min_length } = (await sessionsJson(alice)).body;
    assert.equal(password_min_length, 12, 'the page says the rule');
    for (const bad of ['', 'two\nlines', 'x'.repeat(1025), 'elevenchars', 'wonderland']) {
      const r = await change(
        alice,
        { current_password: 'wonderland', new_password: bad, new_password_again: bad },
        csrf,
      );
      assert.equal(r.status, 400, JSON.stringify(bad.slice(0, 12)));
      assert.equal(codeOf(r.body), 'SG_ERR_PASSWORD_RULES');
    }
  });

  it('refuses a form without its csrf token, and one from another origin (403)', async () => {
    const alice = await logOn(t.base, 'alice', 'wonderland', 'a');
    const fields = {
      current_password: 'wonderland',
      new_password: 'n3w-pass-2026',
      new_password_again: 'n3w-pass-2026',
    };
    const noToken = await post(alice, t.base, '/sg/password', fields);
    assert.equal(codeOf(noToken.body), 'SG_ERR_CSRF_TOKEN');
    const { csrf } = (await sessionsJson(alice)).body;
    const cross = await post(alice, t.base, '/sg/password', { ...fields, csrf }, 'http://evil.example');
    assert.equal(codeOf(cross.body), 'SG_ERR_ORIGIN_MISMATCH');
    const bob = await logOn(t.base, 'bob', 'builder', 'b');
    const bobsToken = await change(alice, fields, (await sessionsJson(bob)).body.csrf);
    assert.equal(codeOf(bobsToken.body), 'SG_ERR_CSRF_TOKEN');
  });

  it('has no password form for a user signed in without local-users (404 SG_ERR_PASSWORD_CHANGE_UNAVAILABLE)', async () => {
    const { token } = await t.fx.gw.engine.create({ state: 'allow', user: 'alice', profile: 'sso' });
    const sso = new Browser(t.base);
    sso.jar.set('SSOSession', token);
    const page = await sessionsJson(sso);
    assert.equal(page.body.password_change, false);
    const html = await (await sso.fetch('/sg/sessions')).text();
    assert.doesNotMatch(html, /current_password/);
    const r = await change(
      sso,
      { current_password: 'wonderland', new_password: 'n3w-pass-2026', new_password_again: 'n3w-pass-2026' },
      page.body.csrf,
    );
    assert.equal(r.status, 404);
    assert.equal(codeOf(r.body), 'SG_ERR_PASSWORD_CHANGE_UNAVAILABLE');
  });
});

describe('password change', () => {
  it('writes the new hash, ends the other sessions once (password_changed), and rotates this one: the old cookie is out', async () => {
    const alice = await logOn(t.base, 'alice', 'wonderland', 'a');
    const phone = await logOn(t.base, 'alice', 'wonderland', 'p');
    const bob = await logOn(t.base, 'bob', 'builder', 'b');
    const ssh = await t.fx.gw.engine.create({
      state: 'allow',
      user: 'alice',
      variables: { 'session.server.protocol': 'ssh' },
    });
    const oldToken = alice.jar.get('MRHSession')!;
    const oldId = sessionOf(t.fx, alice);
    const phoneId = sessionOf(t.fx, phone);
    const r = await change(alice, {
      current_password: 'wonderland',
      new_password: 'Looking-Glass 2',
      new_password_again: 'Looking-Glass 2',
    });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { changed: true, ended: 2 });
    const newToken = alice.jar.get('MRHSession')!;
    assert.notEqual(newToken, oldToken);
    assert.match(r.res.headers.get('set-cookie') ?? '', /HttpOnly/);

    // Session fixation: whoever holds the old cookie is out; the new one works.
    const stale = new Browser(t.base);
    stale.jar.set('MRHSession', oldToken);
    assert.equal((await sessionsJson(stale)).status, 401);
    assert.equal((await stale.fetch('/app')).status, 200, 'the logon page');
    assert.equal((await sessionsJson(alice)).status, 200);
    assert.equal((await alice.fetch('/app', { headers: { accept: 'application/json' } })).status, 200);

    // The other sessions ended once each, with password_changed; bob's is not touched.
    await drain(t.fx);
    assert.deepEqual(t.closes.get(phoneId), ['password_changed']);
    assert.deepEqual(t.closes.get(ssh.id), ['password_changed']);
    assert.equal(t.closes.get(oldId), undefined, 'this session was rotated, not closed');
    assert.equal((await t.fx.gw.engine.get(sessionOf(t.fx, bob)))?.state, 'allow');

    // The file holds the new password: logon with it works, with the old one not.
    await logOn(t.base, 'alice', 'Looking-Glass 2', 'again');
    const old = new Browser(t.base, 'application/json');
    const refused = await old.fetch('/', {
      headers: { authorization: `Basic ${Buffer.from('alice:wonderland').toString('base64')}` },
    });
    assert.equal(refused.status, 401);
    assert.match(readFileSync(users, 'utf8'), /bob:\n {4}password: scrypt/, 'the other users are kept');

    // Audited without any password.
    const line = t.audit.find((e) => e.event === 'password_changed');
    assert.deepEqual(
      { user: line?.user, plugin: line?.plugin, ended: line?.ended },
      { user: 'alice', plugin: 'users', ended: 2 },
    );
    const all = JSON.stringify(t.audit);
    for (const secret of ['wonderland', 'Looking-Glass', oldToken, newToken])
      assert.ok(!all.includes(secret));
  });

  it('sends browsers back to the page with a notice and the new cookie', async () => {
    const alice = await logOn(t.base, 'alice', 'wonderland', 'a');
    const { csrf } = (await sessionsJson(alice)).body;
    const res = await alice.form('/sg/password', {
      csrf,
      current_password: 'wonderland',
      new_password: 'Cheshire-Cat 3',
      new_password_again: 'Cheshire-Cat 3',
    });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), '/sg/sessions?done=password');
    assert.match(await (await alice.fetch('/sg/sessions?done=password')).text(), /Your password was changed/);
  });
});
