// Single sign-on end to end over real sockets: the gateway sends the browser to a real OpenID
// Provider (oidc-provider), the provider's answer comes back to /sg/oidc/callback, the session
// holds the claims and the tokens, and the groups claim decides a route's acl.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ssoPlugin, startOidcProvider, type TestProvider } from '../support/oidc-provider.js';
import { Browser, startTestGateway, testUpstream, type GatewayFixture } from './harness.js';

const REDIRECT = 'http://gw.test/sg/oidc/callback';
let op: TestProvider;
let fx: GatewayFixture;
let upstream: Awaited<ReturnType<typeof testUpstream>>;

before(async () => {
  op = await startOidcProvider({ redirectUri: REDIRECT });
  upstream = await testUpstream();
  fx = await startTestGateway(
    `
store: memory
keys: \${DIR}/keyring.json
plugins:
${ssoPlugin(op, { redirect_uri: REDIRECT })}profiles:
  default:
    policy: [ { authenticate: sso }, allow ]
    identity_headers: { X-User: session.logon.last.username, X-Email: session.oauth.email }
routes:
  - { match: { path: /dev }, upstream: "\${UPSTREAM}", acl: { groups: [dev] } }
  - { match: { path: /api }, upstream: "\${UPSTREAM}", pass_access_token: true }
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

/** A browser that signs in as `user` at the provider, through the gateway's redirect and callback. */
async function signedIn(user: string, path = '/'): Promise<{ b: Browser; callback: string }> {
  const b = new Browser(fx.gw.url);
  const first = await b.fetch(path);
  assert.equal(first.status, 302);
  const location = first.headers.get('location') ?? '';
  assert.ok(location.startsWith(`${op.issuer}/`), location);
  const url = new URL(location);
  assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
  assert.equal(url.searchParams.get('redirect_uri'), REDIRECT);
  const query = await op.signIn(location, user);
  const back = await b.fetch(`/sg/oidc/callback?${query}`);
  assert.equal(back.status, 302, await back.clone().text());
  assert.equal(back.headers.get('location'), path);
  return { b, callback: query };
}

describe('OpenID Connect sign-in through the gateway (real provider)', () => {
  it('code flow with PKCE: claims in session variables, tokens sealed, identity to the app', async () => {
    const { b } = await signedIn('alice', '/hello');
    const res = await b.fetch('/hello');
    assert.equal(res.status, 200);
    const seen = upstream.seen.at(-1)!;
    assert.equal(seen.headers['x-email'], 'alice@example.org');
    assert.equal(seen.headers['x-user'], 'alice', 'the signed-in user is the logon name');
    const id = fx.gw.engine.sid(b.jar.get('MRHSession')!);
    const s = await fx.gw.engine.get(id);
    assert.equal(s?.state, 'allow');
    assert.equal(s?.variables['session.oauth.iss'], op.issuer);
    assert.equal(s?.variables['session.oauth.provider'], 'sso');
    assert.ok(!s?.variables['sessiongate.policy.question'], 'the sign-in URL (with its state) is not kept');
    assert.ok(s?.variables['session.oauth.sub']);
    assert.equal(s?.variables['session.oauth.access_token'], undefined);
    assert.ok(await fx.gw.engine.data.get(id, 'session.oauth.access_token', { secure: true }));
  });

  it('the groups claim decides the acl: alice (dev) reaches /dev, bob does not', async () => {
    const alice = await signedIn('alice', '/dev/x');
    assert.equal((await alice.b.fetch('/dev/x')).status, 200);
    const bob = await signedIn('bob', '/');
    assert.equal((await bob.b.fetch('/dev/x')).status, 403);
  });

  it('pass_access_token: the access token goes upstream as a bearer token on that route only', async () => {
    const { b } = await signedIn('alice', '/api/items');
    const token = await fx.gw.engine.data.get(
      fx.gw.engine.sid(b.jar.get('MRHSession')!),
      'session.oauth.access_token',
      {
        secure: true,
      },
    );
    assert.ok(token);
    await b.fetch('/api/items', { headers: { authorization: 'Bearer forged-by-the-client' } });
    assert.equal(upstream.seen.at(-1)!.headers.authorization, `Bearer ${token}`);
    await b.fetch('/other', { headers: { authorization: 'Bearer forged-by-the-client' } });
    assert.equal(upstream.seen.at(-1)!.headers.authorization, undefined, 'stripped, not passed elsewhere');
  });

  it('a callback used twice is refused (no logon in progress), and the session stays as it was', async () => {
    const { b, callback } = await signedIn('alice');
    const again = await b.fetch(`/sg/oidc/callback?${callback}`);
    assert.equal(again.status, 400);
    assert.equal((await b.fetch('/')).status, 200);
  });
});
