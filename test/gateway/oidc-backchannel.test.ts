// OIDC Back-Channel Logout across gateways: two gateways on one Redis store; the provider's
// logout token, posted to one of them, ends the sessions of that provider session wherever they
// were made, each session_ended once.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import { redisSkip, startRedis, type RedisServer } from '../support/redis-servers.js';
import { ssoPlugin, startOidcProvider, type TestProvider } from '../support/oidc-provider.js';
import { freePort } from '../e2e/gateways.js';
import { Browser, startTestGateway, testUpstream, type GatewayFixture } from './harness.js';

const skip = redisSkip();
let op: TestProvider;
let redis: RedisServer;
let upstream: Awaited<ReturnType<typeof testUpstream>>;
let a: GatewayFixture;
let b: GatewayFixture;
let gwUrl: string;
let shared: string;
const ended: string[] = [];

const config = (port: number) => `
listen: { port: ${port} }
store: redis://127.0.0.1:${redis.port}
keys: ${shared}/keyring.json
plugins:
${ssoPlugin(op, { client_secret_env: 'SG_TEST_BCL_SECRET', redirect_uri: `${gwUrl}/sg/oidc/callback` })}profiles:
  default:
    policy: [ { authenticate: sso }, allow ]
routes:
  - { upstream: "\${UPSTREAM}" }
`;

before(async () => {
  if (skip) return;
  redis = await startRedis();
  shared = mkdtempSync(join(tmpdir(), 'sg-bcl-'));
  upstream = await testUpstream();
  const port = await freePort();
  gwUrl = `http://127.0.0.1:${port}`;
  op = await startOidcProvider({ redirectUri: `${gwUrl}/sg/oidc/callback` });
  process.env.SG_TEST_BCL_SECRET = op.clientSecret;
  // Gateway A listens where the provider posts its logout tokens; B shares its store (and key ring).
  a = await startTestGateway(config(port), { UPSTREAM: upstream.url }, undefined, { port });
  b = await startTestGateway(config(port), { UPSTREAM: upstream.url });
  for (const g of [a, b]) await g.gw.engine.onClose('test-ended', (e) => void ended.push(e.sessionId));
});
after(async () => {
  await a?.close();
  await b?.close();
  await redis?.stop();
  await upstream?.close();
  await op?.stop();
  if (shared) rmSync(shared, { recursive: true, force: true });
});

/** Sign in as `user` through gateway `g`; the browser, its session id and the provider's sid. */
async function signIn(g: GatewayFixture, user: string) {
  const browser = new Browser(g.gw.url);
  const first = await browser.fetch('/');
  const query = await op.signIn(first.headers.get('location') ?? '', user);
  assert.equal((await browser.fetch(`/sg/oidc/callback?${query}`)).status, 302);
  const id = g.gw.engine.sid(browser.jar.get('MRHSession')!);
  const s = await g.gw.engine.get(id);
  return { browser, id, sid: s!.variables['session.oauth.sid']!, sub: s!.variables['session.oauth.sub']! };
}

describe('back-channel logout through the shared store', { skip }, () => {
  it('the provider ends one sign-in: only its session closes, on the other gateway too, once', async () => {
    const viaA = await signIn(a, 'alice');
    const viaB = await signIn(b, 'alice');
    assert.notEqual(viaA.sid, viaB.sid, 'two provider sessions');
    assert.equal((await viaB.browser.fetch('/')).status, 200);
    await op.backchannelLogout(viaB.sub, viaB.sid); // posted to gateway A; the session lives via B
    assert.equal(await b.gw.engine.get(viaB.id), null);
    assert.equal((await viaB.browser.fetch('/')).status, 302, 'B asks for a sign-in again');
    assert.ok(await a.gw.engine.get(viaA.id), 'the other provider session is untouched');
    await op.backchannelLogout(viaA.sub, viaA.sid);
    assert.equal(await a.gw.engine.get(viaA.id), null);
    const deadline = Date.now() + 10_000;
    while (ended.filter((id) => id === viaA.id || id === viaB.id).length < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(ended.filter((id) => id === viaB.id).length, 1);
    assert.equal(ended.filter((id) => id === viaA.id).length, 1);
  });
});
