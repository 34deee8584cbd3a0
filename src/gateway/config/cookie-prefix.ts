import type { z } from 'zod';

/**
 * The cookie name prefixes browsers enforce (RFC 6265bis §4.1.3): a `__Secure-` cookie must
 * carry `Secure`; a `__Host-` cookie must also have no `Domain` and `Path=/`. A cookie that
 * breaks them is dropped by the browser without a word, so the logon would loop forever.
 * Browsers match the prefixes without regard to case, and so does this check.
 */
export type CookiePrefix = '__Host-' | '__Secure-';

/** The prefix of a cookie name, or undefined. */
export function cookiePrefix(name: string): CookiePrefix | undefined {
  const lower = name.toLowerCase();
  if (lower.startsWith('__host-')) return '__Host-';
  if (lower.startsWith('__secure-')) return '__Secure-';
  return undefined;
}

interface CookieSettings {
  name: string;
  secure: boolean | 'auto';
  domain?: string | undefined;
}

/**
 * The problems a profile's cookie has on its own: `secure: false` with either prefix, a
 * `domain` with `__Host-`. The gateway always sets `Path=/`, so the path rule always holds.
 *
 * @example
 * ```ts
 * z.strictObject({ name: z.string(), ... }).superRefine(checkCookiePrefix);
 * ```
 */
export function checkCookiePrefix(cookie: CookieSettings, ctx: z.RefinementCtx): void {
  const prefix = cookiePrefix(cookie.name);
  if (prefix === undefined) return;
  if (cookie.secure === false) {
    ctx.addIssue({
      code: 'custom',
      path: ['name'],
      message: `a ${prefix} cookie must be Secure and browsers drop it with secure: false (use true or auto)`,
    });
  }
  if (prefix === '__Host-' && cookie.domain !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['name'],
      message: 'a __Host- cookie must have no Domain and browsers drop it with a domain (remove domain)',
    });
  }
}

interface ServedSettings {
  listen: { tls?: unknown };
  trusted_proxies: string[];
  profiles: Record<string, { cookie: CookieSettings }>;
}

/**
 * `secure: auto` sets Secure only on a TLS listener, or when a trusted proxy says the client
 * came over https. With neither, a prefixed cookie never gets Secure and every browser drops
 * it: reported at the cookie's name. With trusted proxies the gateway cannot know what the
 * proxy does, so it trusts the operator.
 */
export function checkAutoSecureReachable(config: ServedSettings, ctx: z.RefinementCtx): void {
  if (config.listen.tls !== undefined || config.trusted_proxies.length > 0) return;
  for (const [name, profile] of Object.entries(config.profiles)) {
    const prefix = cookiePrefix(profile.cookie.name);
    if (prefix === undefined || profile.cookie.secure !== 'auto') continue;
    ctx.addIssue({
      code: 'custom',
      path: ['profiles', name, 'cookie', 'name'],
      message:
        `a ${prefix} cookie must be Secure, which secure: auto sets only over https: with no ` +
        'listen.tls and no trusted_proxies, browsers would drop it (add listen.tls, the TLS ' +
        'proxy under trusted_proxies, or secure: true)',
    });
  }
}
