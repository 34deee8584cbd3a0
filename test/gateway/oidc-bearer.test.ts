// API clients with a bearer token (docs/oidc.md): a JWT access token of the route's provider in
// place of a session cookie. Tokens are made here with the keys of a fake provider the test holds.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { parseConfig } from '../../src/gateway/config/load.js';
import { startFakeProvider, type FakeProvider } from '../support/fake-oidc-provider.js';
import { startTestGateway, testUpstream, type GatewayFixture } from './harness.js';

const API = 'https://api.example.org';
let fake: FakeProvider;
let fx: GatewayFixture;
let upstream: Awaited<ReturnType<typeof testUpstream>>;

before(async () => {
  fake = await startFakeProvider();
  upstream = await testUpstream();
  process.env.SG_TEST_BEARER_SECRET = 'not-used';
  fx = await startTestGateway(
    `
store: memory
keys: \${DIR}/keyring.json
plugins:
  - name: sso
    runtime: builtin
    type: oidc
    config: { issuer: "${fake.issuer}", client_id: sessiongate, client_secret_env: SG_TEST_BEARER_SECRET, redirect_uri: "http://gw.test/sg/oidc/callback", allow_insecure_http: true }
profiles:
  default: { policy: [ { authenticate: sso }, allow ] }
routes:
  - match: { path: /api/ }
    upstream: "\${UPSTREAM}"
    bearer: { plugin: sso, audience: "${API}", required_scopes: [orders.read] }
    identity_headers: { X-User: session.logon.last.username, X-Groups: session.logon.last.groups }
  - { upstream: "\${UPSTREAM}" }
`,
    { UPSTREAM: upstream.url },
  );
});
after(async () => {
  await fx?.close();
  await upstream?.close();
  await fake?.stop();
});

/** An access token as the provider would make it, with `change` applied (undefined: left out). */
function token(change: Record<string, unknown> = {}, options?: { foreignKey?: boolean }): Promise<string> {
  const now = Math.floor(fx.clock.now() / 1000);
  const claims: Record<string, unknown> = {
    iss: fake.issuer,
    aud: [API, 'other'],
    sub: 'sub-alice',
    preferred_username: 'alice',
    groups: ['ops', 'dev'],
    scope: 'openid orders.read',
    iat: now,
    exp: now + 600,
    ...change,
  };
  for (const [k, v] of Object.entries(claims)) if (v === undefined) delete claims[k];
  return fake.sign(claims, options);
}

const call = (path: string, auth?: string) =>
  fetch(`${fx.gw.url}${path}`, { headers: auth ? { authorization: auth } : {}, redirect: 'manual' });

describe('bearer access tokens', () => {
  it('a valid token is proxied with its identity, once per token; the token stays at the gateway', async () => {
    const t = await token();
    const first = await call('/api/orders', `Bearer ${t}`);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('set-cookie')?.includes('MRHSession'), false);
    const seen = upstream.seen.at(-1)!;
    assert.equal(seen.headers['x-user'], 'alice');
    assert.equal(seen.headers['x-groups'], 'ops,dev');
    assert.equal(seen.headers.authorization, undefined, 'the Authorization header is stripped');
    assert.equal((await call('/api/orders', `Bearer ${t}`)).status, 200);
    const sessions = (await fx.gw.engine.list()).sessions;
    assert.equal(sessions.length, 1, 'one session per token');
    const s = sessions[0]!;
    assert.equal(s.state, 'allow');
    assert.equal(s.user, 'alice');
    assert.equal(s.variables['session.oauth.sub'], 'sub-alice');
    assert.equal(s.variables['session.oauth.iss'], fake.issuer);
    assert.equal(s.variables['session.oauth.scope'], 'openid orders.read');
    assert.ok(s.lifetimeDeadline! <= fx.clock.now() + 601_000, 'the session ends with the token');
    assert.ok(!JSON.stringify(s).includes(t), 'the token is not stored');
    assert.ok(!JSON.stringify(fx.logs.lines).includes(t), 'the token is not logged');
    await fx.gw.engine.close(s.id, 'logout');
  });

  it('refuses forged, foreign, stale and narrow tokens with 401 invalid_token, making no session', async () => {
    const now = Math.floor(fx.clock.now() / 1000);
    const header = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const payload = { iss: fake.issuer, aud: API, sub: 's', scope: 'orders.read', exp: now + 600 };
    const hmac = new TextEncoder().encode(fake.publicPem);
    const cases: [string, string, RegExp][] = [
      ['another audience', await token({ aud: 'https://elsewhere.example.org' }), /aud claim/],
      ['expired', await token({ iat: now - 3600, exp: now - 600 }), /exp claim/],
      ['not yet valid', await token({ nbf: now + 600 }), /nbf claim/],
      ['no exp', await token({ exp: undefined }), /exp claim/],
      ['another key', await token({}, { foreignKey: true }), /SIGNATURE_VERIFICATION/],
      ['alg none', `${header({ alg: 'none' })}.${header(payload)}.`, /ALG_NOT_ALLOWED/],
      [
        'HS256 with the public key',
        await new SignJWT(payload).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).sign(hmac),
        /ALG_NOT_ALLOWED/,
      ],
      ['another issuer', await token({ iss: 'http://127.0.0.1:1' }), /iss claim/],
      ['missing scope', await token({ scope: 'openid' }), /lacks the scope orders.read/],
      ['not a JWT', 'abc.def', /ERR_JWS_INVALID/],
    ];
    for (const [what, t, reason] of cases) {
      const r = await call('/api/orders', `Bearer ${t}`);
      assert.equal(r.status, 401, what);
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer error="invalid_token"/, what);
      const body = (await r.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'SG_ERR_BEARER_TOKEN_INVALID', what);
      assert.match(body.error.message, reason, what);
      assert.doesNotMatch(body.error.message, /\n/, what);
      assert.equal(r.headers.get('location'), null, what);
    }
    assert.equal((await fx.gw.engine.list()).sessions.length, 0, 'no session made');
  });

  it('a route without bearer ignores a Bearer header (the sign-in flow as before)', async () => {
    const before = upstream.seen.length;
    const plain = await call('/web/');
    const withToken = await call('/web/', `Bearer ${await token()}`);
    assert.equal(withToken.status, plain.status);
    assert.notEqual(withToken.status, 200);
    assert.equal(withToken.headers.get('www-authenticate')?.includes('invalid_token') ?? false, false);
    assert.equal(upstream.seen.length, before, 'nothing proxied');
  });

  it('refuses a bearer route naming no oidc plugin at start, naming the path', () => {
    const yaml = (plugin: string) => `
plugins:
  - { name: users, runtime: builtin, type: users, config: { file: ./users.yaml } }
routes:
  - { upstream: "http://127.0.0.1:9", bearer: { plugin: ${plugin}, audience: api } }
`;
    assert.throws(
      () => parseConfig(yaml('users'), 'b.yaml', fx.dir),
      /routes\.0\.bearer\.plugin: plugin users is not an oidc plugin/,
    );
    assert.throws(
      () => parseConfig(yaml('nope'), 'b.yaml', fx.dir),
      /routes\.0\.bearer\.plugin: no plugin named nope/,
    );
  });
});
