import { isIP } from 'node:net';
import { ipMatches } from '../rules/ip.js';

/**
 * SPS "inband destination selection": the SSH user name names the target.
 *
 * Accepted forms (SPS administration guide, "Using inband destination selection in SSH
 * connections"):
 * - `user@server`, `user@server:port`;
 * - `%` may replace the `@` between user and server, and `+` or `/` the `:` before the port
 *   (some clients refuse `@` and `:` in a user name);
 * - `gu=gateway@user@server[:port]` adds a gateway user (SPS gateway authentication). SPS
 *   documents only `@` after the gateway user, so `gu=alice%root%db1` is refused;
 * - an IPv6 server goes in brackets, `user@[::1]:2222` (where the guide is silent we are
 *   strict: a bare IPv6 address would be ambiguous with the port separator).
 */
export interface Destination {
  gatewayUser?: string;
  targetUser: string;
  host: string;
  port: number;
}

/** A whole user name longer than this is refused before any parsing. */
export const MAX_DESTINATION_LENGTH = 512;

const GATEWAY_PREFIX = 'gu=';
/** Control characters (C0, DEL, C1) and every kind of space: never part of a name. */
const BAD_CHARS = /[\p{Cc}\p{Z}\s]/u;
const PORT = /^[1-9][0-9]{0,4}$/;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

/**
 * Splits an SSH user name into gateway user, target user, host and port.
 * Never throws: a refusal is `{ error }` with a one-line reason fit to show the client.
 *
 * @example
 * ```ts
 * parseDestination('gu=alice@root@db1.internal+2222');
 * // { gatewayUser: 'alice', targetUser: 'root', host: 'db1.internal', port: 2222 }
 * parseDestination('root%db1', { port: 2200 }); // { targetUser: 'root', host: 'db1', port: 2200 }
 * parseDestination('root'); // { error: 'no target server in the user name (expected user@server)' }
 * ```
 */
export function parseDestination(
  username: string,
  defaults?: { port?: number },
): Destination | { error: string } {
  if (typeof username !== 'string' || username.length === 0) return { error: 'empty user name' };
  if (username.length > MAX_DESTINATION_LENGTH) {
    return { error: `user name longer than ${MAX_DESTINATION_LENGTH} characters` };
  }
  if (BAD_CHARS.test(username)) return { error: 'user name contains a space or a control character' };
  let rest = username;
  let gatewayUser: string | undefined;
  if (rest.startsWith(GATEWAY_PREFIX)) {
    const at = rest.indexOf('@');
    if (at < 0) return { error: 'gateway user form needs gu=gatewayuser@user@server' };
    gatewayUser = rest.slice(GATEWAY_PREFIX.length, at);
    if (gatewayUser === '') return { error: 'empty gateway user' };
    if (gatewayUser.includes('%')) return { error: 'gateway user contains "%"' };
    rest = rest.slice(at + 1);
  }
  const sep = rest.search(/[@%]/);
  if (sep < 0) return { error: 'no target server in the user name (expected user@server)' };
  const targetUser = rest.slice(0, sep);
  if (targetUser === '') return { error: 'empty target user' };
  const server = parseServer(rest.slice(sep + 1), defaults?.port ?? 22);
  if ('error' in server) return server;
  return gatewayUser === undefined ? { targetUser, ...server } : { gatewayUser, targetUser, ...server };
}

/** `host`, `host:port` (or `+`, `/`), `[v6]`, `[v6]:port`. */
function parseServer(text: string, defaultPort: number): { host: string; port: number } | { error: string } {
  if (text === '') return { error: 'empty target server' };
  let host: string;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return { error: 'unclosed "[" around the target server' };
    host = text.slice(1, close);
    const after = text.slice(close + 1);
    if (after !== '') {
      if (!/^[:+/]/.test(after)) return { error: 'unexpected text after "]"' };
      portText = after.slice(1);
    }
    if (isIP(host) !== 6 || host.includes('%'))
      return { error: `not an IPv6 address in brackets: ${show(host)}` };
  } else {
    if (text.split(':').length > 2)
      return {
        error: 'more than one ":" after the server (an IPv6 address goes in brackets: user@[::1]:22)',
      };
    const sep = text.search(/[:+/]/);
    host = sep < 0 ? text : text.slice(0, sep);
    if (sep >= 0) portText = text.slice(sep + 1);
    if (host === '') return { error: 'empty target server' };
    if (!isHostName(host)) return { error: `not a valid host name or IP address: ${show(host)}` };
  }
  if (portText === undefined) return { host, port: defaultPort };
  if (portText === '') return { error: 'empty port' };
  const port = PORT.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) return { error: `port must be 1..65535: ${show(portText)}` };
  return { host, port };
}

/**
 * A DNS name (letters, digits, hyphens; labels of 1..63, 253 in all, no trailing dot) or an
 * IPv4 literal. All-numeric dotted names that are not IPv4 (`999.1.1.1`) are refused.
 *
 * @example
 * ```ts
 * isHostName('db1.internal'); // true
 * isHostName('10.0.0.300'); // false
 * ```
 */
export function isHostName(host: string): boolean {
  if (isIP(host) === 4) return true;
  if (host.length > 253) return false;
  const labels = host.split('.');
  if (!labels.every((label) => LABEL.test(label))) return false;
  // The last label of a real name is never all digits; this also refuses broken IPv4.
  return !/^[0-9]+$/.test(labels[labels.length - 1] ?? '');
}

/** Quotes a user-supplied piece for a reason line, cut short. */
function show(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
}

/**
 * OpenSSH `ssh_config`-style host matching: `*` and `?` wildcards, case-insensitive; a
 * comma list where any `!pattern` that matches refuses and otherwise any positive match
 * accepts (OpenSSH's `match_pattern_list`); a CIDR pattern (`10.0.0.0/8`, `fd00::/8`)
 * matches IP literals inside it. IPv6 hosts may be given with or without brackets.
 *
 * @example
 * ```ts
 * matchHost('*.internal', 'DB1.Internal'); // true
 * matchHost('10.0.0.0/8', '10.2.3.4'); // true
 * matchHost('*.internal,!secret.internal', 'secret.internal'); // false
 * ```
 */
export function matchHost(pattern: string, host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  let matched = false;
  for (const raw of pattern.split(',')) {
    const negated = raw.startsWith('!');
    const item = (negated ? raw.slice(1) : raw).trim();
    if (item === '') continue;
    if (matchOne(item, bare)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

function matchOne(pattern: string, host: string): boolean {
  if (pattern.includes('/')) return isIP(host) !== 0 && ipMatches(host, pattern);
  return globMatch(pattern.toLowerCase(), host.toLowerCase());
}

/**
 * OpenSSH's `*`/`?` glob, case-sensitive (callers lowercase). Iterative, backtracking only to
 * the last star, so a hostile pattern cannot make it exponential.
 *
 * @example
 * ```ts
 * globMatch('db?.*', 'db1.internal'); // true
 * ```
 */
export function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    const c = pattern[p];
    if (c === '?' || (c !== undefined && c !== '*' && c === text[t])) {
      p++;
      t++;
    } else if (c === '*') {
      star = p++;
      mark = t;
    } else if (star >= 0) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}
