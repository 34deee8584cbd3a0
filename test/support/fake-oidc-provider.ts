/**
 * A tiny hostile OpenID Provider for the ID token refusal tests: node:http on a free loopback
 * port serving a discovery document (which even advertises `none` and `HS256`), a JWKS with
 * one RS256 key, and a token endpoint that answers each code with whatever ID token the test
 * registered for it (`fake.answer(code, idToken)`) — crafted with `fake.sign(claims)` or by
 * hand. `fake.hang = true` makes the token endpoint never answer.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey } from 'jose';

export const FAKE_CLIENT_ID = 'sessiongate';
export const FAKE_KID = 'k1';

export interface FakeProvider {
  issuer: string;
  /** The public key, PEM (for the HS256-signed-with-the-public-key attack). */
  publicPem: string;
  /** Sign claims as the provider (RS256, kid k1), or with another key that claims kid k1. */
  sign(claims: Record<string, unknown>, options?: { foreignKey?: boolean }): Promise<string>;
  answer(code: string, idToken: string): void;
  /** The token requests received (form fields), oldest first. */
  requests: URLSearchParams[];
  hang: boolean;
  stop(): Promise<void>;
}

/**
 * @example
 * ```ts
 * const fake = await startFakeProvider();
 * fake.answer('c1', await fake.sign({ iss: fake.issuer, aud: FAKE_CLIENT_ID, sub: 'a', nonce }));
 * ```
 */
export async function startFakeProvider(): Promise<FakeProvider> {
  const own = await generateKeyPair('RS256', { extractable: true });
  const foreign = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(own.publicKey)), kid: FAKE_KID, alg: 'RS256', use: 'sig' };
  const answers = new Map<string, string>();
  const hanging = new Set<ServerResponse>();
  const json = (res: ServerResponse, body: unknown, status = 200) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', fake.issuer).pathname;
    if (path === '/.well-known/openid-configuration') return json(res, metadata(fake.issuer));
    if (path === '/jwks') return json(res, { keys: [jwk] });
    if (path !== '/token' || req.method !== 'POST') return json(res, { error: 'not_found' }, 404);
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      if (fake.hang) return void hanging.add(res);
      const form = new URLSearchParams(body);
      fake.requests.push(form);
      const idToken = answers.get(form.get('code') ?? '');
      if (idToken === undefined) return json(res, { error: 'invalid_grant' }, 400);
      answers.delete(form.get('code') ?? '');
      json(res, { access_token: 'at-fake', token_type: 'Bearer', expires_in: 300, id_token: idToken });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  const fake: FakeProvider = {
    issuer: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    publicPem: await exportSPKI(own.publicKey),
    sign: (claims, options) => sign(claims, options?.foreignKey ? foreign.privateKey : own.privateKey),
    answer: (code, idToken) => void answers.set(code, idToken),
    requests: [],
    hang: false,
    stop: () =>
      new Promise((resolve) => {
        for (const res of hanging) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return fake;
}

function metadata(issuer: string) {
  return {
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    jwks_uri: `${issuer}/jwks`,
    end_session_endpoint: `${issuer}/logout`,
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256', 'HS256', 'none'],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: ['client_secret_basic'],
  };
}

function sign(claims: Record<string, unknown>, key: CryptoKey): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: FAKE_KID, typ: 'JWT' }).sign(key);
}
