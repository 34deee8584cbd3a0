// API clients with a bearer token, with a real provider (oidc-provider issuing RFC 9068 JWT access
// tokens for an API): the access token of a real sign-in opens a bearer route without a cookie.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { ssoPlugin, startOidcProvider, type TestProvider } from '../support/oidc-provider.js';
import { Browser, startTestGateway, testUpstream, type GatewayFixture } from './harness.js';

const REDIRECT = 'http://gw.test/sg/oidc/callback';
const API = 'https://api.example.org';
let op: TestProvider;
let fx: GatewayFixture;
let upstream: Awaited<ReturnType<typeof testUpstream>>;

before(async () => {
  op = await startOidcProvider({ redirectUri: REDIRECT, api: { audience: API, scope: 'orders.read' } });
  upstream = await testUpstream();
  fx = await startTestGateway(
    `
store: memory
keys: \${DIR}/keyring.json
plugins:
${ssoPlugin(op, { redirect_uri: REDIRECT, scopes: ['openid', 'profile', 'email', 'orders.read'] })}profiles:
  default:
    policy: [ { authenticate: sso }, allow ]
    identity_headers: { X-User: session.logon.last.username }
routes:
  - match: { path: /api/ }
    upstream: "\${UPSTREAM}"
    bearer: { plugin: sso, audience: "${API}", required_scopes: [orders.read] }
  - { upstream: "\${UPSTREAM}" }
`,
    { UPSTREAM: upstream.url },
    (dir) => writeFileSync(join(dir, 'oidc-secret'), `${op.clientSecret}\n`, { mode: 0o600 }),
  );
});
after(async () => {
  await fx?.close();
  await upstream?.close();
  await op?.stop();
});

/** The access token of a real sign-in as `user` (read from the session's secure variable). */
async function accessToken(user: string): Promise<string> {
  const b = new Browser(fx.gw.url);
  const first = await b.fetch('/');
  assert.equal(first.status, 302);
  const query = await op.signIn(first.headers.get('location') ?? '', user);
  assert.equal((await b.fetch(`/sg/oidc/callback?${query}`)).status, 302);
  const [session] = (await fx.gw.engine.list()).sessions.filter((s) => s.user === user);
  const token = await fx.gw.engine.data.get(session!.id, 'session.oauth.access_token', { secure: true });
  assert.ok(token);
  return token;
}

describe('bearer access tokens from a real provider', () => {
  it("the provider's JWT access token opens the bearer route, one session per token", async () => {
    const token = await accessToken('alice');
    const claims = decodeJwt(token);
    assert.equal(claims.aud, API, 'a JWT access token for the API');
    const sessionsBefore = (await fx.gw.engine.list()).sessions.length;
    const call = () => fetch(`${fx.gw.url}/api/orders`, { headers: { authorization: `Bearer ${token}` } });
    const r = await call();
    assert.equal(r.status, 200, await r.clone().text());
    assert.equal(upstream.seen.at(-1)?.headers['x-user'], 'alice');
    assert.equal(upstream.seen.at(-1)?.headers.authorization, undefined);
    assert.equal((await call()).status, 200);
    const sessions = (await fx.gw.engine.list()).sessions;
    assert.equal(sessions.length, sessionsBefore + 1, 'one more session, for the token');
    // The browser's session has no session.oauth.scope: the token's session has.
    const mine = sessions.filter((s) => s.variables['session.oauth.scope'] !== undefined);
    assert.equal(mine.length, 1);
    assert.equal(mine[0]!.user, 'alice');
    assert.equal(mine[0]!.variables['session.oauth.iss'], op.issuer);
    assert.match(mine[0]!.variables['session.oauth.scope'] ?? '', /orders\.read/);
  });

  it('a route without bearer answers a Bearer request with the sign-in redirect', async () => {
    const token = await accessToken('bob');
    const r = await fetch(`${fx.gw.url}/other`, {
      headers: { authorization: `Bearer ${token}`, accept: 'text/html' },
      redirect: 'manual',
    });
    assert.equal(r.status, 302);
    assert.ok(r.headers.get('location')?.startsWith(`${op.issuer}/`));
  });
});
