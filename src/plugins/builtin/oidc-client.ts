import * as client from 'openid-client';
import { SessionGateError } from '../../core/errors.js';
import { printable, Refusal } from './oidc-claims.js';
import { parsePluginConfig } from './config.js';
import type { BuiltinEnvironment } from './environment.js';
import {
  clientAuth,
  oidcConfigSchema,
  readClientCredentials,
  requestOptions,
  type OidcSettings,
} from './oidc-config.js';

/** Fail with "did not answer" after `ms`; openid-client's own timeout bounds each request too. */
export async function withDeadline<T>(work: Promise<T>, ms: number, issuer: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(unreachable(issuer)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The refusal for a provider that does not answer (network, timeout). */
export function unreachable(issuer: string): Refusal {
  return new Refusal('provider', `the identity provider ${issuer} did not answer`);
}

const NETWORK_CODES =
  /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|UND_ERR_)/;

/** Whether an error (or its causes) is the provider not answering: network, timeout, abort. */
export function isNetworkFailure(err: unknown): boolean {
  if (err instanceof Refusal) return err.check === 'provider';
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (e.name === 'TimeoutError' || e.name === 'AbortError') return true;
    if (typeof code === 'string' && NETWORK_CODES.test(code)) return true;
    if (e instanceof TypeError && e.message === 'fetch failed') return true;
  }
  return false;
}

/**
 * The provider's metadata and the client, found once (discovery) and kept; a failure is
 * forgotten so that the next call tries again.
 */
export function providerConnection(
  s: OidcSettings,
  auth: () => Promise<client.ClientAuth>,
): () => Promise<client.Configuration> {
  let found: Promise<client.Configuration> | undefined;
  const metadata: Partial<client.ClientMetadata> = { [client.clockTolerance]: s.clock_skew_seconds };
  if (s.id_token_algorithms.length === 1) metadata.id_token_signed_response_alg = s.id_token_algorithms[0];
  return (): Promise<client.Configuration> => {
    found ??= auth()
      .then((a) => client.discovery(new URL(s.issuer), s.client_id, metadata, a, requestOptions(s)))
      .catch((err: unknown) => {
        found = undefined;
        if (isNetworkFailure(err)) throw err;
        const why = err instanceof Error ? err.message : String(err);
        throw new Refusal(
          'discovery',
          `the identity provider ${s.issuer} has no usable OpenID configuration (${printable(why)})`,
        );
      });
    return found;
  };
}

/** What a refresh gave: a new access token, and whatever else the provider sent with it. */
export interface RefreshedTokens {
  accessToken: string;
  /** A rotated refresh token; undefined: the old one stays good. */
  refreshToken?: string;
  idToken?: string;
  /** Seconds since the epoch. */
  expiresAt?: number;
}

/** Why a refresh failed: the provider refused it (the sign-in is over) or did not answer. */
export class RefreshFailed extends SessionGateError {
  constructor(
    readonly kind: 'refused' | 'unreachable',
    message: string,
  ) {
    super('SG_ERR_TOKEN_REFRESH_FAILED', message);
  }
}

/**
 * The token endpoint's refresh grant for one `oidc` plugin's provider (RFC 6749 §6), with the
 * plugin's client authentication. A refreshed ID token is checked as at sign-in by
 * openid-client, and must name the same user (OIDC Core §12.2). Throws RefreshFailed.
 *
 * @example
 * ```ts
 * const refresh = tokenRefresher(plugin.config, { baseDir, keyring, logger, name: 'sso' });
 * const got = await refresh(refreshToken, 'alice', Date.now());
 * ```
 */
export function tokenRefresher(
  config: Record<string, unknown>,
  env: BuiltinEnvironment,
): (refreshToken: string, sub: string | undefined, now: number) => Promise<RefreshedTokens> {
  const s = parsePluginConfig(oidcConfigSchema, config, env);
  const credentials = readClientCredentials(s, env);
  const provider = providerConnection(s, () => clientAuth(s, credentials));
  return async (refreshToken, sub, now) => {
    try {
      const got = await withDeadline(
        provider().then((cfg) => client.refreshTokenGrant(cfg, refreshToken)),
        s.timeout_ms,
        s.issuer,
      );
      const claims = got.claims();
      if (claims !== undefined && sub !== undefined && claims.sub !== sub) {
        throw new RefreshFailed('refused', 'the refreshed ID token names another user');
      }
      const expiresIn = got.expiresIn();
      return {
        accessToken: got.access_token,
        ...(got.refresh_token === undefined ? {} : { refreshToken: got.refresh_token }),
        ...(got.id_token === undefined ? {} : { idToken: got.id_token }),
        ...(expiresIn === undefined ? {} : { expiresAt: Math.floor(now / 1000) + expiresIn }),
      };
    } catch (err) {
      throw asRefreshFailure(err, s.issuer);
    }
  };
}

function asRefreshFailure(err: unknown, issuer: string): RefreshFailed {
  if (err instanceof RefreshFailed) return err;
  if (isNetworkFailure(err)) return new RefreshFailed('unreachable', `${issuer} did not answer`);
  if (err instanceof client.ResponseBodyError) {
    return new RefreshFailed('refused', `the provider refused the refresh (${printable(err.error)})`);
  }
  const inner = err instanceof client.ClientError && err.cause instanceof Error ? err.cause : err;
  const message = inner instanceof Error ? inner.message : String(inner);
  return new RefreshFailed('refused', `the refresh answer was refused: ${printable(message, 160)}`);
}

/** An introspection answer (RFC 7662 §2.2): `active` and the token's claims. */
export type Introspection = Record<string, unknown> & { active: boolean };

/**
 * Token introspection (RFC 7662) at one `oidc` plugin's provider, with the plugin's client
 * authentication: for opaque access tokens, and for tokens the provider can revoke before they
 * expire. Rejects with RefreshFailed('unreachable') when the provider does not answer, and
 * ('refused') when it has no introspection endpoint or refuses the client.
 *
 * @example
 * ```ts
 * const introspect = tokenIntrospector(plugin.config, { baseDir, keyring, logger, name: 'sso' });
 * const { active, sub, aud } = await introspect(token);
 * ```
 */
export function tokenIntrospector(
  config: Record<string, unknown>,
  env: BuiltinEnvironment,
): (token: string) => Promise<Introspection> {
  const s = parsePluginConfig(oidcConfigSchema, config, env);
  const credentials = readClientCredentials(s, env);
  const provider = providerConnection(s, () => clientAuth(s, credentials));
  return async (token) => {
    try {
      const got = await withDeadline(
        provider().then((cfg) => client.tokenIntrospection(cfg, token)),
        s.timeout_ms,
        s.issuer,
      );
      return { ...got };
    } catch (err) {
      if (isNetworkFailure(err)) throw new RefreshFailed('unreachable', `${s.issuer} did not answer`);
      const message = err instanceof Error ? err.message : String(err);
      throw new RefreshFailed('refused', `the token introspection failed: ${printable(message, 160)}`);
    }
  };
}
