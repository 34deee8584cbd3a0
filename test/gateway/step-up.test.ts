import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { enrolTotp } from '../../src/plugins/builtin/totp.js';
import { base32Decode, hotp, timeStep } from '../../src/plugins/builtin/totp-code.js';
import { UsersFileEditor } from '../../src/plugins/builtin/users-file.js';
import { Keyring } from '../../src/session/keyring.js';
import { Browser, basic, startTestGateway, testUpstream, type GatewayFixture } from './harness.js';

// Step-up re-authentication (reauth_within): a route that wants a recent logon makes an
// allowed session whose logon is older log on again, as the same user, before it is proxied.

const CONFIG = `
store: memory
keys: \${DIR}/keyring.json
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
  - { name: otp, runtime: builtin, type: totp, config: { users_file: ./users.yaml } }
profiles:
  default:
    max_logon_attempts: 2
    identity_headers: { X-User: session.logon.last.username }
    policy: [logon, { authenticate: users }, allow]
  mfa:
    cookie: { name: MFA }
    policy: [logon, { authenticate: users }, { authenticate: otp }, allow]
routes:
  - { match: { path: /admin }, upstream: \${UPSTREAM}, reauth_within: 300 }
  - { match: { path: /mfa/admin }, upstream: \${UPSTREAM}, profile: mfa, reauth_within: 60 }
  - { match: { path: /mfa }, upstream: \${UPSTREAM}, profile: mfa }
  - { match: { path: / }, upstream: \${UPSTREAM} }
`;

let fx: GatewayFixture;
let upstream: Awaited<ReturnType<typeof testUpstream>>;
let secret: string;

before(async () => {
  upstream = await testUpstream();
  fx = await startTestGateway(CONFIG, { UPSTREAM: upstream.url });
  const keyring = Keyring.loadOrCreate(join(fx.dir, 'keyring.json'));
  const editor = UsersFileEditor.open(join(fx.dir, 'users.yaml'));
  secret = new URL(enrolTotp(editor, 'alice', keyring, 'test')).searchParams.get('secret')!;
  editor.save();
});
after(async () => {
  await fx.close();
  await upstream.close();
});

/** A browser logged on as `user` through the form on the `/` route. */
async function loggedOn(user: string, password: string): Promise<Browser> {
  const b = new Browser(fx.gw.url);
  await b.fetch('/home');
  const res = await b.form('/sg/logon', { username: user, password });
  assert.equal(res.status, 302);
  return b;
}

const session = async (b: Browser, cookie = 'MRHSession') =>
  fx.gw.engine.get(fx.gw.engine.sid(b.jar.get(cookie)!));

const upstreamSaw = (path: string): boolean => upstream.seen.some((s) => s.url === path);

/** The TOTP code of the step after the newest one used, so no two logons share one. */
let lastStep = 0;
function nextCode(): string {
  lastStep = Math.max(lastStep + 1, timeStep(Date.now()) - 1);
  return hotp(base32Decode(secret), lastStep);
}

describe('step-up re-authentication (reauth_within)', () => {
  it('attack: a re-authentication as another user is refused and does not switch the identity', async () => {
    const b = await loggedOn('alice', 'wonderland');
    const before = await session(b);
    fx.clock.advance(301_000);
    const form = await b.fetch('/admin/keys?as=bob');
    assert.equal(form.status, 200);
    assert.match(await form.text(), /name="password"/, 'the logon form, not the application');
    assert.ok(!upstreamSaw('/admin/keys?as=bob'));

    // bob's own, valid credentials on alice's session
    const swap = await b.form('/sg/logon', { username: 'bob', password: 'builder' });
    assert.equal(swap.status, 200);
    assert.match(await swap.text(), /Log on again as alice/);
    let s = await session(b);
    assert.equal(s?.id, before?.id, 'same session');
    assert.equal(s?.user, 'alice');
    assert.equal(s?.variables['session.logon.last.username'], 'alice');
    assert.ok(!upstreamSaw('/admin/keys?as=bob'));

    // bob's name with alice's password fails the same way, and the attempts run out
    const mixed = await b.form('/sg/logon', { username: 'bob', password: 'wonderland' });
    assert.equal(mixed.status, 403);
    assert.match(await mixed.text(), /Access denied|Re-authentication failed/);
    s = await session(b);
    assert.equal(s?.user, 'alice');
    assert.equal(s?.state, 'allow', 'a failed re-authentication keeps the session');
    assert.ok(!upstreamSaw('/admin/keys?as=bob'));

    // ... and its other routes, as alice
    const home = await b.fetch('/home/after');
    assert.equal(home.status, 200);
    assert.equal(upstream.seen.at(-1)?.headers['x-user'], 'alice');
  });

  it('attack: an API client cannot re-authenticate as another user with Basic', async () => {
    const api = new Browser(fx.gw.url, 'application/json');
    assert.equal(
      (await api.fetch('/api', { headers: { authorization: basic('alice', 'wonderland') } })).status,
      200,
    );
    fx.clock.advance(301_000);
    const res = await api.fetch('/admin/api', { headers: { authorization: basic('bob', 'builder') } });
    assert.equal(res.status, 401);
    assert.ok(!upstreamSaw('/admin/api'));
    const s = await session(api);
    assert.equal(s?.user, 'alice');
    assert.equal(s?.variables['session.logon.last.username'], 'alice');
  });

  it('browser: a fresh logon passes; an old one logs on again, the token rotates, then the page asked for', async () => {
    const b = await loggedOn('alice', 'wonderland');
    assert.equal((await b.fetch('/admin/fresh')).status, 200, 'logged on just now: no step-up');
    fx.clock.advance(301_000);
    const form = await b.fetch('/admin/settings?tab=2');
    assert.match(await form.text(), /name="password"/);
    const old = b.jar.get('MRHSession')!;
    const id = (await session(b))!.id;

    const wrong = await b.form('/sg/logon', { username: 'alice', password: 'nope' });
    assert.equal(wrong.status, 200);
    assert.match(await wrong.text(), /Logon failed/);

    const ok = await b.form('/sg/logon', { username: 'alice', password: 'wonderland' });
    assert.equal(ok.status, 302);
    assert.equal(ok.headers.get('location'), '/admin/settings?tab=2');
    const token = b.jar.get('MRHSession')!;
    assert.notEqual(token, old, 'token rotated');
    assert.equal((await fx.gw.engine.validate(old)).valid, false, 'the old token is dead');
    const s = await session(b);
    assert.equal(s?.user, 'alice');
    assert.equal(s?.state, 'allow');
    assert.equal(s?.variables['session.logon.last.time'], String(Math.floor(fx.clock.now() / 1000)));
    assert.equal(s?.secure['sessiongate.stepup.password'], undefined, 'the password is dropped');
    assert.ok(id !== s?.id);

    const app = await b.fetch('/admin/settings?tab=2');
    assert.equal(app.status, 200);
    assert.deepEqual(await app.json(), { ok: true, path: '/admin/settings?tab=2' });
  });

  it('API client: Basic credentials of the same user re-authenticate and the request goes through', async () => {
    const api = new Browser(fx.gw.url, 'application/json');
    assert.equal(
      (await api.fetch('/x', { headers: { authorization: basic('bob', 'builder') } })).status,
      200,
    );
    fx.clock.advance(301_000);
    const asked = await api.fetch('/admin/api/list');
    assert.equal(asked.status, 401);
    assert.match(asked.headers.get('www-authenticate') ?? '', /^Basic /);
    const old = api.jar.get('MRHSession');
    const ok = await api.fetch('/admin/api/list', { headers: { authorization: basic('bob', 'builder') } });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { ok: true, path: '/admin/api/list' });
    assert.notEqual(api.jar.get('MRHSession'), old, 'token rotated');
    assert.equal((await api.fetch('/admin/api/again')).status, 200);
  });

  it('two factors: the step-up asks for the password and the one-time code again', async () => {
    const b = new Browser(fx.gw.url);
    await b.fetch('/mfa/home');
    await b.form('/sg/logon', { username: 'alice', password: 'wonderland' });
    assert.equal((await b.form('/sg/logon', { question: 'otp', answer: nextCode() })).status, 302);
    assert.equal((await b.fetch('/mfa/admin/a')).status, 200);
    fx.clock.advance(61_000);
    assert.match(await (await b.fetch('/mfa/admin/b')).text(), /name="password"/);
    const question = await b.form('/sg/logon', { username: 'alice', password: 'wonderland' });
    assert.match(await question.text(), /name="question" value="otp"/);
    const ok = await b.form('/sg/logon', { question: 'otp', answer: nextCode() });
    assert.equal(ok.status, 302);
    assert.equal(ok.headers.get('location'), '/mfa/admin/b');
    assert.equal((await b.fetch('/mfa/admin/b')).status, 200);
    assert.equal((await session(b, 'MFA'))?.user, 'alice');
  });

  it('attack: a WebSocket upgrade to a route whose logon is too old is refused', async () => {
    const b = await loggedOn('bob', 'builder');
    fx.clock.advance(301_000);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${fx.gw.url}/admin/ws`, {
        headers: {
          cookie: `MRHSession=${b.jar.get('MRHSession')!}`,
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-version': '13',
          'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        },
      });
      req.on('response', (res) => resolve(res.statusCode ?? 0));
      req.on('upgrade', (res, socket) => {
        socket.destroy();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 401);
    assert.ok(!upstreamSaw('/admin/ws'));
  });
});
