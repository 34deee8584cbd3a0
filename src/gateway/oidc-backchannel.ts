import { createRemoteJWKSet, decodeJwt, jwtVerify, type JWTPayload } from 'jose';
import { SessionGateError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { SessionEngine } from '../session/engine.js';
import { providerTags, tagDigest } from './oidc-tags.js';

/** An OpenID provider the gateway signs users in with (a builtin `oidc` plugin's settings). */
export interface OidcProvider {
  plugin: string;
  issuer: string;
  clientId: string;
  /** Allowed signature algorithms of its logout tokens (asymmetric only). */
  algorithms: string[];
  clockSkewSeconds: number;
  timeoutMs: number;
}

const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** How long a logout token's `jti` is remembered (replays refused): its lifetime is short. */
const REPLAY_WINDOW_MS = 10 * 60 * 1000;

/** A refused logout token: the one line the provider gets back (400). */
export class LogoutTokenRefused extends SessionGateError {
  constructor(message: string) {
    super('SG_ERR_LOGOUT_TOKEN_INVALID', message);
  }
}

/**
 * OpenID Connect Back-Channel Logout 1.0: the provider POSTs a `logout_token` (a JWT it signs)
 * and every session of that provider session (`sid`) or user (`sub`) ends, in the shared store,
 * so on every gateway process and worker; each close goes through the close pipeline
 * (session_ended once). The token is checked as §2.6 asks: signature with the provider's keys
 * (asymmetric algorithms only), `iss`, `aud` (our client id), `iat`, the logout event, `sid`
 * and/or `sub`, no `nonce`, and a `jti` never seen before (remembered in the store).
 *
 * @example
 * ```ts
 * const bcl = new BackchannelLogout(providers, engine, logger);
 * const closed = await bcl.logout(form.get('logout_token') ?? '');
 * ```
 */
export class BackchannelLogout {
  private readonly keys = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

  constructor(
    private readonly providers: readonly OidcProvider[],
    private readonly engine: SessionEngine,
    private readonly logger: Logger,
  ) {}

  get enabled(): boolean {
    return this.providers.length > 0;
  }

  /** Validate the token and close its sessions; returns how many closed. */
  async logout(token: string): Promise<number> {
    const provider = this.providerOf(token);
    const payload = await this.verify(provider, token);
    const events = payload.events as Record<string, unknown> | undefined;
    if (!events || typeof events !== 'object' || typeof events[LOGOUT_EVENT] !== 'object') {
      throw new LogoutTokenRefused('the token has no back-channel logout event');
    }
    if ('nonce' in payload) throw new LogoutTokenRefused('a logout token must not have a nonce');
    const sid = typeof payload.sid === 'string' ? payload.sid : undefined;
    const sub = typeof payload.sub === 'string' ? payload.sub : undefined;
    if (!sid && !sub) throw new LogoutTokenRefused('the token names neither sid nor sub');
    if (typeof payload.jti !== 'string' || payload.jti === '')
      throw new LogoutTokenRefused('the token has no jti');
    await this.refuseReplay(provider, payload.jti);
    // sid when given (that provider session only), else every session of the user.
    const [tag] = providerTags(provider.issuer, sid ? { sid } : { sub: sub! });
    const closed = await this.engine.closeByTag(tag!, 'logout');
    this.logger.info({ plugin: provider.plugin, closed, by: sid ? 'sid' : 'sub' }, 'back-channel logout');
    return closed;
  }

  private providerOf(token: string): OidcProvider {
    let iss: unknown;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      throw new LogoutTokenRefused('the logout token is not a JWT');
    }
    const provider = this.providers.find((p) => p.issuer === iss);
    if (!provider) throw new LogoutTokenRefused('the token is not from a configured identity provider');
    return provider;
  }

  private async verify(provider: OidcProvider, token: string): Promise<JWTPayload> {
    try {
      const { payload } = await jwtVerify(token, await this.jwks(provider), {
        issuer: provider.issuer,
        audience: provider.clientId,
        algorithms: provider.algorithms,
        clockTolerance: provider.clockSkewSeconds,
        requiredClaims: ['iat'],
        maxTokenAge: '10m',
      });
      return payload;
    } catch (err) {
      if (err instanceof LogoutTokenRefused) throw err;
      throw new LogoutTokenRefused(
        `the logout token does not verify (${(err as { code?: string }).code ?? 'invalid'})`,
      );
    }
  }

  /** The provider's key set, from its discovery document (fetched once; jose refetches on a new kid). */
  private async jwks(provider: OidcProvider): Promise<ReturnType<typeof createRemoteJWKSet>> {
    const known = this.keys.get(provider.issuer);
    if (known) return known;
    const set = await discoverKeySet(provider);
    if (!set) throw new LogoutTokenRefused('the identity provider did not answer');
    this.keys.set(provider.issuer, set);
    return set;
  }

  /** A `jti` counted once in the store's counters: a second count is a replay. */
  private async refuseReplay(provider: OidcProvider, jti: string): Promise<void> {
    const key = `bcl-jti:${tagDigest(provider.issuer, jti)}`;
    const seen = await this.engine.store.countFailure(key, REPLAY_WINDOW_MS, this.engine.clock.now());
    if (seen.count > 1) throw new LogoutTokenRefused('this logout token was used before');
  }
}

/**
 * The provider's key set, from the `jwks_uri` of its discovery document; undefined when the
 * provider did not answer (nothing cached: the next token asks again).
 *
 * @example
 * ```ts
 * const keys = await discoverKeySet({ issuer, timeoutMs: 10_000 });
 * if (keys) await jwtVerify(token, keys, { issuer });
 * ```
 */
export async function discoverKeySet(
  provider: Pick<OidcProvider, 'issuer' | 'timeoutMs'>,
): Promise<ReturnType<typeof createRemoteJWKSet> | undefined> {
  const url = `${provider.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  const res = await fetch(url, { signal: AbortSignal.timeout(provider.timeoutMs) }).catch(() => undefined);
  const doc = res?.ok
    ? ((await res.json().catch(() => undefined)) as { jwks_uri?: unknown } | undefined)
    : undefined;
  if (typeof doc?.jwks_uri !== 'string' || !URL.canParse(doc.jwks_uri)) return undefined;
  return createRemoteJWKSet(new URL(doc.jwks_uri), { timeoutDuration: provider.timeoutMs });
}
