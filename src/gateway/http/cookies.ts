/** Cookie header parsing and Set-Cookie building: the little the gateway needs of RFC 6265. */
import { findCookie } from '../../core/cookie-header.js';

/** The value of one cookie in a Cookie header, or undefined. The first occurrence wins. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  return header ? findCookie(header, name) : undefined;
}

/** All cookies of a Cookie header (first occurrence of each name). */
export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (name && !Object.hasOwn(out, name)) out[name] = part.slice(eq + 1).trim();
  }
  return out;
}

export interface SessionCookieOptions {
  name: string;
  secure: boolean;
  sameSite: 'Lax' | 'Strict';
  domain?: string | undefined;
}

/** The session cookie: HttpOnly, Path=/, SameSite, Secure when asked; a session cookie (no expiry). */
export function sessionCookie(o: SessionCookieOptions, token: string): string {
  let c = `${o.name}=${token}; Path=/; HttpOnly; SameSite=${o.sameSite}`;
  if (o.domain) c += `; Domain=${o.domain}`;
  if (o.secure) c += '; Secure';
  return c;
}

/** A Set-Cookie that removes the session cookie. */
export function clearedCookie(o: SessionCookieOptions): string {
  return sessionCookie(o, '').replace('; HttpOnly', '; Max-Age=0; HttpOnly');
}
