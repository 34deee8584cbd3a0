// What a forward-auth call is about: the request the proxy (nginx, Traefik, Caddy) is about to
// serve itself, read from the headers it sends with the call, and where a browser may be sent
// back to after logon.
//
// The route is chosen from the original host and target with exactly the normalization the
// gateway applies to requests it proxies (normalizeTarget, matchRoute): a proxy that serves
// `/x/../admin` or `//admin` makes the application see `/admin`, so the gateway must decide on
// `/admin`'s route too. What cannot be read without guessing — a header sent twice, two
// spellings of the target that disagree, an absolute-form target naming another host — is
// refused rather than resolved one way.
import type { IncomingMessage } from 'node:http';
import { normalizeTarget } from './http/target.js';
import { sameOriginPath } from './http/location.js';
import { matchRoute, type ActiveRoute } from './router.js';

/** The original request, as the proxy will serve it. */
export interface OriginalRequest {
  ok: true;
  route: ActiveRoute;
  /** The host (with its port, if any) the client asked for. */
  host: string;
  /** The normalized path and the untouched query (with its `?`, or ''). */
  target: string;
  method: string | undefined;
  /** `proto://host/target`: where the browser comes back to after logon. */
  url: string;
}

/** A forward-auth call refused: its status, error code and one-line reason. */
export interface RefusedCall {
  ok: false;
  status: 400 | 403;
  code: 'SG_ERR_FORWARD_AUTH_HEADERS' | 'SG_ERR_FORWARD_AUTH_TARGET';
  reason: string;
}

/** A host name or IPv4 address, or a bracketed IPv6 address, with an optional port. */
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;
/** RFC 9110 token (a method). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/;
/** Visible ASCII only: a target with spaces, controls or non-ASCII is no target a proxy sends. */
const VISIBLE = /^[\x21-\x7e]+$/;

const headersError = (reason: string): RefusedCall => ({
  ok: false,
  status: 400,
  code: 'SG_ERR_FORWARD_AUTH_HEADERS',
  reason,
});
const targetError = (reason: string): RefusedCall => ({
  ok: false,
  status: 403,
  code: 'SG_ERR_FORWARD_AUTH_TARGET',
  reason,
});

/** One header's single value; null when it was sent more than once. */
function single(req: IncomingMessage, name: string): string | undefined | null {
  const all = req.headersDistinct[name];
  if (!all || all.length === 0) return undefined;
  return all.length === 1 ? all[0]! : null;
}

/** nginx's header (set in its configuration) or the Traefik/Caddy one: both only if they agree. */
function either(req: IncomingMessage, nginx: string, other: string): string | undefined | RefusedCall {
  const a = single(req, nginx);
  const b = single(req, other);
  if (a === null || b === null) return headersError(`${a === null ? nginx : other} was sent more than once`);
  if (a !== undefined && b !== undefined && a !== b) return headersError(`${nginx} and ${other} disagree`);
  return a ?? b;
}

/**
 * Read the original request of a forward-auth call (whose peer the caller has found to be a
 * trusted proxy) and find its route.
 *
 * @example
 * const original = originalRequest(req, 'https', routes);
 * if (!original.ok) return refuse(original.status, original.code, original.reason);
 * original.route; // the route the proxied request would have taken
 */
export function originalRequest(
  req: IncomingMessage,
  proto: 'http' | 'https',
  routes: ActiveRoute[],
): OriginalRequest | RefusedCall {
  const uri = either(req, 'x-original-uri', 'x-forwarded-uri');
  if (typeof uri === 'object') return uri;
  if (uri === undefined) return headersError('no X-Original-URI or X-Forwarded-Uri header');
  const method = either(req, 'x-original-method', 'x-forwarded-method');
  if (typeof method === 'object') return method;
  if (method !== undefined && !TOKEN.test(method)) return headersError('a malformed original method');
  const host = single(req, 'x-forwarded-host');
  if (host === null) return headersError('X-Forwarded-Host was sent more than once');
  if (host === undefined) return headersError('no X-Forwarded-Host header');
  if (!HOST.test(host)) return headersError('a malformed X-Forwarded-Host');
  if (!VISIBLE.test(uri)) return targetError('the original target has spaces or control characters');
  const target = normalizeTarget(uri);
  if (!target.ok) return targetError(`the original target is refused: ${target.reason}`);
  // An absolute-form target names the host the proxy picked its server by: it must be this one.
  if (target.authority !== undefined && target.authority.toLowerCase() !== host.toLowerCase())
    return targetError('the original target names another host');
  // The gateway's own pages are never an application's, whatever the proxy sends.
  if (target.path.startsWith('/sg/')) return targetError('the original target is a gateway page');
  const route = matchRoute(routes, host, target.path);
  if (!route) return targetError('no route for the original host and path');
  if (target.encodedSlash && !route.config.allow_encoded_slashes)
    return targetError('an encoded / or \\ (%2F, %5C) in the original path');
  const origin = `${target.path}${target.query}`;
  return { ok: true, route, host, target: origin, method, url: `${proto}://${host}${origin}` };
}

/** An absolute http(s) URL with a plain host and no user part: what a landing URL may be. */
const ABSOLUTE = /^(https?):\/\/([^/?#@\\]+)(\/[^\\]*)?$/i;

/** `*.example.org` or an exact host: a host the configuration names (never `*`, which is any). */
function configuredHost(routes: ActiveRoute[], host: string): boolean {
  const bare = host.toLowerCase().replace(/:\d+$/, '');
  return routes.some((r) => {
    const p = r.host.toLowerCase();
    if (p === '*') return false;
    return p.startsWith('*.') ? bare.endsWith(p.slice(1)) : bare === p;
  });
}

/**
 * The parts of an absolute landing URL a browser may be sent to — on the host the browser is
 * on (`requestHost`), or on a host a route names — or undefined.
 *
 * @example
 * returnUrl('https://app.example.org/x', 'app.example.org', routes); // { sameOrigin: true, target: '/x', ... }
 * returnUrl('https://evil.example/', 'app.example.org', routes); // undefined
 */
export function returnUrl(
  url: string,
  requestHost: string | undefined,
  routes: ActiveRoute[],
): { scheme: string; host: string; target: string; sameOrigin: boolean } | undefined {
  if (!VISIBLE.test(url)) return undefined;
  const m = ABSOLUTE.exec(url);
  const host = m?.[2];
  if (!host || !HOST.test(host)) return undefined;
  const target = m[3] ?? '/';
  const sameOrigin = requestHost !== undefined && host.toLowerCase() === requestHost.toLowerCase();
  if (!sameOrigin && !configuredHost(routes, host)) return undefined;
  return { scheme: m[1]!.toLowerCase(), host, target, sameOrigin };
}

/**
 * The Location a session's landing URI sends the browser to: a same-origin path, or an
 * absolute URL (a forward-auth logon came from another host) when it names the host the
 * browser is on or a host of a configured route; anything else becomes `/`. Never an open
 * redirect, whatever the landing URI holds.
 *
 * @example
 * landingLocation('/app?x=1', 'gw.example', routes); // '/app?x=1'
 * landingLocation('https://app.example.org/x', 'gw.example', routes); // kept: a route's host
 * landingLocation('https://evil.example/', 'gw.example', routes); // '/'
 */
export function landingLocation(
  landing: string,
  requestHost: string | undefined,
  routes: ActiveRoute[],
): string {
  if (landing.startsWith('/')) return sameOriginPath(landing);
  return returnUrl(landing, requestHost, routes) ? landing : '/';
}
