import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { jwtVerify, type JWTPayload } from 'jose';
import { noAudit, type AuditSink } from '../core/audit.js';
import { SessionGateError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { SessionRecord } from '../core/session-types.js';
import type { SessionEngine } from '../session/engine.js';
import { discoverKeySet, type OidcProvider } from './oidc-backchannel.js';
import type { ActiveRoute } from './router.js';
import { RefreshFailed, type Introspection } from '../plugins/builtin/oidc-client.js';

/** An `oidc` plugin's provider as the bearer check needs it: its claims for the user and groups. */
export interface BearerProvider extends OidcProvider {
  userClaim: string;
  groupsClaim: string;
}

/** A refused bearer token: 401 with `WWW-Authenticate: Bearer error="invalid_token"`. */
export class BearerTokenRefused extends SessionGateError {
  constructor(message: string) {
    super('SG_ERR_BEARER_TOKEN_INVALID', message);
  }
}

type KeySet = NonNullable<Awaited<ReturnType<typeof discoverKeySet>>>;

/** One provider's token introspection (an `oidc` plugin's `tokenIntrospector`). */
export type Introspector = (token: string) => Promise<Introspection>;

/** An introspected token's session asks the provider again after this long (revocations). */
const INTROSPECT_EVERY_MS = 60_000;
const INTROSPECTED_AT = 'session.oauth.introspected_at';

/**
 * The bearer token of a request, if it sends one (`Authorization: Bearer <token>`).
 *
 * @example
 * ```ts
 * bearerToken(req); // 'eyJ…' for "Authorization: Bearer eyJ…"
 * ```
 */
export function bearerToken(req: IncomingMessage): string | undefined {
  const m = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(req.headers.authorization ?? '');
  return m?.[1];
}

/**
 * API clients on routes with `bearer` (docs/oidc.md, "API clients with a bearer token"): a JWT
 * access token of the route's OpenID provider stands in for a session cookie. It is verified
 * (provider's keys, asymmetric algorithms, `iss`, `aud`, `exp`/`nbf`, scopes) and then finds
 * or makes the one `allow` session of that token, tagged `bearer:<sha256, 40 hex>` in the
 * store: the token itself is never stored nor logged.
 *
 * @example
 * ```ts
 * const bearer = new BearerTokens(providers, engine, logger);
 * const session = await bearer.session(route, token, clientIp); // throws BearerTokenRefused
 * ```
 */
export class BearerTokens {
  private readonly keys = new Map<string, KeySet>();
  /** Sessions being made, by tag: concurrent first requests of one token share one session. */
  private readonly making = new Map<string, Promise<SessionRecord>>();

  constructor(
    private readonly providers: readonly BearerProvider[],
    private readonly engine: SessionEngine,
    private readonly logger: Logger,
    private readonly audit: AuditSink = noAudit,
    private readonly introspectors: ReadonlyMap<string, Introspector> = new Map(),
  ) {}

  /** The allowed session of this token on `route` (which has `bearer`); throws BearerTokenRefused. */
  async session(route: ActiveRoute, token: string, clientIp: string): Promise<SessionRecord> {
    const settings = route.config.bearer!;
    const provider = this.providers.find((p) => p.plugin === settings.plugin);
    if (!provider) throw new BearerTokenRefused('the route has no identity provider');
    const tag = `bearer:${createHash('sha256').update(token).digest('hex').slice(0, 40)}`;
    let claims: JWTPayload;
    if (settings.introspect) {
      const recent = await this.recentlyIntrospected(route, tag);
      if (recent) return recent;
      claims = await this.introspected(provider, token, settings.audience, tag);
    } else {
      claims = await this.verify(provider, token, settings.audience);
    }
    const granted = scopesOf(claims);
    const missing = settings.required_scopes.filter((s) => !granted.includes(s));
    if (missing.length > 0) throw new BearerTokenRefused(`the token lacks the scope ${missing.join(' ')}`);
    const pending = this.making.get(tag);
    if (pending) return pending;
    const made = this.findOrCreate(route, provider, claims, tag, clientIp, settings.introspect);
    this.making.set(tag, made);
    try {
      return await made;
    } finally {
      this.making.delete(tag);
    }
  }

  private async verify(provider: BearerProvider, token: string, audience: string): Promise<JWTPayload> {
    const keys = await this.jwks(provider);
    try {
      const { payload } = await jwtVerify(token, keys, {
        issuer: provider.issuer,
        audience,
        algorithms: provider.algorithms,
        clockTolerance: provider.clockSkewSeconds,
        currentDate: new Date(this.engine.clock.now()),
        requiredClaims: ['exp', 'sub'],
      });
      if (typeof payload.sub !== 'string' || payload.sub === '')
        throw new BearerTokenRefused('the token has no sub');
      return payload;
    } catch (err) {
      if (err instanceof BearerTokenRefused) throw err;
      const { code = 'invalid', claim } = err as { code?: string; claim?: string };
      // The claim jose names (aud, iss, exp, nbf) says what to fix; never the token's values.
      const what = claim ? `its ${claim} claim is not accepted` : code;
      throw new BearerTokenRefused(`the token does not verify (${what})`);
    }
  }

  /** A session of this token whose introspection is younger than INTROSPECT_EVERY_MS. */
  private async recentlyIntrospected(route: ActiveRoute, tag: string): Promise<SessionRecord | undefined> {
    const now = this.engine.clock.now();
    for (const id of await this.engine.findByTag(tag)) {
      const s = await this.engine.get(id);
      const at = Number(s?.variables[INTROSPECTED_AT] ?? 0);
      if (s?.state === 'allow' && s.profile === route.profileName && now - at < INTROSPECT_EVERY_MS) return s;
    }
    return undefined;
  }

  /**
   * The provider's word on the token (RFC 7662), checked as a JWT's claims would be: active,
   * `iss` (when given), `aud` containing the route's audience, `sub`, `exp` not passed. A token
   * the provider calls inactive ends the sessions it had (revoked before its expiry).
   */
  private async introspected(
    provider: BearerProvider,
    token: string,
    audience: string,
    tag: string,
  ): Promise<JWTPayload> {
    const introspect = this.introspectors.get(provider.plugin);
    if (!introspect) throw new BearerTokenRefused('the identity provider cannot introspect tokens');
    let got: Introspection;
    try {
      got = await introspect(token);
    } catch (err) {
      const unreachable = err instanceof RefreshFailed && err.kind === 'unreachable';
      this.logger.warn(
        { plugin: provider.plugin, error: (err as Error).message },
        'token introspection failed',
      );
      throw new BearerTokenRefused(
        unreachable ? 'the identity provider did not answer' : 'the token could not be introspected',
      );
    }
    if (got.active !== true) {
      const ended = await this.engine.closeByTag(tag, 'token_revoked');
      if (ended > 0) this.logger.info({ plugin: provider.plugin, sessions: ended }, 'bearer token revoked');
      throw new BearerTokenRefused('the token is not active');
    }
    return introspectionClaims(got, provider, audience, this.engine.clock.now());
  }

  private async findOrCreate(
    route: ActiveRoute,
    provider: BearerProvider,
    claims: JWTPayload,
    tag: string,
    clientIp: string,
    introspected: boolean,
  ): Promise<SessionRecord> {
    const now = this.engine.clock.now();
    for (const id of await this.engine.findByTag(tag)) {
      const s = await this.engine.get(id);
      if (s?.state !== 'allow' || s.profile !== route.profileName) continue;
      if (!introspected) return s;
      await this.engine.data.set(id, INTROSPECTED_AT, String(now));
      return (await this.engine.get(id)) ?? s;
    }
    const untilExp = Math.ceil(((claims.exp ?? 0) * 1000 - now) / 1000);
    const max = route.profile.max_session_timeout;
    const user = stringClaim(claims[provider.userClaim]) ?? claims.sub!;
    const { id } = await this.engine.create({
      state: 'allow',
      profile: route.profileName,
      user,
      clientIp,
      // The token's life bounds the session's; no idle timeout (the client may call rarely).
      timeout: 0,
      lifetime: Math.max(1, max > 0 ? Math.min(untilExp, max) : untilExp),
      variables: {
        'session.oauth.provider': provider.plugin,
        'session.oauth.sub': claims.sub!,
        'session.oauth.iss': provider.issuer,
        'session.oauth.scope': scopesOf(claims).join(' '),
        'session.logon.last.username': user,
        'session.logon.last.groups': groupsOf(claims[provider.groupsClaim]).join(','),
        ...(introspected ? { [INTROSPECTED_AT]: String(now) } : {}),
      },
    });
    await this.engine.tag(id, [tag]);
    this.audit.write({ event: 'session_start', sessionId: id, clientIp, profile: route.profileName });
    this.logger.info({ sessionId: id, plugin: provider.plugin, user }, 'bearer token session');
    const session = await this.engine.get(id);
    if (!session) throw new BearerTokenRefused('the session of this token ended');
    return session;
  }

  /** The provider's keys (jose refetches them on an unknown kid). */
  private async jwks(provider: BearerProvider): Promise<KeySet> {
    const known = this.keys.get(provider.issuer);
    if (known) return known;
    const set = await discoverKeySet(provider);
    if (!set) throw new BearerTokenRefused('the identity provider did not answer');
    this.keys.set(provider.issuer, set);
    return set;
  }
}

/** The claims of an active introspection answer, refused as a JWT's would be. */
function introspectionClaims(
  got: Introspection,
  provider: BearerProvider,
  audience: string,
  now: number,
): JWTPayload {
  const skew = provider.clockSkewSeconds;
  if (got.iss !== undefined && got.iss !== provider.issuer)
    throw new BearerTokenRefused('the token does not verify (its iss claim is not accepted)');
  const aud = Array.isArray(got.aud) ? got.aud : [got.aud];
  if (!aud.includes(audience))
    throw new BearerTokenRefused('the token does not verify (its aud claim is not accepted)');
  if (typeof got.sub !== 'string' || got.sub === '') throw new BearerTokenRefused('the token has no sub');
  if (typeof got.exp !== 'number' || got.exp + skew <= now / 1000)
    throw new BearerTokenRefused('the token does not verify (its exp claim is not accepted)');
  return got as JWTPayload;
}

/** The granted scopes: `scope` (space separated, RFC 9068) or `scp` (a list or a string). */
function scopesOf(claims: JWTPayload): string[] {
  const raw = claims.scope ?? claims.scp;
  const list = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(' ') : [];
  return list.filter((s): s is string => typeof s === 'string' && s !== '');
}

function stringClaim(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' && v.length <= 256 && !/\p{C}/u.test(v) ? v : undefined;
}

/** Members of a list claim that can be a group (no comma, no controls). */
function groupsOf(v: unknown): string[] {
  if (!Array.isArray(v)) return [];
  return v.filter((g): g is string => typeof g === 'string' && g.length <= 256 && !/[,\p{C}]/u.test(g));
}
