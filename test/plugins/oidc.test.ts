import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { JsonObject } from '../../src/core/session-types.js';
import type { AaHookResult } from '../../src/plugins/define.js';
import { oidc } from '../../src/plugins/builtin/oidc.js';
import { Keyring } from '../../src/session/keyring.js';
import { startOidcProvider, type TestProvider } from '../support/oidc-provider.js';
import { builtinHost, tempDir } from './builtin-helpers.js';
import { recordingLogger } from './helpers.js';

const REDIRECT = 'https://gw.example/sg/oidc/callback';
const LOGGED_OUT = 'https://gw.example/bye';

describe('oidc plugin against a real OpenID Provider (oidc-provider)', () => {
  let op: TestProvider;
  let t: Awaited<ReturnType<typeof builtinHost>>;
  let base: Record<string, unknown>;

  before(async () => {
    const rpKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const publicJwk = {
      ...rpKey.publicKey.export({ format: 'jwk' }),
      kid: 'rp-key',
      alg: 'ES256',
      use: 'sig',
    };
    op = await startOidcProvider({
      redirectUri: REDIRECT,
      postLogoutRedirectUri: LOGGED_OUT,
      privateKeyJwtPublicKey: publicJwk,
    });
    const baseDir = tempDir('sg-oidc-');
    writeFileSync(join(baseDir, 'oidc-secret'), `${op.clientSecret}\n`, { mode: 0o600 });
    writeFileSync(join(baseDir, 'rp-key.pem'), rpKey.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    base = {
      issuer: op.issuer,
      client_id: op.clientId,
      client_secret_file: './oidc-secret',
      redirect_uri: REDIRECT,
      allow_insecure_http: true,
      timeout_ms: 3000,
    };
    t = await builtinHost(
      [
        {
          name: 'sso',
          type: 'oidc',
          config: {
            ...base,
            display_name: 'Test IdP',
            email_domains: ['example.org'],
            required_claims: { email_verified: true },
            claims: { 'session.oauth.custom.team': 'team' },
          },
        },
        { name: 'other-domain', type: 'oidc', config: { ...base, email_domains: ['other.example'] } },
        { name: 'hd', type: 'oidc', config: { ...base, required_claims: { hd: 'example.org' } } },
        {
          name: 'jwt',
          type: 'oidc',
          config: {
            ...base,
            client_id: `${op.clientId}-jwt`,
            client_secret_file: undefined,
            private_key_jwt: { key_file: './rp-key.pem', alg: 'ES256', kid: 'rp-key' },
          },
        },
      ],
      { baseDir },
    );
  });
  after(async () => {
    await t?.stop();
    await op?.stop();
  });

  /** NEEDINFO in a new session: the session id and the authorization URL. */
  const begin = async (plugin = 'sso') => {
    const id = await t.session();
    const out = await t.host.authenticate(plugin, id, {});
    assert.equal(out.verdict, 'NEEDINFO', JSON.stringify(out));
    return { id, url: new URL(out.question!.redirect!) };
  };
  const answer = (plugin: string, id: string, callback: string) =>
    t.host.authenticate(plugin, id, { key_value_pairs: { oidc_callback: callback } });
  const refusedFor = (check: string) =>
    t.logger.lines.some(
      (l) => l.level === 'warn' && l.message === 'oidc sign-in refused' && l.fields.check === check,
    );

  it('NEEDINFO: a redirect to the authorization endpoint with PKCE S256, a fresh state and nonce', async () => {
    const id = await t.session();
    const first = await t.host.authenticate('sso', id, {});
    assert.equal(first.question?.key, 'oidc_callback');
    assert.equal(first.question?.prompt, 'Sign in with Test IdP');
    const url = new URL(first.question!.redirect!);
    assert.equal(url.origin, op.issuer);
    const q = url.searchParams;
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('client_id'), op.clientId);
    assert.equal(q.get('redirect_uri'), REDIRECT);
    assert.equal(q.get('scope'), 'openid profile email');
    assert.equal(q.get('code_challenge_method'), 'S256');
    assert.match(q.get('code_challenge')!, /^[A-Za-z0-9_-]{43}$/);
    const again = new URL((await t.host.authenticate('sso', id, {})).question!.redirect!).searchParams;
    assert.notEqual(again.get('state'), q.get('state'));
    assert.notEqual(again.get('nonce'), q.get('nonce'));
    const cookie = (await t.engine.get(id))!.cookies.sso!;
    assert.equal(cookie.state, again.get('state'));
    assert.equal(typeof cookie.code_verifier, 'string');
  });

  it('ACCEPT after the sign-in: user, groups, session and secure variables; a replay is refused', async () => {
    const { id, url } = await begin();
    const callback = await op.signIn(url.href, 'alice');
    const out = await answer('sso', id, callback);
    assert.equal(out.verdict, 'ACCEPT', JSON.stringify(out));
    assert.equal(out.gateway_user, 'alice');
    assert.deepEqual(out.gateway_groups, ['dev']);
    const vars = out.session_variables!;
    assert.equal(vars['session.oauth.provider'], 'sso');
    assert.equal(vars['session.oauth.sub'], 'alice');
    assert.equal(vars['session.oauth.iss'], op.issuer);
    assert.equal(vars['session.oauth.email'], 'alice@example.org');
    assert.equal(vars['session.oauth.name'], 'Alice Example');
    assert.equal(vars['session.oauth.custom.team'], 'platform');
    assert.match(vars['session.oauth.sid']!, /^\S+$/);
    const secure = out.secure_variables!;
    assert.equal(secure['session.oauth.id_token']!.split('.').length, 3);
    assert.ok(secure['session.oauth.access_token']);
    assert.ok(Number(vars['session.oauth.expires_at']) > Date.now() / 1000);
    assert.equal(Number(vars['session.oauth.refresh_at']), Number(vars['session.oauth.expires_at']) - 60);
    const cookie = (await t.engine.get(id))!.cookies.sso!;
    assert.deepEqual(cookie, { sub: 'alice', iss: op.issuer, sid: vars['session.oauth.sid'] });
    assert.equal((await t.host.authorize('sso', id, {})).verdict, 'ACCEPT');

    const replay = await answer('sso', id, callback);
    assert.equal(replay.verdict, 'DENY');
    assert.match(replay.reason!, /no sign-in is in progress/);
    assert.ok(refusedFor('state'));

    // RP-initiated logout: the endpoint the gateway's /sg/logout sends the browser to.
    const u = new URL(vars['session.oauth.end_session_endpoint']!);
    u.searchParams.set('id_token_hint', secure['session.oauth.id_token']!);
    assert.equal(u.origin, op.issuer);
    assert.equal(u.searchParams.get('id_token_hint'), secure['session.oauth.id_token']);
    const res = await fetch(u, { redirect: 'manual' });
    assert.equal(res.status, 200, 'the provider shows its logout confirmation for a valid hint');
  });

  it('a callback with another state is refused, and the sign-in cannot be finished after it', async () => {
    const { id, url } = await begin();
    const callback = await op.signIn(url.href, 'alice');
    const forged = new URLSearchParams(callback);
    forged.set('state', 'x'.repeat(43));
    const out = await answer('sso', id, forged.toString());
    assert.equal(out.verdict, 'DENY');
    assert.match(out.reason!, /does not belong to this sign-in/);
    assert.equal((await answer('sso', id, callback)).verdict, 'DENY');
    assert.equal((await answer('sso', id, 'code=abc')).verdict, 'DENY');
  });

  it('error=access_denied from the provider is DENY with the error code', async () => {
    const { id, url } = await begin();
    const callback = await op.signIn(url.href, null);
    assert.match(callback, /error=access_denied/);
    const out = await answer('sso', id, callback);
    assert.equal(out.verdict, 'DENY');
    assert.match(out.reason!, /refused the sign-in \(access_denied\)/);
    assert.ok(refusedFor('provider_error'));
  });

  it('email domains: a domain not allowed, an unverified address', async () => {
    const a = await begin('other-domain');
    const out = await answer('other-domain', a.id, await op.signIn(a.url.href, 'alice'));
    assert.equal(out.verdict, 'DENY');
    assert.equal(out.reason, 'the email domain example.org is not allowed');
    const b = await begin();
    const bob = await answer('sso', b.id, await op.signIn(b.url.href, 'bob'));
    assert.equal(bob.verdict, 'DENY');
    assert.match(bob.reason!, /email_verified must be true/);
  });

  it('required claims: a missing claim is DENY naming it; present, ACCEPT', async () => {
    const b = await begin('hd');
    const bob = await answer('hd', b.id, await op.signIn(b.url.href, 'bob'));
    assert.equal(bob.verdict, 'DENY');
    assert.equal(bob.reason, 'the claim hd must be example.org (it is missing)');
    assert.ok(refusedFor('required_claims'));
    const a = await begin('hd');
    assert.equal((await answer('hd', a.id, await op.signIn(a.url.href, 'alice'))).verdict, 'ACCEPT');
  });

  it('private_key_jwt: the client authenticates with a signed assertion', async () => {
    const { id, url } = await begin('jwt');
    assert.equal(url.searchParams.get('client_id'), `${op.clientId}-jwt`);
    const out = await answer('jwt', id, await op.signIn(url.href, 'alice'));
    assert.equal(out.verdict, 'ACCEPT', JSON.stringify(out));
    assert.equal(out.gateway_user, 'alice');
  });

  it('a sign-in older than max_flow_seconds is refused (the cookie carries the start)', async () => {
    const env = {
      name: 'sso',
      baseDir: tempDir('sg-oidc-'),
      keyring: Keyring.ephemeral(),
      logger: recordingLogger(),
    };
    writeFileSync(join(env.baseDir, 'oidc-secret'), op.clientSecret);
    const plugin = oidc({ ...base, max_flow_seconds: 60 }, env);
    const call = (cookie: JsonObject, kv: Record<string, string> = {}) =>
      plugin.authenticate!(
        { sessionId: 'a'.repeat(32), cookie, sessionCookie: {}, keyValuePairs: kv },
        { name: 'sso', config: {}, log() {} },
      ) as Promise<AaHookResult>;
    const ask = await call({});
    const cookie = { ...ask.cookie!, started_at: Number(ask.cookie!.started_at) - 61_000 };
    const callback = await op.signIn(ask.question!.redirect!, 'alice');
    const out = await call(cookie, { oidc_callback: callback });
    assert.equal(out.verdict, 'DENY');
    assert.equal(out.reason, 'the sign-in took longer than 60 s');
    assert.deepEqual(out.cookie, {});
    assert.ok(env.logger.lines.some((l) => l.fields.check === 'max_flow_seconds'));
  });
});
