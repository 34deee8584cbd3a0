import { createHash, timingSafeEqual } from 'node:crypto';
import * as client from 'openid-client';
import type { JsonObject } from '../../core/session-types.js';
import { definePlugin, type AaHookResult, type AaPlugin } from '../define.js';
import { parsePluginConfig } from './config.js';
import type { BuiltinEnvironment } from './environment.js';
import { acceptResult, checkClaims, printable, Refusal, type Tokens } from './oidc-claims.js';
import { isNetworkFailure, providerConnection, unreachable, withDeadline } from './oidc-client.js';
import { clientAuth, oidcConfigSchema, readClientCredentials } from './oidc-config.js';

/** The key of the NEEDINFO question; the callback's query string comes back under it. */
export const OIDC_CALLBACK_KEY = 'oidc_callback';

/** A sign-in in progress, kept in the plugin's cookie between the redirect and the callback. */
interface Flow {
  state: string;
  nonce: string;
  code_verifier: string;
  started_at: number;
}

const FLOW_KEYS = ['state', 'nonce', 'code_verifier', 'started_at'];

function flowOf(cookie: JsonObject): Flow | undefined {
  const { state, nonce, code_verifier, started_at } = cookie;
  if (typeof state !== 'string' || typeof nonce !== 'string' || typeof code_verifier !== 'string') return;
  if (typeof started_at !== 'number') return;
  return { state, nonce, code_verifier, started_at };
}

/** The cookie without the flow: a callback is good for one try, whatever its outcome. */
function withoutFlow(cookie: JsonObject): JsonObject {
  return Object.fromEntries(Object.entries(cookie).filter(([k]) => !FLOW_KEYS.includes(k)));
}

/** Compare two texts in time independent of where they differ (hashes: equal lengths). */
function sameText(a: string, b: string): boolean {
  const digest = (v: string) => createHash('sha256').update(v, 'utf8').digest();
  return timingSafeEqual(digest(a), digest(b));
}

/** Any failure as a refusal: what failed (for the log) and one line for the user, no secrets. */
function asRefusal(err: unknown, issuer: string): Refusal {
  if (err instanceof Refusal) return err;
  if (isNetworkFailure(err)) return unreachable(issuer);
  if (err instanceof client.ResponseBodyError) {
    return new Refusal(
      'token_endpoint',
      `the identity provider refused the sign-in code (${printable(err.error)})`,
    );
  }
  // openid-client's ClientError says "unexpected JWT claim value encountered"; its cause
  // (oauth4webapi) names the claim. Both are fixed texts: the token itself is in other fields.
  const inner = err instanceof client.ClientError && err.cause instanceof Error ? err.cause : err;
  const message = inner instanceof Error ? inner.message : String(inner);
  return new Refusal('token_response', `the sign-in answer was refused: ${printable(message, 160)}`);
}

/** The ID token's `alg` header (openid-client has checked the token's form). */
function algOf(idToken: string): string {
  const header = JSON.parse(Buffer.from(idToken.split('.')[0] ?? '', 'base64url').toString('utf8')) as {
    alg?: unknown;
  };
  return String(header.alg);
}

/**
 * `oidc` (aa): single sign-on with an OpenID Connect provider (authorization code flow with
 * PKCE S256, state and nonce; openid-client validates the ID token as OIDC Core 3.1.3.7 asks,
 * signature included). docs/plugins.md describes the settings.
 *
 * authenticate, without `key_value_pairs.oidc_callback`: NEEDINFO whose question carries the
 * provider's authorization URL as `redirect`; state, nonce, PKCE verifier and the start time go
 * into the cookie. With it (the callback's query string): the state must match (one try per
 * sign-in), the flow be younger than `max_flow_seconds`, the code redeem and the ID token pass
 * every check; then ACCEPT with the user, groups and `session.oauth.*` variables. Anything else
 * is DENY with one line, and a warning naming the check that failed.
 *
 * authorize: ACCEPT when this plugin signed the user in in this session.
 *
 * @example
 * ```yaml
 * - name: sso
 *   runtime: builtin
 *   type: oidc
 *   config:
 *     issuer: https://login.example.org
 *     client_id: sessiongate
 *     client_secret_file: ./oidc-secret
 *     redirect_uri: https://gw.example.org/sg/oidc/callback
 *     email_domains: [example.org]
 * ```
 */
export function oidc(config: Record<string, unknown>, env: BuiltinEnvironment): AaPlugin {
  const s = parsePluginConfig(oidcConfigSchema, config, env);
  const credentials = readClientCredentials(s, env);
  const provider = providerConnection(s, () => clientAuth(s, credentials));
  const now = (): number => env.clock?.now() ?? Date.now();
  const prompt = `Sign in with ${s.display_name ?? new URL(s.issuer).host}`;

  async function start(): Promise<AaHookResult> {
    const cfg = await withDeadline(provider(), s.timeout_ms, s.issuer);
    const flow: Flow = {
      state: client.randomState(),
      nonce: client.randomNonce(),
      code_verifier: client.randomPKCECodeVerifier(),
      started_at: now(),
    };
    const url = client.buildAuthorizationUrl(cfg, {
      redirect_uri: s.redirect_uri,
      scope: s.scopes.join(' '),
      state: flow.state,
      nonce: flow.nonce,
      code_challenge: await client.calculatePKCECodeChallenge(flow.code_verifier),
      code_challenge_method: 'S256',
    });
    return {
      verdict: 'NEEDINFO',
      question: { key: OIDC_CALLBACK_KEY, prompt, redirect: url.href },
      cookie: { ...flow },
    };
  }

  async function finish(query: string, cookie: JsonObject): Promise<AaHookResult> {
    const flow = flowOf(cookie);
    if (flow === undefined) throw new Refusal('state', 'no sign-in is in progress (a callback used twice?)');
    const params = new URLSearchParams(query);
    const state = params.get('state');
    if (state === null || !sameText(state, flow.state)) {
      throw new Refusal('state', 'the sign-in answer does not belong to this sign-in (state)');
    }
    if (now() - flow.started_at > s.max_flow_seconds * 1000) {
      throw new Refusal('max_flow_seconds', `the sign-in took longer than ${s.max_flow_seconds} s`);
    }
    const error = params.get('error');
    if (error !== null) {
      const said = params.get('error_description');
      const detail = said === null ? '' : `: ${printable(said, 160)}`;
      throw new Refusal(
        'provider_error',
        `the identity provider refused the sign-in (${printable(error)})${detail}`,
      );
    }
    const tokens = await withDeadline(redeem(params, flow), s.timeout_ms, s.issuer);
    checkClaims(s, algOf(tokens.idToken), tokens.claims);
    // Where /sg/logout sends the browser to end the provider's session too (RP-initiated logout).
    const endSession = (await provider()).serverMetadata().end_session_endpoint;
    return acceptResult(s, env.name, tokens, endSession);
  }

  async function redeem(params: URLSearchParams, flow: Flow): Promise<Tokens> {
    const cfg = await provider();
    const current = new URL(s.redirect_uri);
    current.search = params.toString();
    const got = await client.authorizationCodeGrant(cfg, current, {
      expectedState: flow.state,
      expectedNonce: flow.nonce,
      pkceCodeVerifier: flow.code_verifier,
      idTokenExpected: true,
    });
    const claims = got.claims();
    if (claims === undefined || got.id_token === undefined) throw new Refusal('id_token', 'no ID token');
    const expiresIn = got.expiresIn();
    return {
      claims: { ...claims },
      idToken: got.id_token,
      accessToken: got.access_token,
      ...(got.refresh_token === undefined ? {} : { refreshToken: got.refresh_token }),
      ...(expiresIn === undefined ? {} : { expiresAt: Math.floor(now() / 1000) + expiresIn }),
    };
  }

  return definePlugin({
    kind: 'aa',
    async authenticate({ sessionId, keyValuePairs, cookie }): Promise<AaHookResult> {
      const query = keyValuePairs?.[OIDC_CALLBACK_KEY];
      try {
        if (query === undefined) return await start();
        const out = await finish(query, cookie);
        env.logger.info({ plugin: env.name, sessionId, sub: out.cookie?.sub }, 'oidc sign-in accepted');
        return out;
      } catch (err) {
        const refusal = asRefusal(err, s.issuer);
        env.logger.warn(
          { plugin: env.name, sessionId, check: refusal.check, reason: refusal.reason },
          'oidc sign-in refused',
        );
        return { verdict: 'DENY', reason: refusal.reason, cookie: withoutFlow(cookie) };
      }
    },

    authorize({ cookie }): AaHookResult {
      if (typeof cookie.sub === 'string') return { verdict: 'ACCEPT' };
      return { verdict: 'DENY', reason: 'No single sign-on in this session' };
    },

    sessionEnded() {},
  });
}
