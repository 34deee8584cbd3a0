// Access tokens kept fresh while the session is used: a request after `refresh_at` refreshes
// at a real provider (oidc-provider), beside the request before the expiry and before it after;
// a refresh the provider refuses (a revoked refresh token) ends the session with its reason.
// The gateway's clock is a ManualClock: time passes by `advance`, never by waiting.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TokenRefresh } from '../../src/gateway/oidc-refresh.js';
import { tokenRefresher } from '../../src/plugins/builtin/oidc-client.js';
import { Keyring } from '../../src/session/keyring.js';
import { ssoPlugin, startOidcProvider, type TestProvider } from '../support/oidc-provider.js';
import { Browser, startTestGateway, testUpstream, type GatewayFixture } from './harness.js';
import { until } from '../ssh/harness.js';

const REDIRECT = 'http://gw.test/sg/oidc/callback';
/** The test provider's access token lifetime (seconds). */
const ACCESS_TTL = 600;
let op: TestProvider;
let fx: GatewayFixture;
let upstream: Awaited<ReturnType<typeof testUpstream>>;
const closed: { id: string; reason: string }[] = [];

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
    inactivity_timeout: 86400
routes:
  - { upstream: "\${UPSTREAM}", pass_access_token: true }
`,
    { UPSTREAM: upstream.url },
    (dir) => writeFileSync(join(dir, 'oidc-secret'), `${op.clientSecret}\n`, { mode: 0o600 }),
  );
  await fx.gw.engine.onClose(
    'refresh-test',
    async (e) => void closed.push({ id: e.sessionId, reason: e.reason }),
  );
});
after(async () => {
  await fx?.close();
  await upstream?.close();
  await op?.stop();
});

async function signedIn(user: string): Promise<{ b: Browser; id: () => string }> {
  const b = new Browser(fx.gw.url);
  const first = await b.fetch('/');
  const query = await op.signIn(first.headers.get('location') ?? '', user);
  assert.equal((await b.fetch(`/sg/oidc/callback?${query}`)).status, 302);
  return { b, id: () => fx.gw.engine.sid(b.jar.get('MRHSession')!) };
}

const secure = (id: string, name: string) => fx.gw.engine.data.get(id, name, { secure: true });
const passedToken = () => upstream.seen.at(-1)!.headers.authorization;

describe('OpenID Connect access token refresh (real provider, injected clock)', () => {
  it('sets refresh_at before the expiry, only with a refresh token; nothing happens before it', async () => {
    const { b, id } = await signedIn('alice');
    const s = (await fx.gw.engine.get(id()))!;
    const expiresAt = Number(s.variables['session.oauth.expires_at']);
    assert.ok(
      Math.abs(expiresAt - (fx.clock.now() / 1000 + ACCESS_TTL)) < 5,
      'expires_at is plain, in seconds',
    );
    assert.equal(Number(s.variables['session.oauth.refresh_at']), expiresAt - 60);
    assert.ok(await secure(id(), 'session.oauth.refresh_token'));
    const grants = op.refreshGrants();
    fx.clock.advance((ACCESS_TTL - 61) * 1000);
    assert.equal((await b.fetch('/x')).status, 200);
    assert.equal(op.refreshGrants(), grants, 'no provider call before refresh_at');
  });

  it('before the expiry: the request goes on at once with the old token, the new one follows', async () => {
    const { b, id } = await signedIn('alice');
    const old = await secure(id(), 'session.oauth.access_token');
    fx.clock.advance((ACCESS_TTL - 30) * 1000);
    assert.equal((await b.fetch('/a')).status, 200);
    assert.equal(passedToken(), `Bearer ${old}`);
    await until(async () => (await secure(id(), 'session.oauth.access_token')) !== old, 10_000, 'refreshed');
    const fresh = await secure(id(), 'session.oauth.access_token');
    assert.equal((await b.fetch('/b')).status, 200);
    assert.equal(passedToken(), `Bearer ${fresh}`);
    const s = (await fx.gw.engine.get(id()))!;
    assert.ok(
      Number(s.variables['session.oauth.expires_at']) * 1000 > fx.clock.now() + 500_000,
      'a new expiry',
    );
  });

  it('after the expiry: the request waits and goes upstream with the new token; one grant for two requests', async () => {
    const { b, id } = await signedIn('bob');
    const old = await secure(id(), 'session.oauth.access_token');
    const grants = op.refreshGrants();
    fx.clock.advance((ACCESS_TTL + 10) * 1000);
    const [one, two] = await Promise.all([b.fetch('/c'), b.fetch('/d')]);
    assert.equal(one.status, 200);
    assert.equal(two.status, 200);
    const fresh = await secure(id(), 'session.oauth.access_token');
    assert.notEqual(fresh, old);
    assert.deepEqual(
      upstream.seen.slice(-2).map((r) => r.headers.authorization),
      [`Bearer ${fresh}`, `Bearer ${fresh}`],
    );
    assert.equal(op.refreshGrants(), grants + 1);
  });

  it('two gateway processes on one store: the store claim lets one of them refresh', async () => {
    const { id } = await signedIn('alice');
    fx.clock.advance((ACCESS_TTL + 10) * 1000);
    const session = (await fx.gw.engine.get(id()))!;
    // Each "process" with its own refresher (its own discovery), as a second gateway would have.
    const env = { baseDir: fx.dir, keyring: Keyring.ephemeral(), logger: fx.logs, name: 'sso' };
    const config = {
      issuer: op.issuer,
      client_id: op.clientId,
      client_secret_file: './oidc-secret',
      allow_insecure_http: true,
      redirect_uri: REDIRECT,
    };
    const [a, b] = [0, 1].map(
      () => new TokenRefresh(new Map([['sso', tokenRefresher(config, env)]]), fx.gw.engine, fx.logs),
    );
    const grants = op.refreshGrants();
    await Promise.all([a!.due(session), b!.due(session)]);
    assert.equal(op.refreshGrants(), grants + 1);
    assert.equal((await fx.gw.engine.get(id()))?.state, 'allow');
  });

  it('a revoked refresh token: the session ends (token_refresh_failed, once), the browser signs in again', async () => {
    const { b, id } = await signedIn('alice');
    const sessionId = id();
    await op.revoke((await secure(sessionId, 'session.oauth.refresh_token'))!);
    fx.clock.advance((ACCESS_TTL + 10) * 1000);
    const res = await b.fetch('/e');
    assert.equal(res.status, 302);
    assert.ok(res.headers.get('location')?.startsWith(`${op.issuer}/`), 'a new sign-in at the provider');
    assert.equal(await fx.gw.engine.get(sessionId), null);
    await until(() => closed.some((c) => c.id === sessionId), 5000, 'close delivered');
    assert.deepEqual(
      closed.filter((c) => c.id === sessionId),
      [{ id: sessionId, reason: 'token_refresh_failed' }],
    );
    const line = fx.logs.lines.find((l) => l.message === 'oidc token refresh refused: the session ends');
    assert.match(String(line?.fields.reason), /invalid_grant/);
    assert.ok(!JSON.stringify(fx.logs.lines).includes(op.clientSecret), 'no secret in the log');
  });

  // Last: it stops the provider.
  it('a provider that does not answer: the session stays, the request is served, a warning', async () => {
    const { b, id } = await signedIn('bob');
    await op.stop();
    fx.clock.advance((ACCESS_TTL + 10) * 1000);
    assert.equal((await b.fetch('/f')).status, 200);
    assert.equal((await fx.gw.engine.get(id()))?.state, 'allow');
    assert.ok(fx.logs.lines.some((l) => l.message === 'oidc token refresh failed'));
  });
});
