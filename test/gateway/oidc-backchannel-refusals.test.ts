// The logout token checks of OIDC Back-Channel Logout 1.0 §2.6, with tokens made here and a
// provider whose keys the test holds: each malformed or forged token gets 400 and ends nothing.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { providerTags } from '../../src/gateway/oidc-tags.js';
import { startTestGateway, type GatewayFixture } from './harness.js';

const CLIENT = 'sessiongate';
type SigningKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
let issuer: string;
let provider: Server;
let fx: GatewayFixture;
let key: SigningKey;
let other: SigningKey;
let publicPem: string;

before(async () => {
  const pair = await generateKeyPair('RS256', { extractable: true });
  key = pair.privateKey;
  other = (await generateKeyPair('RS256')).privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  publicPem = JSON.stringify(jwk);
  provider = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') {
      res.end(
        JSON.stringify({
          issuer,
          jwks_uri: `${issuer}/jwks`,
          authorization_endpoint: `${issuer}/auth`,
          token_endpoint: `${issuer}/token`,
        }),
      );
    } else if (req.url === '/jwks') res.end(JSON.stringify({ keys: [jwk] }));
    else res.writeHead(404).end('{}');
  });
  await new Promise<void>((r) => provider.listen(0, '127.0.0.1', r));
  issuer = `http://127.0.0.1:${(provider.address() as AddressInfo).port}`;
  process.env.SG_TEST_BCL_FAKE_SECRET = 'not-used';
  fx = await startTestGateway(`
store: memory
keys: \${DIR}/keyring.json
plugins:
  - name: sso
    runtime: builtin
    type: oidc
    config: { issuer: "${issuer}", client_id: ${CLIENT}, client_secret_env: SG_TEST_BCL_FAKE_SECRET, redirect_uri: "http://gw.test/sg/oidc/callback", allow_insecure_http: true }
profiles:
  default: { policy: [ { authenticate: sso }, allow ] }
routes:
  - { upstream: "http://127.0.0.1:9" }
`);
});
after(async () => {
  await fx?.close();
  await new Promise<void>((r) => provider.close(() => r()));
});

let jtis = 0;
/** A logout token as the provider would make it, with `change` applied. */
async function token(change: Partial<JWTPayload> & { alg?: string; signer?: SigningKey | Uint8Array } = {}) {
  const { alg = 'RS256', signer = key, ...claims } = change;
  const payload: JWTPayload = {
    iss: issuer,
    aud: CLIENT,
    iat: Math.floor(Date.now() / 1000),
    jti: `jti-${++jtis}`,
    sid: 'provider-session-1',
    events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
    ...claims,
  };
  for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
  return new SignJWT(payload).setProtectedHeader({ alg, kid: 'k1', typ: 'logout+jwt' }).sign(signer);
}

async function post(body: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${fx.gw.url}/sg/oidc/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
  return { status: res.status, text: await res.text() };
}

/** A live session signed in at the fake provider (provider session `sid`). */
async function session(sid = 'provider-session-1'): Promise<string> {
  const { id } = await fx.gw.engine.create({ state: 'allow', user: 'alice' });
  await fx.gw.engine.tag(id, providerTags(issuer, { sid, sub: 'alice-sub' }));
  return id;
}

describe('back-channel logout tokens', () => {
  it('a valid token ends the sessions of its sid (200); the same token again is refused', async () => {
    const one = await session();
    const two = await session();
    const elsewhere = await session('provider-session-2');
    const t = await token();
    assert.equal((await post(`logout_token=${t}`)).status, 200);
    assert.equal(await fx.gw.engine.get(one), null);
    assert.equal(await fx.gw.engine.get(two), null);
    assert.ok(await fx.gw.engine.get(elsewhere));
    const again = await post(`logout_token=${t}`);
    assert.equal(again.status, 400);
    assert.match(again.text, /used before/);
  });

  it('a token with sub and no sid ends every session of that user at this provider', async () => {
    const id = await session('provider-session-3');
    assert.equal(
      (await post(`logout_token=${await token({ sid: undefined, sub: 'alice-sub' })}`)).status,
      200,
    );
    assert.equal(await fx.gw.engine.get(id), null);
  });

  it('refuses forged and malformed tokens, ending nothing', async () => {
    const id = await session('provider-session-4');
    const hmacWithPublicKey = new TextEncoder().encode(publicPem);
    const old = Math.floor(Date.now() / 1000) - 3600;
    const cases: [string, string, RegExp][] = [
      ['no token', 'x=1', /no logout_token/],
      ['not a JWT', 'logout_token=abc', /not a JWT/],
      [
        'another issuer',
        `logout_token=${await token({ iss: 'http://127.0.0.1:1', sid: 'provider-session-4' })}`,
        /not from a configured/,
      ],
      [
        'another audience',
        `logout_token=${await token({ aud: 'someone-else', sid: 'provider-session-4' })}`,
        /does not verify/,
      ],
      [
        'another key',
        `logout_token=${await token({ signer: other, sid: 'provider-session-4' })}`,
        /does not verify/,
      ],
      [
        'HS256 with the public key',
        `logout_token=${await token({ alg: 'HS256', signer: hmacWithPublicKey, sid: 'provider-session-4' })}`,
        /does not verify/,
      ],
      ['too old', `logout_token=${await token({ iat: old, sid: 'provider-session-4' })}`, /does not verify/],
      ['with a nonce', `logout_token=${await token({ nonce: 'n', sid: 'provider-session-4' })}`, /nonce/],
      [
        'without the event',
        `logout_token=${await token({ events: {}, sid: 'provider-session-4' })}`,
        /no back-channel logout event/,
      ],
      ['neither sid nor sub', `logout_token=${await token({ sid: undefined })}`, /neither sid nor sub/],
      ['no jti', `logout_token=${await token({ jti: undefined, sid: 'provider-session-4' })}`, /no jti/],
    ];
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${Buffer.from(
      JSON.stringify({
        iss: issuer,
        aud: CLIENT,
        iat: Math.floor(Date.now() / 1000),
        jti: 'n1',
        sid: 'provider-session-4',
        events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
      }),
    ).toString('base64url')}.`;
    cases.push(['alg none', `logout_token=${unsigned}`, /does not verify/]);
    for (const [what, body, reason] of cases) {
      const r = await post(body);
      assert.equal(r.status, 400, what);
      assert.match(r.text, reason, `${what}: ${r.text}`);
      assert.match(r.text, /"error":"invalid_request"/);
    }
    assert.ok(await fx.gw.engine.get(id), 'nothing ended');
  });
});
