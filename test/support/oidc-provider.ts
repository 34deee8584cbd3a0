/**
 * A real OpenID Provider for the tests: `oidc-provider` (node-oidc-provider, a certified OP)
 * in this process on a free loopback port, its issuer `http://127.0.0.1:PORT`. It has one
 * confidential client (`client_secret_basic`/`client_secret_post`) with the redirect URI the
 * test gives (and, given a public key, a second one using `private_key_jwt`), and two users:
 * - `alice`: alice@example.org (verified), `hd` example.org, groups [dev], team platform;
 * - `bob`: bob@other.example (not verified), no groups.
 * Claims go into the ID token (`conformIdTokenClaims: false`), with `sid` (back-channel logout
 * is on, the client requires sessions). Consent is granted without asking (first-party client).
 *
 * The login pages are a minimal interaction handler driven by plain `fetch`:
 * `provider.signIn(authorizationUrl, 'alice')` follows the redirects, posts the login and
 * returns the query string of the final redirect to the client (`code=...&state=...&iss=...`);
 * `signIn(url, null)` aborts instead (`error=access_denied`). Cookies are carried by hand.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Provider } from 'oidc-provider';

/** The claims of a user of the test provider (released with the scopes openid, profile, email). */
export type TestUserClaims = Record<string, unknown>;

export const TEST_USERS: Record<string, TestUserClaims> = {
  alice: {
    email: 'alice@example.org',
    email_verified: true,
    hd: 'example.org',
    name: 'Alice Example',
    preferred_username: 'alice',
    groups: ['dev'],
    team: 'platform',
  },
  bob: {
    email: 'bob@other.example',
    email_verified: false,
    name: 'Bob Other',
    preferred_username: 'bob',
  },
};

export interface TestProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Follow an authorization URL through the login as `user` (null: abort); the callback's query. */
  signIn(authorizationUrl: string, user: string | null): Promise<string>;
  /** Send the client's back-channel logout token for this user and provider session (as the
   * provider does when that session ends); rejects unless the client answers 200. */
  backchannelLogout(sub: string, sid: string): Promise<void>;
  /** How many refresh grants the token endpoint has answered. */
  refreshGrants(): number;
  /** Revoke a token at the revocation endpoint (RFC 7009), as an admin or the user would. */
  revoke(token: string, hint?: 'refresh_token' | 'access_token'): Promise<void>;
  stop(): Promise<void>;
}

export interface TestProviderOptions {
  redirectUri: string;
  postLogoutRedirectUri?: string;
  users?: Record<string, TestUserClaims>;
  /** A second client, `sessiongate-jwt`, authenticating with private_key_jwt and this public JWK. */
  privateKeyJwtPublicKey?: Record<string, unknown>;
  /**
   * An API (a resource server, RFC 8707): access tokens become JWTs (RFC 9068) with this
   * audience, granted its scope when the client asks for it. Default: opaque access tokens.
   */
  api?: { audience: string; scope: string; format?: 'jwt' | 'opaque' };
}

/**
 * Start the provider; `stop()` closes it.
 *
 * @example
 * ```ts
 * const op = await startOidcProvider({ redirectUri: 'https://gw.example/sg/oidc/callback' });
 * const query = await op.signIn(authorizationUrl, 'alice'); // 'code=...&state=...&iss=...'
 * await op.stop();
 * ```
 */
export async function startOidcProvider(options: TestProviderOptions): Promise<TestProvider> {
  const users = options.users ?? TEST_USERS;
  const clientId = 'sessiongate';
  const clientSecret = randomBytes(24).toString('base64url');
  let handle: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end();
  const server = createServer((req, res) => handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const common = {
    redirect_uris: [options.redirectUri],
    post_logout_redirect_uris: options.postLogoutRedirectUri ? [options.postLogoutRedirectUri] : [],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    backchannel_logout_uri: new URL('/sg/oidc/backchannel-logout', options.redirectUri).href,
    backchannel_logout_session_required: true,
  };
  const jwtClient = options.privateKeyJwtPublicKey && {
    ...common,
    client_id: `${clientId}-jwt`,
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: { keys: [options.privateKeyJwtPublicKey] },
  };
  const provider = new Provider(issuer, {
    clients: [
      { ...common, client_id: clientId, client_secret: clientSecret },
      ...(jwtClient ? [jwtClient] : []),
    ],
    findAccount: (_ctx: unknown, id: string) => {
      const claims = users[id];
      if (!claims) return undefined;
      return { accountId: id, claims: () => ({ sub: id, ...claims }) };
    },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username', 'groups', 'hd', 'team'],
    },
    conformIdTokenClaims: false,
    ttl: {
      AccessToken: 600,
      AuthorizationCode: 60,
      Grant: 3600,
      IdToken: 600,
      Interaction: 600,
      Session: 3600,
      RefreshToken: 86_400,
    },
    loadExistingGrant: (ctx: GrantContext) => grantEverything(ctx, options.api),
    // Every sign-in gets a refresh token (without asking for offline_access), as many providers do.
    issueRefreshToken: () => true,
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      ...(options.api ? { resourceIndicators: jwtAccessTokens(options.api) } : {}),
    },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    // The provider refuses to post to special-use addresses (SSRF protection); the gateway
    // under test is on loopback.
    fetch: (url: string, init: RequestInit & { dispatcher?: unknown }) => {
      const { dispatcher: _ssrfGuard, ...rest } = init;
      return globalThis.fetch(url, rest);
    },
    jwks: { keys: [signingKey()] },
  });
  let refreshGrants = 0;
  provider.on('grant.success', (ctx: unknown) => {
    const params = (ctx as { oidc: { params?: { grant_type?: unknown } } }).oidc.params;
    if (params?.grant_type === 'refresh_token') refreshGrants++;
  });
  const providerHandler = provider.callback();
  handle = (req, res) => {
    if (req.url?.startsWith('/interaction/')) {
      interaction(provider, req, res).catch((err: Error) => {
        res.statusCode = 500;
        res.end(err.message);
      });
    } else providerHandler(req, res);
  };

  return {
    issuer,
    clientId,
    clientSecret,
    signIn: (url, user) => signIn(url, user, options.redirectUri),
    backchannelLogout: async (sub, sid) => {
      const clients = (provider as unknown as { Client: { find(id: string): Promise<unknown> } }).Client;
      const client = (await clients.find(clientId)) as {
        backchannelLogout(sub: string, sid: string): Promise<void>;
      };
      await client.backchannelLogout(sub, sid);
    },
    refreshGrants: () => refreshGrants,
    revoke: async (token, hint = 'refresh_token') => {
      const res = await fetch(`${issuer}/token/revocation`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ token, token_type_hint: hint }),
      });
      if (res.status !== 200) throw new Error(`revocation answered ${res.status}: ${await res.text()}`);
    },
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function signingKey(): Record<string, unknown> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', alg: 'RS256', use: 'sig' };
}

interface GrantContext {
  oidc: {
    client: { clientId: string };
    session: { accountId: string; grantIdFor(clientId: string): string | undefined };
    result?: { consent?: { grantId?: string } };
    provider: {
      Grant: {
        new (init: { clientId: string; accountId: string }): {
          addOIDCScope(scope: string): void;
          addResourceScope(resource: string, scope: string): void;
          save(): Promise<string>;
        };
        find(id: string): Promise<unknown>;
      };
    };
  };
}

/** The resource indicators feature: every token is for the API, as a JWT (or an opaque one). */
function jwtAccessTokens(api: {
  audience: string;
  scope: string;
  format?: 'jwt' | 'opaque';
}): Record<string, unknown> {
  return {
    enabled: true,
    defaultResource: () => api.audience,
    useGrantedResource: () => true,
    getResourceServerInfo: () => ({
      scope: api.scope,
      audience: api.audience,
      accessTokenFormat: api.format ?? 'jwt',
      ...(api.format === 'opaque' ? {} : { jwt: { sign: { alg: 'RS256' } } }),
    }),
  };
}

/** A first-party client: every scope is granted without a consent page. */
async function grantEverything(
  ctx: GrantContext,
  api?: { audience: string; scope: string },
): Promise<unknown> {
  const { client, session, result, provider } = ctx.oidc;
  const existing = result?.consent?.grantId ?? session.grantIdFor(client.clientId);
  if (existing) return provider.Grant.find(existing);
  const grant = new provider.Grant({ clientId: client.clientId, accountId: session.accountId });
  grant.addOIDCScope('openid profile email');
  if (api) grant.addResourceScope(api.audience, api.scope);
  await grant.save();
  return grant;
}

/** GET /interaction/UID: the prompt's name; POST /interaction/UID/login or /abort finishes it. */
async function interaction(provider: Provider, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET' && /text\/html/.test(req.headers.accept ?? '')) {
    // A browser (the Chromium tests): a plain login form.
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(
      `<!doctype html><title>Test provider</title><h1>Test provider sign-in</h1>` +
        `<form method="post" action="/interaction/${details.uid}/login">` +
        `<label>User <input name="login" autofocus></label> <button type="submit">Sign in</button></form>`,
    );
    return;
  }
  if (req.method === 'GET') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ uid: details.uid, prompt: details.prompt.name }));
    return;
  }
  if (req.url?.endsWith('/abort')) {
    const result = { error: 'access_denied', error_description: 'End-User aborted interaction' };
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
    return;
  }
  const form = new URLSearchParams(await body(req));
  const accountId = form.get('login') ?? '';
  await provider.interactionFinished(req, res, { login: { accountId } }, { mergeWithLastSubmission: false });
}

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Follow redirects by hand (cookies included) until the provider sends the browser to the client. */
async function signIn(authorizationUrl: string, user: string | null, redirectUri: string): Promise<string> {
  const jar = new Map<string, string>();
  let url = authorizationUrl;
  let post: string | undefined;
  for (let hop = 0; hop < 12; hop++) {
    const res = await fetch(url, {
      method: post === undefined ? 'GET' : 'POST',
      redirect: 'manual',
      headers: {
        cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '),
        ...(post === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }),
      },
      ...(post === undefined ? {} : { body: post }),
    });
    keepCookies(jar, res.headers.getSetCookie());
    const location = res.headers.get('location');
    post = undefined;
    if (location === null) {
      const text = await res.text();
      if (res.status !== 200 || !new URL(url).pathname.startsWith('/interaction/')) {
        throw new Error(`the provider answered ${res.status} at ${url}: ${text.slice(0, 300)}`);
      }
      url = `${url}/${user === null ? 'abort' : 'login'}`;
      post = new URLSearchParams({ login: user ?? '' }).toString();
      continue;
    }
    await res.arrayBuffer();
    const next = new URL(location, url);
    if (next.href.startsWith(`${redirectUri}?`)) return next.search.slice(1);
    url = next.href;
  }
  throw new Error('too many redirects in the sign-in');
}

function keepCookies(jar: Map<string, string>, setCookies: string[]): void {
  for (const line of setCookies) {
    const [pair = '', ...attributes] = line.split(';');
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    const expired = attributes.some((a) => /^\s*expires=Thu, 01 Jan 1970/i.test(a));
    if (value === '' || expired) jar.delete(name);
    else jar.set(name, value);
  }
}

/**
 * The config lines of a gateway `plugins:` entry named `sso` for this provider (built-in `oidc`,
 * loopback http allowed, the client secret in `./oidc-secret` unless `config` says otherwise),
 * with `config`'s further settings.
 *
 * @example
 * ```ts
 * const yaml = `plugins:\n${ssoPlugin(op, { redirect_uri: REDIRECT })}profiles: ...`;
 * ```
 */
export function ssoPlugin(op: TestProvider, config: Record<string, unknown>): string {
  const settings = {
    issuer: op.issuer,
    client_id: op.clientId,
    ...(config.client_secret_env ? {} : { client_secret_file: './oidc-secret' }),
    allow_insecure_http: true,
    ...config,
  };
  return `  - { name: sso, runtime: builtin, type: oidc, timeout_ms: 15000, config: ${JSON.stringify(settings)} }\n`;
}
