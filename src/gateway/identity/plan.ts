import type { Clock } from '../../core/clock.js';
import type { SessionRecord } from '../../core/session-types.js';
import { DERIVED_VARIABLES } from '../../session/variables.js';
import type { IdentityAssertionConfig } from '../config/identity-schema.js';
import { profileOf } from '../config/load.js';
import type { GatewayConfig, ProfileConfig, RouteConfig } from '../config/schema.js';
import {
  ASSERTION_HEADER,
  AssertionSigner,
  type AssertionKeys,
  type AssertionSettings,
} from './assertion.js';

/**
 * Client headers that always go: names applications (and other proxies' conventions) take as
 * "the gateway says who this is", and the gateway's own assertion. A client could otherwise
 * name itself to an application that trusts them.
 */
export const DEFAULT_STRIPPED_HEADERS: readonly string[] = Object.freeze([
  'x-forwarded-user',
  'x-forwarded-email',
  'x-forwarded-groups',
  'x-forwarded-preferred-username',
  'x-remote-user',
  'remote-user',
  'x-real-ip',
  'forwarded',
  ASSERTION_HEADER,
]);

/** One header the gateway sets from a session variable. */
export interface IdentityHeader {
  /** Lowercase header name. */
  readonly name: string;
  readonly variable: string;
  /** Set for variables that are the session's own state (session.user.clientip, ...). */
  readonly derived: ((s: SessionRecord) => string | undefined) | undefined;
}

/**
 * A route's identity handling, made once at start: which client headers are removed before
 * rules run, which headers the gateway sets, and its assertion signer.
 */
export interface IdentityPlan {
  /** Lowercase names removed from the client's request (checked on every request). */
  readonly strip: readonly string[];
  readonly stripSet: ReadonlySet<string>;
  /** 1 at the lengths of stripped names (a longer name is always looked up). */
  readonly stripLengths: Uint8Array;
  /** 1 at (first char code | 0x20) & 0xff of stripped names: a letter's either case. */
  readonly stripFirstChars: Uint8Array;
  readonly headers: readonly IdentityHeader[];
  /** Undefined: the route sends no assertion. */
  readonly assertion: AssertionSigner | undefined;
  /** The gateway's signing keys (every route has the same), for the JWKS document. */
  readonly keys: AssertionKeys;
}

/**
 * The identity plan of a route: the profile's identity headers with the route's on top (a
 * route's null removes one), the default strip list plus every identity header plus both
 * `strip_headers`, and the route's (else the profile's) assertion setting.
 *
 * @example
 * const plan = identityPlan(profile, routeConfig, keys, clock);
 * plan.strip; // ['x-forwarded-user', ..., 'x-sessiongate-assertion', 'x-username']
 */
export function identityPlan(
  profile: ProfileConfig,
  route: RouteConfig,
  keys: AssertionKeys,
  clock: Clock,
): IdentityPlan {
  const variables = new Map<string, string>();
  for (const [name, variable] of Object.entries(profile.identity_headers))
    variables.set(name.toLowerCase(), variable);
  for (const [name, variable] of Object.entries(route.identity_headers)) {
    if (variable === null) variables.delete(name.toLowerCase());
    else variables.set(name.toLowerCase(), variable);
  }
  const headers = [...variables].map(([name, variable]) =>
    Object.freeze({
      name,
      variable,
      derived: Object.hasOwn(DERIVED_VARIABLES, variable) ? DERIVED_VARIABLES[variable] : undefined,
    }),
  );
  const stripSet = new Set([
    ...DEFAULT_STRIPPED_HEADERS,
    ...variables.keys(),
    ...profile.strip_headers.map((n) => n.toLowerCase()),
    ...route.strip_headers.map((n) => n.toLowerCase()),
  ]);
  const settings = assertionSettings(route.identity_assertion ?? profile.identity_assertion, route);
  const stripLengths = new Uint8Array(128);
  const stripFirstChars = new Uint8Array(256);
  for (const name of stripSet) {
    if (name.length < stripLengths.length) stripLengths[name.length] = 1;
    stripFirstChars[(name.charCodeAt(0) | 0x20) & 0xff] = 1;
  }
  return Object.freeze({
    strip: Object.freeze([...stripSet]),
    stripSet,
    stripLengths,
    stripFirstChars,
    headers: Object.freeze(headers),
    assertion: settings ? new AssertionSigner(keys, settings, clock) : undefined,
    keys,
  });
}

/** Whether any route sends an assertion (the key ring then needs a signing key). */
export function assertionWanted(config: GatewayConfig): boolean {
  return config.routes.some((r) => {
    const setting = r.identity_assertion ?? profileOf(config, r.profile)?.identity_assertion ?? false;
    return setting === true || (typeof setting === 'object' && setting.enabled);
  });
}

function assertionSettings(
  setting: IdentityAssertionConfig,
  route: RouteConfig,
): AssertionSettings | undefined {
  if (setting === false || (typeof setting === 'object' && !setting.enabled)) return undefined;
  const s = setting === true ? { lifetime: 60, issuer: 'sessiongate', audience: undefined } : setting;
  const host = route.match.host;
  // A route for one host names it; a wildcard route takes the host each request asked for.
  const audience = s.audience ?? (host.includes('*') ? undefined : host.toLowerCase());
  return { issuer: s.issuer, lifetime: s.lifetime, audience };
}
