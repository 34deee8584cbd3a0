// Header hygiene for the proxy: hop-by-hop stripping (RFC 9110 §7.6.1) both ways, the
// X-Forwarded-* headers, and removing the gateway's own cookies from what the upstream sees.
//
// Hop-by-hop headers belong to one connection and are never forwarded:
//   - Connection, and every header the Connection header names;
//   - Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade (RFC 9110 §7.6.1 names these;
//     the proxy re-frames bodies itself, and upgrades go through `Upstream.upgrade()`, which sets
//     Connection/Upgrade for the upstream hop on its own);
//   - TE, except that the token `trailers` is passed on as `TE: trailers` (the proxy relays
//     response trailers, so a client that accepts them may say so);
//   - Proxy-Authorization (request) and Proxy-Authenticate (response): credentials and challenges
//     addressed to this proxy, not to the origin (RFC 9110 §11.7.1, §11.7.2).
// Trailer is not hop-by-hop in RFC 9110 (it was in RFC 2616): it describes the trailers, which
// the proxy relays, so it passes.
//
// Request headers also drop:
//   - Host (undici writes the upstream's host; `preserveHost` sends the original one instead);
//   - Expect: Node's server has already answered `100-continue` to the client, and undici does
//     not support sending it;
//   - incoming X-Forwarded-Proto / X-Forwarded-Host (replaced with what the gateway saw);
//   - the gateway's cookies (`stripCookies`), from every Cookie header.
// X-Forwarded-For becomes the existing chain + ", " + the client address. The existing chain
// is the incoming header, unless the gateway gives one in `requestHeaders['x-forwarded-for']`
// (a sanitized chain, or null for none: the peer is not a trusted proxy).

/** Header names (lowercase) never forwarded, in either direction. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'transfer-encoding',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
]);

/** Request headers the proxy drops on top of the hop-by-hop ones (see the notes above). */
const REQUEST_DROPPED: ReadonlySet<string> = new Set([
  'host',
  'expect',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
]);

export interface RequestHeaderOptions {
  clientIp: string;
  proto: 'http' | 'https';
  /** The Host the client asked for. */
  host: string;
  /** Send `host` as the Host header (default: drop it, so the upstream's own host is sent). */
  preserveHost?: boolean;
  /** Header changes applied last: a string sets (replaces) the header, null removes it.
   * Hop-by-hop names and Expect are ignored here. */
  requestHeaders?: Record<string, string | null>;
  /** Cookie names to remove from Cookie (a Set may be reused across requests). */
  stripCookies?: readonly string[] | ReadonlySet<string>;
}

/** The tokens of every Connection header value, lowercased, or null when there is none. */
function connectionTokens(value: string | string[] | undefined, into?: Set<string>): Set<string> | undefined {
  if (value === undefined) return into;
  const set = into ?? new Set<string>();
  for (const v of Array.isArray(value) ? value : [value]) {
    for (const token of v.split(',')) {
      const t = token.trim().toLowerCase();
      if (t) set.add(t);
    }
  }
  return set;
}

/** Removes the named cookies from one Cookie header value; returns '' when nothing is left. */
export function stripCookieValue(value: string, names: ReadonlySet<string>): string {
  let kept: string[] | undefined;
  let removed = false;
  const parts = value.split(';');
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string;
    const eq = part.indexOf('=');
    const name = (eq === -1 ? part : part.slice(0, eq)).trim();
    if (names.has(name)) {
      if (!kept) kept = parts.slice(0, i).map((p) => p.trim());
      removed = true;
    } else if (kept) {
      kept.push(part.trim());
    }
  }
  if (!removed) return value;
  return (kept ?? []).filter((p) => p !== '').join('; ');
}

/**
 * The request headers for the upstream, as a flat [name, value, name, value, ...] list (the form
 * undici takes), built from the client's raw headers (`req.rawHeaders`, names in their original
 * case, repeated headers kept).
 */
export function buildRequestHeaders(rawHeaders: readonly string[], o: RequestHeaderOptions): string[] {
  // Pass 1: Connection tokens and the existing X-Forwarded-For chain.
  let tokens: Set<string> | undefined;
  let chain: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    if (name === 'connection') tokens = connectionTokens(rawHeaders[i + 1] as string, tokens);
    else if (name === 'x-forwarded-for') {
      const v = (rawHeaders[i + 1] as string).trim();
      if (v) chain = chain === undefined ? v : `${chain}, ${v}`;
    }
  }

  // The changes by lowercase name: the object itself when its names are lowercase already (the
  // usual case; no copy per request). x-forwarded-for among them is the chain, not an override.
  const changes = o.requestHeaders;
  const byLowerName = changes && lowercaseKeys(changes);
  if (byLowerName && Object.hasOwn(byLowerName, 'x-forwarded-for')) {
    const v = byLowerName['x-forwarded-for'];
    chain = v === null || v === undefined || v.trim() === '' ? undefined : v.trim();
  }
  const names = o.stripCookies;
  const strip = names === undefined ? undefined : 'has' in names ? names : new Set(names);

  // Pass 2: copy what may pass.
  const out: string[] = [];
  let sawContentLength = false;
  let sawTe = false;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    const lower = name.toLowerCase();
    let value = rawHeaders[i + 1] as string;
    if (lower === 'te') {
      // Only the `trailers` token survives, and only if Connection does not name TE.
      if (!sawTe && !tokens?.has('te') && /(?:^|,)\s*trailers\s*(?:;|,|$)/i.test(value)) {
        out.push('te', 'trailers');
        sawTe = true;
      }
      continue;
    }
    if (HOP_BY_HOP.has(lower) || REQUEST_DROPPED.has(lower)) continue;
    if (tokens?.has(lower) || overridden(byLowerName, lower)) continue;
    if (lower === 'content-length') {
      // Node has already rejected conflicting values; an identical repeat is dropped (undici
      // refuses duplicates).
      if (sawContentLength) continue;
      sawContentLength = true;
    } else if (lower === 'cookie' && strip && strip.size > 0) {
      value = stripCookieValue(value, strip);
      if (value === '') continue;
    }
    out.push(name, value);
  }

  out.push('x-forwarded-for', chain === undefined ? o.clientIp : `${chain}, ${o.clientIp}`);
  if (!overridden(byLowerName, 'x-forwarded-proto')) out.push('x-forwarded-proto', o.proto);
  if (!overridden(byLowerName, 'x-forwarded-host')) out.push('x-forwarded-host', o.host);
  if (o.preserveHost && !overridden(byLowerName, 'host')) out.push('host', o.host);
  if (changes) {
    for (const key in changes) {
      const v = changes[key];
      if (v === null || v === undefined) continue;
      const k = key.toLowerCase();
      // Hop-by-hop headers are the proxy's own business, whoever asks for them.
      if (k === 'x-forwarded-for' || k === 'expect' || HOP_BY_HOP.has(k)) continue;
      out.push(key, v);
    }
  }
  return out;
}

/**
 * Whether the changes name this header. A module function, not a closure in
 * buildRequestHeaders: under tsx (esbuild keepNames) a named closure costs an
 * Object.defineProperty on every request.
 */
function overridden(changes: Record<string, unknown> | undefined, name: string): boolean {
  return changes !== undefined && Object.hasOwn(changes, name);
}

/** `o` when its keys are lowercase already, else a copy with lowercase keys (the last one wins). */
function lowercaseKeys<T>(o: Record<string, T>): Record<string, T> {
  for (const k in o) {
    if (k !== k.toLowerCase()) {
      const lower: Record<string, T> = {};
      for (const key in o) lower[key.toLowerCase()] = o[key] as T;
      return lower;
    }
  }
  return o;
}

/**
 * Removes hop-by-hop headers (and the headers named in Connection) from an upstream response's
 * parsed headers, in place. Names are lowercase, as undici gives them.
 */
export function stripResponseHeaders(headers: Record<string, string | string[] | undefined>): void {
  const tokens = connectionTokens(headers['connection']);
  for (const name of HOP_BY_HOP) delete headers[name];
  if (tokens) for (const name of tokens) delete headers[name];
}
