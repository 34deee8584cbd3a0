import { SessionGateError } from '../../core/errors.js';
import type { AaHookResult } from '../define.js';
import type { OidcSettings } from './oidc-config.js';

/** A refused sign-in: `check` names what failed (for the log), `reason` is shown to the user. */
export class Refusal extends SessionGateError {
  constructor(
    readonly check: string,
    readonly reason: string,
  ) {
    super('SG_ERR_SIGN_IN_REFUSED', reason);
  }
}

/** The ID token's claims (already validated by openid-client: iss, aud, exp, nonce, signature). */
export type Claims = Record<string, unknown>;

/** What the token endpoint gave, as the plugin keeps it. */
export interface Tokens {
  claims: Claims;
  idToken: string;
  accessToken: string;
  refreshToken?: string;
  /** Seconds since the epoch when the access token expires, when the provider said. */
  expiresAt?: number;
}

/** A claim value as a one-line printable text, cut to `max` (reasons and logs only). */
export function printable(value: unknown, max = 80): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? 'undefined');
  return text.replace(/[^\x20-\x7E]/g, '?').slice(0, max);
}

function matches(actual: unknown, wanted: string | number | boolean): boolean {
  if (Array.isArray(actual)) return actual.includes(wanted);
  return actual === wanted;
}

/**
 * The checks of the settings beyond OIDC Core's: the ID token's alg is in the allow-list,
 * `required_claims` hold, and with `email_domains` the email is verified and in one of them.
 *
 * @example
 * ```ts
 * checkClaims(settings, 'RS256', { sub: 'a', email: 'a@example.org', email_verified: true });
 * ```
 */
export function checkClaims(s: OidcSettings, alg: string, claims: Claims): void {
  if (!(s.id_token_algorithms as readonly string[]).includes(alg)) {
    throw new Refusal(
      'id_token_alg',
      `the ID token is signed with ${printable(alg, 20)}, which is not allowed`,
    );
  }
  for (const [name, wanted] of Object.entries(s.required_claims)) {
    if (!matches(claims[name], wanted)) {
      const got = claims[name] === undefined ? 'missing' : printable(claims[name]);
      throw new Refusal('required_claims', `the claim ${name} must be ${printable(wanted)} (it is ${got})`);
    }
  }
  if (s.email_domains.length === 0) return;
  const email = claims.email;
  if (typeof email !== 'string' || !email.includes('@')) {
    throw new Refusal('email_domains', 'the identity provider gave no email address');
  }
  // An unverified address proves nothing about its domain: anyone can type one.
  if (claims.email_verified !== true) {
    throw new Refusal('email_domains', 'the email address is not verified by the identity provider');
  }
  const domain = email.slice(email.lastIndexOf('@') + 1).toLowerCase();
  if (!s.email_domains.includes(domain)) {
    throw new Refusal('email_domains', `the email domain ${printable(domain)} is not allowed`);
  }
}

/** A user name the gateway accepts (validate-result: 1-256 chars, no whitespace or controls). */
function usable(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= 256 && !/[\s\p{C}]/u.test(v);
}

/** The gateway user: the `user_claim`, else the email, else `sub`. */
export function gatewayUser(s: OidcSettings, claims: Claims): string {
  const user = [claims[s.user_claim], claims.email, claims.sub].find(usable);
  if (user === undefined) throw new Refusal('user_claim', 'the ID token has no usable user name');
  return user;
}

/** The groups: a list claim; members that cannot be a group (a comma, controls) are left out. */
export function gatewayGroups(s: OidcSettings, claims: Claims): string[] {
  const list = claims[s.groups_claim];
  if (!Array.isArray(list)) return [];
  return list.filter((g): g is string => typeof g === 'string' && g.length <= 256 && !/[,\p{C}]/u.test(g));
}

function variableValue(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * The ACCEPT result: user, groups, the `session.oauth.*` variables (tokens as secure ones)
 * and the cookie `{ sub, sid, iss }` that the flow's state is no longer part of.
 */
export function acceptResult(
  s: OidcSettings,
  plugin: string,
  t: Tokens,
  endSessionEndpoint?: string,
): AaHookResult {
  const c = t.claims;
  const vars: Record<string, string | undefined> = {
    'session.oauth.provider': plugin,
    'session.oauth.sub': variableValue(c.sub),
    'session.oauth.iss': variableValue(c.iss),
    'session.oauth.email': variableValue(c.email),
    'session.oauth.name': variableValue(c.name),
    'session.oauth.sid': variableValue(c.sid),
    'session.oauth.client_id': s.client_id,
    'session.oauth.end_session_endpoint': endSessionEndpoint,
    'session.oauth.post_logout_redirect_uri': s.end_session_redirect,
    'session.oauth.expires_at': t.expiresAt === undefined ? undefined : String(t.expiresAt),
    // The gateway refreshes on a request from this time on (only when it can: a refresh token).
    'session.oauth.refresh_at':
      t.expiresAt === undefined || t.refreshToken === undefined
        ? undefined
        : String(t.expiresAt - s.refresh_before_seconds),
  };
  for (const [variable, claim] of Object.entries(s.claims)) vars[variable] = variableValue(c[claim]);
  const secure: Record<string, string | undefined> = {
    'session.oauth.access_token': t.accessToken,
    'session.oauth.refresh_token': t.refreshToken,
    'session.oauth.id_token': t.idToken,
  };
  const cookie: Record<string, string> = { sub: String(c.sub), iss: String(c.iss) };
  if (typeof c.sid === 'string') cookie.sid = c.sid;
  return {
    verdict: 'ACCEPT',
    gatewayUser: gatewayUser(s, c),
    gatewayGroups: gatewayGroups(s, c),
    sessionVariables: defined(vars),
    secureVariables: defined(secure),
    cookie,
  };
}

function defined(vars: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(vars).filter((e): e is [string, string] => e[1] !== undefined));
}
