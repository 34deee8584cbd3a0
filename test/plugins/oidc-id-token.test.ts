import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import type { JsonObject } from '../../src/core/session-types.js';
import type { AaHookResult } from '../../src/plugins/define.js';
import { oidc } from '../../src/plugins/builtin/oidc.js';
import { Keyring } from '../../src/session/keyring.js';
import {
  FAKE_CLIENT_ID,
  FAKE_KID,
  startFakeProvider,
  type FakeProvider,
} from '../support/fake-oidc-provider.js';
import { tempDir } from './builtin-helpers.js';
import { recordingLogger } from './helpers.js';

const REDIRECT = 'https://gw.example/sg/oidc/callback';
const SECRET_ENV = 'SG_TEST_OIDC_CLIENT_SECRET';
process.env[SECRET_ENV] = 'fake-client-secret';

type Claims = Record<string, unknown>;
const b64u = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

function plugin(config: Record<string, unknown>) {
  const env = {
    name: 'sso',
    baseDir: tempDir('sg-oidc-'),
    keyring: Keyring.ephemeral(),
    logger: recordingLogger(),
  };
  const p = oidc(
    { client_id: FAKE_CLIENT_ID, client_secret_env: SECRET_ENV, redirect_uri: REDIRECT, ...config },
    env,
  );
  const call = (cookie: JsonObject, kv: Record<string, string> = {}) =>
    p.authenticate!(
      { sessionId: 'b'.repeat(32), cookie, sessionCookie: {}, keyValuePairs: kv },
      { name: 'sso', config: {}, log() {} },
    ) as Promise<AaHookResult>;
  return { call, logger: env.logger };
}

describe('oidc plugin: ID token checks against a hostile fake provider', () => {
  let fake: FakeProvider;
  let sso: ReturnType<typeof plugin>;
  const now = () => Math.floor(Date.now() / 1000);

  before(async () => {
    fake = await startFakeProvider();
    sso = plugin({ issuer: fake.issuer, allow_insecure_http: true, timeout_ms: 2000 });
  });
  after(() => fake?.stop());

  /** Run one sign-in whose token endpoint answers with the ID token `craft` makes. */
  async function signInWith(craft: (good: Claims) => Promise<string>, p = sso) {
    const ask = await p.call({});
    assert.equal(ask.verdict, 'NEEDINFO', JSON.stringify(ask));
    const q = new URL(ask.question!.redirect!).searchParams;
    const good = {
      iss: fake.issuer,
      aud: FAKE_CLIENT_ID,
      sub: 'carol',
      nonce: q.get('nonce'),
      iat: now(),
      exp: now() + 300,
    };
    const code = randomUUID();
    fake.answer(code, await craft({ ...good, email: 'carol@example.org' }));
    const out = await p.call(ask.cookie!, { oidc_callback: `code=${code}&state=${q.get('state')}` });
    return { out, challenge: q.get('code_challenge') };
  }

  it('a correct ID token is accepted, and the token request carried the PKCE verifier', async () => {
    const { out, challenge } = await signInWith((c) => fake.sign(c));
    assert.equal(out.verdict, 'ACCEPT', JSON.stringify(out));
    assert.equal(out.gatewayUser, 'carol@example.org', 'no preferred_username: the email');
    assert.deepEqual(out.gatewayGroups, []);
    const verifier = fake.requests.at(-1)!.get('code_verifier')!;
    assert.equal(createHash('sha256').update(verifier).digest('base64url'), challenge);
    assert.equal(fake.requests.at(-1)!.get('redirect_uri'), REDIRECT);
  });

  const forged: [string, (c: Claims) => Promise<string>, RegExp][] = [
    ['another issuer', (c) => fake.sign({ ...c, iss: 'https://evil.example' }), /"iss"/],
    ['another audience', (c) => fake.sign({ ...c, aud: 'some-other-client' }), /"aud"/],
    ['another authorized party', (c) => fake.sign({ ...c, aud: [FAKE_CLIENT_ID, 'x'], azp: 'x' }), /"azp"/],
    ['an expired token', (c) => fake.sign({ ...c, iat: now() - 7200, exp: now() - 3600 }), /"exp"/],
    ['another nonce', (c) => fake.sign({ ...c, nonce: 'not-the-nonce' }), /"nonce" claim value/],
    ['no nonce', (c) => fake.sign({ ...c, nonce: undefined }), /"nonce" \(nonce\) claim missing/],
    [
      'a signature by another key',
      (c) => fake.sign(c, { foreignKey: true }),
      /signature verification failed/,
    ],
    [
      'a changed payload',
      async (c) => (await fake.sign(c)).replace(/\.[^.]+\./, `.${b64u({ ...c, sub: 'root' })}.`),
      /signature verification failed/,
    ],
    ['alg none', async (c) => `${b64u({ alg: 'none', typ: 'JWT' })}.${b64u(c)}.`, /unsupported JWS "alg"/],
    [
      'HS256 keyed with the public key',
      (c) =>
        new SignJWT(c)
          .setProtectedHeader({ alg: 'HS256', kid: FAKE_KID })
          .sign(new TextEncoder().encode(fake.publicPem)),
      /unsupported JWS algorithm/,
    ],
  ];
  for (const [what, craft, why] of forged) {
    it(`refuses ${what}`, async () => {
      const { out } = await signInWith(craft);
      assert.equal(out.verdict, 'DENY', JSON.stringify(out));
      assert.match(out.reason!, /^the sign-in answer was refused: /);
      assert.match(out.reason!, why);
      assert.doesNotMatch(out.reason!, /eyJ/, 'no token in the reason');
      assert.deepEqual(out.cookie, {}, 'the flow is used up');
    });
  }

  it('refuses an algorithm outside id_token_algorithms', async () => {
    const es = plugin({
      issuer: fake.issuer,
      allow_insecure_http: true,
      id_token_algorithms: ['ES256', 'EdDSA'],
    });
    const { out } = await signInWith((c) => fake.sign(c), es);
    assert.equal(out.verdict, 'DENY');
    assert.equal(out.reason, 'the ID token is signed with RS256, which is not allowed');
    assert.ok(es.logger.lines.some((l) => l.fields.check === 'id_token_alg'));
  });

  it('a token endpoint that does not answer is DENY within timeout_ms', async () => {
    const slow = plugin({ issuer: fake.issuer, allow_insecure_http: true, timeout_ms: 300 });
    fake.hang = true;
    try {
      const started = Date.now();
      const { out } = await signInWith((c) => fake.sign(c), slow);
      assert.equal(out.verdict, 'DENY');
      assert.equal(out.reason, `the identity provider ${fake.issuer} did not answer`);
      assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    } finally {
      fake.hang = false;
    }
  });

  it('a provider that cannot be reached is DENY at the start', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const gone = plugin({ issuer: `http://127.0.0.1:${port}`, allow_insecure_http: true });
    const out = await gone.call({});
    assert.equal(out.verdict, 'DENY');
    assert.equal(out.reason, `the identity provider http://127.0.0.1:${port} did not answer`);
    assert.ok(gone.logger.lines.some((l) => l.level === 'warn' && l.fields.check === 'provider'));
  });

  it('an issuer without an OpenID configuration is DENY naming it', async () => {
    const none = plugin({ issuer: `${fake.issuer}/nowhere`, allow_insecure_http: true });
    const out = await none.call({});
    assert.equal(out.verdict, 'DENY');
    assert.match(
      out.reason!,
      /^the identity provider http:\S+\/nowhere has no usable OpenID configuration \(/,
    );
    assert.ok(none.logger.lines.some((l) => l.fields.check === 'discovery'));
  });
});

describe('oidc plugin configuration', () => {
  const good = {
    issuer: 'https://login.example.org',
    client_id: 'c',
    client_secret_env: SECRET_ENV,
    redirect_uri: REDIRECT,
  };
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['no issuer', { ...good, issuer: undefined }, /^plugin sso: config\.issuer: required$/],
    [
      'an http issuer',
      { ...good, issuer: 'http://login.example.org' },
      /config\.issuer: an http:\/\/ issuer needs allow_insecure_http: true$/,
    ],
    ['an inline secret', { ...good, client_secret: 'x' }, /config: Unrecognized key: "client_secret"/],
    [
      'no client authentication',
      { ...good, client_secret_env: undefined },
      /config\.client_secret_file: give exactly one of/,
    ],
    ['two client authentications', { ...good, client_secret_file: './s' }, /give exactly one of/],
    [
      'an unset variable',
      { ...good, client_secret_env: 'SG_TEST_NOT_SET_ANYWHERE' },
      /config\.client_secret_env: environment variable SG_TEST_NOT_SET_ANYWHERE is not set$/,
    ],
    [
      'a missing secret file',
      { ...good, client_secret_env: undefined, client_secret_file: './nope' },
      /config\.client_secret_file: cannot read \.\/nope: ENOENT$/,
    ],
    [
      'a redirect with a query',
      { ...good, redirect_uri: `${REDIRECT}?x=1` },
      /config\.redirect_uri: must not have a query or fragment$/,
    ],
    [
      'a redirect elsewhere than the gateway callback',
      { ...good, redirect_uri: 'https://gw.example/callback' },
      /config\.redirect_uri: must be the gateway's callback, https:\/\/GATEWAY\/sg\/oidc\/callback$/,
    ],
    ['scopes without openid', { ...good, scopes: ['email'] }, /config\.scopes: must include openid$/],
    [
      'a variable outside session.oauth.',
      { ...good, claims: { 'session.custom.team': 'team' } },
      /config\.claims\.session\.custom\.team: expected a name under session\.oauth\.$/,
    ],
    [
      'a variable the plugin sets',
      { ...good, claims: { 'session.oauth.sub': 'email' } },
      /is set by the plugin itself$/,
    ],
    ['alg none allowed', { ...good, id_token_algorithms: ['none'] }, /config\.id_token_algorithms\.0: /],
    ['HS256 allowed', { ...good, id_token_algorithms: ['HS256'] }, /config\.id_token_algorithms\.0: /],
  ];
  for (const [what, config, message] of cases) {
    it(`refuses ${what} with one line`, () => {
      assert.throws(
        () => plugin(config),
        (err: Error) => {
          assert.match(err.message, message);
          assert.doesNotMatch(err.message, /\n/);
          return true;
        },
      );
    });
  }
});
