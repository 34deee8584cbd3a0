import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { enrolTotp } from '../../src/plugins/builtin/totp.js';
import { timeStep, totpCode, hotp, base32Decode } from '../../src/plugins/builtin/totp-code.js';
import { UsersFileEditor } from '../../src/plugins/builtin/users-file.js';
import { hashPassword } from '../../src/plugins/builtin/password.js';
import { Keyring } from '../../src/session/keyring.js';
import { Browser, basic, startTestGateway, testUpstream, type GatewayFixture } from './harness.js';

// Two factors end to end: the users file password, then a TOTP code (the builtin totp
// plugin's NEEDINFO), for browsers (a question page) and API clients (401 SG_ERR_NEEDINFO,
// then the answer in X-Sessiongate-Answer with the session cookie).

const CONFIG = `
store: memory
keys: \${DIR}/keyring.json
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
  - { name: otp, runtime: builtin, type: totp, config: { users_file: ./users.yaml, max_attempts: 3 } }
profiles:
  default:
    policy: [logon, { authenticate: users }, { authenticate: otp }, allow]
routes:
  - { match: { path: / }, upstream: \${UPSTREAM} }
`;

let fx: GatewayFixture;
let upstream: Awaited<ReturnType<typeof testUpstream>>;
const secrets = new Map<string, string>();

before(async () => {
  upstream = await testUpstream();
  fx = await startTestGateway(CONFIG, { UPSTREAM: upstream.url });
  // Enrol with the gateway's own key ring file, as `sessiongate users totp` would.
  const keyring = Keyring.loadOrCreate(join(fx.dir, 'keyring.json'));
  const editor = UsersFileEditor.open(join(fx.dir, 'users.yaml'));
  editor.set('carol', { password: await hashPassword('c4rol', { N: 1024, r: 8, p: 1 }) });
  for (const user of ['alice', 'bob', 'carol']) {
    const uri = new URL(enrolTotp(editor, user, keyring, 'sessiongate-test'));
    secrets.set(user, uri.searchParams.get('secret')!);
  }
  editor.save();
});
after(async () => {
  await fx.close();
  await upstream.close();
});

const codeNow = (user: string): string => totpCode(secrets.get(user)!, Date.now());

/** A well-formed code that is wrong for every step the plugin accepts now. */
function wrongCode(user: string): string {
  const secret = base32Decode(secrets.get(user)!);
  const now = timeStep(Date.now());
  const valid = new Set([-2, -1, 0, 1, 2].map((d) => hotp(secret, now + d)));
  let n = 123_456;
  while (valid.has(String(n))) n++;
  return String(n);
}

const errorOf = async (res: Response): Promise<{ code: string; message: string }> =>
  ((await res.json()) as { error: { code: string; message: string } }).error;

describe('MFA with the totp plugin', () => {
  it('browser: logon form, then the one-time code question; a wrong code asks again, the right one lets in', async () => {
    const b = new Browser(fx.gw.url);
    const form = await b.fetch('/app/mfa?tab=2');
    assert.match(await form.text(), /<form method="post" action="\/sg\/logon">[\s\S]*name="password"/);

    const question = await b.form('/sg/logon', { username: 'alice', password: 'wonderland' });
    assert.equal(question.status, 200);
    const page = await question.text();
    assert.match(page, /One more step/);
    assert.match(page, /<input type="hidden" name="question" value="otp">/);
    assert.match(page, /One-time code <input name="answer" type="password" autocomplete="one-time-code"/);
    assert.doesNotMatch(page, /role="alert"/);

    const wrong = await b.form('/sg/logon', { question: 'otp', answer: wrongCode('alice') });
    assert.equal(wrong.status, 200);
    const again = await wrong.text();
    assert.match(again, /name="answer"/, 'asked again');
    assert.match(again, /<p class="error" role="alert">Invalid code<\/p>/);
    const before = b.jar.get('MRHSession')!;
    const id = fx.gw.engine.sid(before);
    assert.equal((await fx.gw.engine.get(id))?.state, 'inprogress');

    const ok = await b.form('/sg/logon', { question: 'otp', answer: codeNow('alice') });
    assert.equal(ok.status, 302);
    assert.equal(ok.headers.get('location'), '/app/mfa?tab=2');
    const token = b.jar.get('MRHSession')!;
    assert.notEqual(token, before, 'token rotated at allow');
    const s = await fx.gw.engine.get(fx.gw.engine.sid(token));
    assert.equal(s?.state, 'allow');
    assert.equal(s?.user, 'alice');

    const app = await b.fetch('/app/mfa?tab=2');
    assert.equal(app.status, 200);
    assert.deepEqual(await app.json(), { ok: true, path: '/app/mfa?tab=2' });
  });

  it('API: 401 SG_ERR_NEEDINFO after Basic, then the code in X-Sessiongate-Answer with the cookie', async () => {
    const api = new Browser(fx.gw.url, 'application/json');
    const count = upstream.seen.length;
    const first = await api.fetch('/api/items', { headers: { authorization: basic('bob', 'builder') } });
    assert.equal(first.status, 401);
    assert.equal(first.headers.get('www-authenticate'), 'Basic realm="sessiongate"');
    const needinfo = await errorOf(first);
    assert.equal(needinfo.code, 'SG_ERR_NEEDINFO');
    assert.match(needinfo.message, /One-time code: send the answer in the X-Sessiongate-Answer header/);
    assert.ok(api.jar.get('MRHSession'), 'the session cookie comes with the question');

    const wrong = await api.fetch('/api/items', { headers: { 'x-sessiongate-answer': wrongCode('bob') } });
    assert.equal(wrong.status, 401);
    assert.deepEqual(await errorOf(wrong), {
      code: 'SG_ERR_NEEDINFO',
      message:
        'Invalid code. One-time code: send the answer in the X-Sessiongate-Answer header, with the session cookie',
    });
    assert.equal(upstream.seen.length, count, 'nothing reached the application yet');

    const ok = await api.fetch('/api/items', { headers: { 'x-sessiongate-answer': codeNow('bob') } });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { ok: true, path: '/api/items' });
    const seen = upstream.seen.at(-1)!;
    assert.equal(seen.headers['x-sessiongate-answer'], undefined, 'the code stays at the gateway');
    assert.equal(seen.headers.authorization, undefined);

    const next = await api.fetch('/api/items/2');
    assert.equal(next.status, 200, 'the cookie alone is enough afterwards');
    const s = await fx.gw.engine.get(fx.gw.engine.sid(api.jar.get('MRHSession')!));
    assert.equal(s?.user, 'bob');
  });

  it('a code is good once: the same code does not open a second session (replay)', async () => {
    const code = codeNow('carol');
    const first = new Browser(fx.gw.url, 'application/json');
    await first.fetch('/r', { headers: { authorization: basic('carol', 'c4rol') } });
    assert.equal((await first.fetch('/r', { headers: { 'x-sessiongate-answer': code } })).status, 200);
    const other = new Browser(fx.gw.url, 'application/json');
    await other.fetch('/r', { headers: { authorization: basic('carol', 'c4rol') } });
    const replay = await other.fetch('/r', { headers: { 'x-sessiongate-answer': code } });
    assert.equal(replay.status, 401);
    assert.equal((await errorOf(replay)).code, 'SG_ERR_NEEDINFO');
  });
});
