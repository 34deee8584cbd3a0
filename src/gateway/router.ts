import type { AccessProfile } from '../session/profile.js';
import { accessProfile } from '../session/profile.js';
import type { ProfileConfig, RouteConfig } from './config/schema.js';
import type { SessionCookieOptions } from './http/cookies.js';
import type { IdentityPlan } from './identity/plan.js';
import type { RuleSet } from '../rules/ruleset.js';
import type { PolicyRunner } from './policy.js';
import type { Upstream } from './proxy/upstream.js';

/** A route ready to serve: its matcher, upstream pool, profile and policy runner. */
export interface ActiveRoute {
  index: number;
  config: RouteConfig;
  host: string;
  pathPrefix: string;
  upstream: Upstream;
  /** The upstream's URL (credential injection names its host as the asset). */
  upstreamUrl: string;
  profileName: string;
  profile: ProfileConfig;
  runner: PolicyRunner;
  /** Global rules then the route's, in configuration order. */
  rules: RuleSet;
  /** Client headers to strip, identity headers to set, the assertion signer (made at start). */
  identity: IdentityPlan;
}

/** The engine's view of a configured profile. */
export function engineProfile(name: string, p: ProfileConfig): AccessProfile {
  return accessProfile(name, {
    inactivityTimeout: p.inactivity_timeout,
    maxSessionTimeout: p.max_session_timeout,
    accessPolicyTimeout: p.policy_timeout,
    maxSessionsPerUser: p.max_sessions_per_user?.limit ?? 0,
    onUserLimit: p.max_sessions_per_user?.on_limit ?? 'evict_oldest',
    maxConcurrentSessions: p.max_concurrent_sessions,
    maxInProgressPerClientIp: p.max_in_progress_per_client_ip.limit,
    onClientIpLimit: p.max_in_progress_per_client_ip.on_limit,
    extra: { cookie_name: p.cookie.name, realm: p.realm, ...p.settings },
  });
}

/** Made once per profile (plain and TLS) rather than once per request. */
const cookieCache = new WeakMap<ProfileConfig, readonly [SessionCookieOptions, SessionCookieOptions]>();

/** The session cookie's options for a profile, on a plain or a TLS connection (read-only). */
export function cookieOptions(p: ProfileConfig, tls: boolean): SessionCookieOptions {
  let both = cookieCache.get(p);
  if (!both) {
    const of = (secure: boolean): SessionCookieOptions =>
      Object.freeze({
        name: p.cookie.name,
        secure: p.cookie.secure === 'auto' ? secure : p.cookie.secure,
        sameSite: p.cookie.same_site,
        domain: p.cookie.domain,
      });
    both = [of(false), of(true)];
    cookieCache.set(p, both);
  }
  return both[tls ? 1 : 0];
}

/** `*`, an exact host, or `*.example.org` (any subdomain). */
function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*') return true;
  const h = host.toLowerCase();
  const p = pattern.toLowerCase();
  return p.startsWith('*.') ? h.endsWith(p.slice(1)) : h === p;
}

/**
 * Prefixes match case-insensitively and at a segment boundary (`/`, or `;` where path
 * parameters start): an application that ignores case or drops `;params` (IIS, Tomcat) must
 * not be reachable past a route's acl as `/ADMIN` or `/admin;x`. A stricter route wins.
 */
function pathMatches(prefix: string, path: string): boolean {
  if (prefix === '/') return true;
  const p = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  if (path.length < p.length) return false;
  const head = path.slice(0, p.length);
  if (head !== p && head.toLowerCase() !== p.toLowerCase()) return false;
  const next = path.charCodeAt(p.length);
  return Number.isNaN(next) || next === 47 /* / */ || next === 59; /* ; */
}

/**
 * The route for a request: the longest matching path prefix among routes whose host matches;
 * an exact host beats a wildcard at equal length.
 */
export function matchRoute(routes: ActiveRoute[], host: string, path: string): ActiveRoute | undefined {
  const bare = host.replace(/:\d+$/, '');
  let best: ActiveRoute | undefined;
  for (const r of routes) {
    if (!hostMatches(r.host, bare) || !pathMatches(r.pathPrefix, path)) continue;
    if (
      !best ||
      r.pathPrefix.length > best.pathPrefix.length ||
      (r.pathPrefix.length === best.pathPrefix.length && best.host === '*' && r.host !== '*')
    ) {
      best = r;
    }
  }
  return best;
}
