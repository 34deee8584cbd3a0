// Bearer routes with `introspect: true`: opaque access tokens of a real provider (oidc-provider,
// resource indicators with opaque tokens) are checked at its introspection endpoint (RFC 7662),
// asked again after a minute, and a token revoked at the provider ends its session.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ssoPlugin, startOidcProvider, type TestProvider } from '../support/oidc-provider.js';
import { Browser, startTestGateway, testUpstream, type GatewayFixture } from './harness.js';

const REDIRECT = 'http://gw.test/sg/oidc/callback';
const API = 'https://api.example.org';
let op: TestProvider;
let fx: GatewayFixture;
let upstream: Awaited<ReturnType<typeof testUpstream>>;
const closed: { id: string; reason: string }[] = [];

before(async () => {
  op = await startOidcProvider({
    redirectUri: REDIRECT,
    api: { audience: API, scope: 'orders.read', format: 'opaque' },
  });
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
    bearer: { plugin: sso, audience: "${API}", required_scopes: [orders.read], introspect: true }
  - match: { path: /other-api/ }
    upstream: "\${UPSTREAM}"
    bearer: { plugin: sso, audience: "https://other.example.org", introspect: true }
  - match: { path: /jwt-api/ }
    upstream: "\${UPSTREAM}"
    bearer: { plugin: sso, audience: "${API}" }
  - { upstream: "\${UPSTREAM}" }
`,
    { UPSTREAM: upstream.url },
    (dir) => writeFileSync(join(dir, 'oidc-secret'), `${op.clientSecret}\n`, { mode: 0o600 }),
  );
  await fx.gw.engine.onClose(
    'introspection-test',
    async (e) => void closed.push({ id: e.sessionId, reason: e.reason }),
  );
});
after(async () => {
  await fx?.close();
  await upstream?.close();
  await op?.stop();
});

/** The opaque access token of a real sign-in as `user`. */
async function accessToken(user: string): Promise<string> {
  const b = new Browser(fx.gw.url);
  const first = await b.fetch('/');
  const query = await op.signIn(first.headers.get('location') ?? '', user);
  assert.equal((await b.fetch(`/sg/oidc/callback?${query}`)).status, 302);
  const id = fx.gw.engine.sid(b.jar.get('MRHSession')!);
  const token = await fx.gw.engine.data.get(id, 'session.oauth.access_token', { secure: true });
  assert.ok(token && token.split('.').length === 1, 'an opaque token, not a JWT');
  return token;
}

const call = (path: string, token: string) =>
  fetch(`${fx.gw.url}${path}`, { headers: { authorization: `Bearer ${token}` } });

const tokenSessions = async () =>
  (await fx.gw.engine.list()).sessions.filter((s) => s.variables['session.oauth.introspected_at']);

describe('bearer tokens checked by introspection (real provider, opaque tokens)', () => {
  it('an active token opens the route: its user, one session, no provider call for a minute', async () => {
    const token = await accessToken('alice');
    const before = (await tokenSessions()).length;
    const r = await call('/api/orders', token);
    assert.equal(r.status, 200, await r.clone().text());
    assert.equal(upstream.seen.at(-1)?.headers['x-user'], 'alice');
    assert.equal((await call('/api/orders', token)).status, 200);
    const mine = await tokenSessions();
    assert.equal(mine.length, before + 1, 'one session for the token');
    assert.match(mine.at(-1)!.variables['session.oauth.scope'] ?? '', /orders\.read/);
  });

  it('a token revoked at the provider: served from the session until the next check, then 401 and the session ends', async () => {
    const token = await accessToken('bob');
    assert.equal((await call('/api/orders', token)).status, 200);
    const [session] = (await tokenSessions()).filter((s) => s.user === 'bob');
    await op.revoke(token, 'access_token');
    assert.equal((await call('/api/orders', token)).status, 200, 'within the minute: no provider call');
    fx.clock.advance(61_000);
    const r = await call('/api/orders', token);
    assert.equal(r.status, 401);
    assert.match(r.headers.get('www-authenticate') ?? '', /invalid_token.*not active/);
    assert.equal(await fx.gw.engine.get(session!.id), null);
    assert.ok(closed.some((c) => c.id === session!.id && c.reason === 'token_revoked'));
  });

  it('refused: a token the provider does not know, another audience, an opaque token on a JWT route', async () => {
    const token = await accessToken('alice');
    const unknown = await call('/api/orders', 'x'.repeat(43));
    assert.equal(unknown.status, 401);
    assert.match(unknown.headers.get('www-authenticate') ?? '', /not active/);
    const other = await call('/other-api/x', token);
    assert.equal(other.status, 401);
    assert.match(other.headers.get('www-authenticate') ?? '', /aud claim/);
    assert.equal((await call('/jwt-api/x', token)).status, 401, 'a JWT route does not introspect');
  });
});
