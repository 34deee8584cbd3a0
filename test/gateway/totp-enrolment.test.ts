import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PAGE_HEADERS } from '../../src/gateway/http/pages.js';
import { totpContext } from '../../src/plugins/builtin/totp.js';
import { base32Decode, hotp, timeStep, totpCode } from '../../src/plugins/builtin/totp-code.js';
import { UsersFileEditor } from '../../src/plugins/builtin/users-file.js';
import { Keyring } from '../../src/session/keyring.js';
import { Browser, basic, startTestGateway, testUpstream, type GatewayFixture } from './harness.js';

// TOTP self-enrolment: alice and bob have passwords but no secret. With `self_enrolment` the
// otp step shows a browser a QR code and the key, and only a correct first code writes the
// secret to the users file; API clients are refused (they cannot scan anything).

const CONFIG = `
store: memory
keys: \${DIR}/keyring.json
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
  - name: otp
    runtime: builtin
    type: totp
    config: { users_file: ./users.yaml, max_attempts: 3, self_enrolment: true, issuer: Example }
profiles:
  default:
    policy: [logon, { authenticate: users }, { authenticate: otp }, allow]
routes:
  - { match: { path: / }, upstream: \${UPSTREAM} }
`;

let fx: GatewayFixture;
let upstream: Awaited<ReturnType<typeof testUpstream>>;

before(async () => {
  upstream = await testUpstream();
  fx = await startTestGateway(CONFIG, { UPSTREAM: upstream.url });
});
after(async () => {
  await fx.close();
  await upstream.close();
});

const keyOf = (page: string): string => {
  const m = /<code class="key" id="totp-key">([A-Z2-7 ]+)<\/code>/.exec(page);
  assert.ok(m, 'the page shows the key');
  return m[1]!.replaceAll(' ', '');
};

/** A well-formed code that is wrong for every step the plugin accepts now. */
function wrongCode(secret: string): string {
  const key = base32Decode(secret);
  const now = timeStep(Date.now());
  const valid = new Set([-2, -1, 0, 1, 2].map((d) => hotp(key, now + d)));
  let n = 123_456;
  while (valid.has(String(n))) n++;
  return String(n);
}

const storedSecret = (user: string): string | undefined => {
  const sealed = UsersFileEditor.open(join(fx.dir, 'users.yaml')).get(user)?.totp;
  if (sealed === undefined) return undefined;
  return Keyring.loadOrCreate(join(fx.dir, 'keyring.json')).open(sealed, totpContext(user));
};

describe('TOTP self-enrolment', () => {
  it('browser: QR code and key after the password; a wrong code asks again; the right one enrols and lets in', async () => {
    const b = new Browser(fx.gw.url);
    await b.fetch('/app/settings');
    const first = await b.form('/sg/logon', { username: 'alice', password: 'wonderland' });
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('content-security-policy'), PAGE_HEADERS['content-security-policy']);
    const page = await first.text();
    assert.match(page, /Set up a second factor/);
    assert.match(page, /<div class="qr"><svg xmlns="http:\/\/www.w3.org\/2000\/svg"[^>]*>[\s\S]*<\/svg>/);
    assert.doesNotMatch(page, /<script|style=/, 'nothing the CSP would block');
    const secret = keyOf(page);
    assert.equal(secret.length, 32);
    assert.equal(storedSecret('alice'), undefined, 'nothing written before a code');

    // Reloading the page shows the same pending secret (the app may have scanned it already).
    assert.equal(keyOf(await (await b.fetch('/sg/logon')).text()), secret);

    const wrong = await b.form('/sg/logon', { question: 'otp', answer: wrongCode(secret) });
    const again = await wrong.text();
    assert.match(again, /<p class="error" role="alert">Invalid code<\/p>/);
    assert.equal(keyOf(again), secret, 'asked again with the same secret');
    assert.equal(storedSecret('alice'), undefined);

    const ok = await b.form('/sg/logon', { question: 'otp', answer: totpCode(secret, Date.now()) });
    assert.equal(ok.status, 302);
    assert.equal(ok.headers.get('location'), '/app/settings');
    assert.equal(storedSecret('alice'), secret, 'the confirmed secret is in the users file, sealed');
    const s = await fx.gw.engine.get(fx.gw.engine.sid(b.jar.get('MRHSession')!));
    assert.equal(s?.state, 'allow');
    assert.equal(s?.user, 'alice');
    assert.equal((await b.fetch('/app/settings')).status, 200);

    // The secret never appears in a log line, a plain variable or the users file in clear.
    const logged = JSON.stringify(fx.logs.lines);
    assert.ok(!logged.includes(secret));
    assert.ok(!JSON.stringify(s?.variables).includes(secret));
    assert.ok(!JSON.stringify(s?.cookies).includes(secret));
    assert.ok(!readFileSync(join(fx.dir, 'users.yaml'), 'utf8').includes(secret));
    assert.ok(fx.logs.lines.some((l) => l.message === 'TOTP second factor enrolled by its user'));
  });

  it('the enrolled user is asked for the code at the next logon (no second enrolment)', async () => {
    const secret = storedSecret('alice')!;
    const b = new Browser(fx.gw.url);
    await b.fetch('/');
    const question = await (await b.form('/sg/logon', { username: 'alice', password: 'wonderland' })).text();
    assert.match(question, /One more step/);
    assert.doesNotMatch(question, /<svg|totp-key/, 'an enrolled user is never shown a new secret');
    const step = timeStep(Date.now()) + 1; // the enrolment took this step's code: use the next
    const ok = await b.form('/sg/logon', {
      question: 'otp',
      answer: hotp(base32Decode(secret), step),
    });
    assert.equal(ok.status, 302);
    assert.equal(storedSecret('alice'), secret, 'unchanged');
  });

  it('API client: refused with SG_ERR_ENROLMENT_NEEDS_BROWSER, no secret shown, nothing written', async () => {
    const api = new Browser(fx.gw.url, 'application/json');
    const count = upstream.seen.length;
    const res = await api.fetch('/api/items', { headers: { authorization: basic('bob', 'builder') } });
    assert.equal(res.status, 403);
    const body = await res.text();
    assert.equal(
      JSON.parse(body).error.code,
      'SG_ERR_ENROLMENT_NEEDS_BROWSER',
      'a clear refusal instead of a question it cannot answer',
    );
    assert.doesNotMatch(body, /otpauth|secret/i);
    assert.equal(storedSecret('bob'), undefined);
    assert.equal(upstream.seen.length, count);
  });
});
